//! Integration tests: the real server on 127.0.0.1:0, queried with real DNS over UDP and
//! TCP. One test binary, one module per behaviour.

mod answers;
mod attachment;
mod bad_manifests;
mod bad_objects;
mod cli;
mod cluster;
mod clusters;
mod edges;
mod events;
mod fake_api;
mod fallthrough;
mod fixtures;
mod flaky_api;
mod http;
mod kinds;
mod packets;
mod peers;
mod prepared;
mod reload;
mod reverse;
mod secondary;
mod soak;
mod sockets;
mod srv;
mod static_names;
mod status_page;
mod support;
mod tcp;
mod tsig;
mod zone_files;
