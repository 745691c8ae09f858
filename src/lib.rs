//! k8s-gateway: a split-DNS server for Kubernetes home clusters.
//!
//! **Sources** ([`sources`]) read Kubernetes objects (from a folder of manifests, or the
//! API) and the records of RFC 1035 zone files ([`sources::zone_file`]) into one object
//! set, and turn them into plain zone entries with a pure function per kind, listed once
//! in the kind registry ([`sources::kind`]), through one [`sources::Feed`]. One rebuild
//! loop ([`rebuild`]), between the sources and the zone, builds and swaps in each new
//! zone.
//!
//! **The zone** ([`zone`]) is an immutable snapshot built from those entries: which
//! records each name has, decided once per change (precedence, CNAME rules, apex). It
//! knows nothing of Kubernetes or sockets.
//!
//! **DNS** ([`dns`]) answers UDP ([`dns::udp`]) and TCP ([`dns::tcp`]) queries from the
//! current snapshot, loaded with one atomic read: queries never lock and never wait for
//! the API; [`dns::handler`] turns a request into its answer. With `--fallthrough`,
//! a name of our domains the zone lacks is handed to [`dns::forward`], which asks the
//! upstreams from a task of its own (cached by TTL, coalesced, loop-guarded). Zone
//! transfers from allowed secondaries go to [`dns::transfer`]; [`dns::notify`] tells the
//! secondaries of each new serial. With `--tsig-key`, [`dns::tsig`] checks signed requests
//! and signs what we send (answers, every message of a transfer, NOTIFY).
//!
//! [`http`] serves `/metrics` and the health probes, and on a loopback listener of its own
//! the debug views (the status page, `/zone`, `/explain`). [`metrics`] holds
//! every metric family; [`config`] parses the options; [`app`] wires
//! the parts together for `main` and the integration tests; [`supervise`] starts again
//! a long-running task that panicked or ended early.
#![forbid(unsafe_code)]

pub mod app;
pub mod config;
pub mod dns;
pub mod http;
pub mod metrics;
pub mod rebuild;
pub mod sources;
pub mod supervise;
pub mod zone;
