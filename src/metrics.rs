//! Every metric family, registered in one place.
//!
//! The DNS families keep CoreDNS's names and labels, so dashboards and alerts written for
//! k8s_gateway keep working after a switch. On the query path a metric is one atomic
//! add: each label combination is looked up in the family (which takes a lock) only the
//! first time it is seen, then cached in a lock-free slot.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{LowerName, Name, RecordType};
use prometheus_client::encoding::{EncodeLabelSet, LabelSetEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Query types with a label of their own, as CoreDNS counts them; the rest are "other".
const TYPES: [RecordType; 18] = [
    RecordType::A,
    RecordType::AAAA,
    RecordType::CNAME,
    RecordType::DNSKEY,
    RecordType::DS,
    RecordType::HTTPS,
    RecordType::MX,
    RecordType::NS,
    RecordType::NSEC,
    RecordType::NSEC3,
    RecordType::PTR,
    RecordType::RRSIG,
    RecordType::SOA,
    RecordType::SRV,
    RecordType::TXT,
    RecordType::IXFR,
    RecordType::AXFR,
    RecordType::ANY,
];
const TYPE_SLOTS: usize = TYPES.len() + 1;
const RCODES: [(ResponseCode, &str); 7] = [
    (ResponseCode::NoError, "NOERROR"),
    (ResponseCode::NXDomain, "NXDOMAIN"),
    (ResponseCode::Refused, "REFUSED"),
    (ResponseCode::ServFail, "SERVFAIL"),
    (ResponseCode::FormErr, "FORMERR"),
    (ResponseCode::NotImp, "NOTIMP"),
    (ResponseCode::BADVERS, "BADVERS"),
];
const RCODE_SLOTS: usize = RCODES.len() + 1;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    server: String,
    zone: String,
    proto: &'static str,
    family: &'static str,
    r#type: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResponseLabels {
    server: String,
    zone: String,
    rcode: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DurationLabels {
    server: String,
    zone: String,
    r#type: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SizeLabels {
    server: String,
    zone: String,
    proto: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
    revision: &'static str,
    goversion: &'static str,
}

fn duration_histogram() -> Histogram {
    // 25 µs to ~0.8 s, as CoreDNS's buckets reach down to sub-millisecond answers.
    Histogram::new(exponential_buckets(0.000_025, 2.0, 16))
}

fn size_histogram() -> Histogram {
    Histogram::new([
        0.0, 100.0, 200.0, 300.0, 400.0, 511.0, 1023.0, 2047.0, 4095.0, 8291.0, 16000.0, 32000.0,
        48000.0, 64000.0,
    ])
}

/// Every metric of the process, shared by `Arc`. The per-part handles (`zone`, `sources`)
/// are cheap to clone: their families are shared.
pub struct Metrics {
    requests: Family<RequestLabels, Counter>,
    responses: Family<ResponseLabels, Counter>,
    durations: Family<DurationLabels, Histogram, fn() -> Histogram>,
    sizes: Family<SizeLabels, Histogram, fn() -> Histogram>,
    /// The metrics the sources and the zone builder update.
    pub zone: ZoneMetrics,
    /// The metrics of the cluster source (watches and discovery).
    pub sources: SourceMetrics,
    /// The metrics of `--fallthrough`: upstream queries and their cache.
    pub forward: ForwardMetrics,
    /// NOTIFY messages to secondaries (`--notify`).
    pub notify: NotifyMetrics,
    /// Kubernetes Events written on the objects (`--events`).
    pub events: EventMetrics,
    /// What the DNS sockets could not do: accept a connection, send an answer.
    pub sockets: SocketMetrics,
    /// Long-running tasks that ended or panicked and were started again, per task
    /// (`udp`: a UDP worker; `watch`: a cluster watch).
    pub task_restarts: Family<TaskLabels, Counter>,
    /// Zone transfers ended before their closing SOA because a message could not be
    /// encoded: the secondary sees a cut transfer and retries, never a zone with a hole.
    transfer_aborts: Counter,
    /// Signed requests whose TSIG failed (`--tsig-key`), by TSIG error.
    tsig_rejected: Family<TsigLabels, Counter>,
    /// Created per `--listen` address by [`Metrics::dns_server`].
    domains: Vec<LowerName>,
}

/// Metrics about the zone and the sources that feed it.
#[derive(Clone)]
pub struct ZoneMetrics {
    pub builds: Counter,
    pub build_seconds: Histogram,
    pub last_change: Gauge<f64, std::sync::atomic::AtomicU64>,
    pub serial: Gauge,
    pub records: Family<ZoneKindLabels, Gauge>,
    pub names: Family<ZoneLabels, Gauge>,
    pub skipped: Family<SkipLabels, Gauge>,
    pub reload_errors: Counter,
}

/// Kubernetes Events (`--events`), by what became of each: `written`, `series` (an
/// existing Event's count raised), `duplicate` (another replica wrote it), `dropped`
/// (queue full, or over the object's rate), `failed` (the API refused or was away).
#[derive(Clone, Default)]
pub struct EventMetrics {
    pub events: Family<EventLabels, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    pub result: &'static str,
}

/// Metrics of the cluster source, per kind of API object.
#[derive(Clone, Default)]
pub struct SourceMetrics {
    /// 1 for the state each kind is in, 0 for the others.
    pub state: Family<SourceStateLabels, Gauge>,
    pub watch_errors: Family<WatchErrorLabels, Counter>,
    pub objects: Family<KindLabels, Gauge>,
    /// The watches' share of [`Metrics::task_restarts`] (the same family).
    pub task_restarts: Family<TaskLabels, Counter>,
}

/// Metrics of the fall-through to upstream servers, named as CoreDNS's `forward` and
/// `cache` plugins name theirs, plus what those plugins do not count.
#[derive(Clone)]
pub struct ForwardMetrics {
    /// Queries sent, per upstream (`coredns_forward_requests_total`).
    pub requests: Family<UpstreamLabels, Counter>,
    /// Accepted answers, per upstream and response code.
    pub responses: Family<UpstreamRcodeLabels, Counter>,
    /// Time from sending a query to its accepted answer.
    pub durations: Family<UpstreamRcodeLabels, Histogram, fn() -> Histogram>,
    /// Queries answered SERVFAIL because the in-flight limit was reached
    /// (`coredns_forward_max_concurrent_rejects_total`).
    pub max_concurrent_rejects: Counter,
    /// Upstream packets ignored: malformed, oversized, or not the answer to our query.
    pub ignored: Family<IgnoredLabels, Counter>,
    /// Queries that came back to us carrying our own forwarding marker.
    pub loops: Counter,
    /// Questions answered SERVFAIL without being asked, per bound reached (`waiters`:
    /// too many clients wait for that question; `tasks`: too many UDP answers pending).
    pub overload_rejects: Family<OverloadLabels, Counter>,
    /// Answers in the cache, as of the last one stored.
    pub cache_entries: Gauge,
    cache_hits: Family<CacheHitLabels, Counter>,
    cache_misses: Family<CacheLabels, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TsigLabels {
    error: &'static str,
}

/// Metrics of the NOTIFY messages to secondaries. Cheap to clone.
#[derive(Clone, Default)]
pub struct NotifyMetrics {
    /// NOTIFY messages sent (retries included), per secondary.
    pub sent: Family<UpstreamLabels, Counter>,
    /// NOTIFY messages a secondary acknowledged.
    pub acknowledged: Family<UpstreamLabels, Counter>,
    /// Replies ignored: malformed, from another address, or with another ID or opcode.
    pub ignored: Family<UpstreamLabels, Counter>,
}

/// Errors of the DNS sockets, shared by every listen address. Cheap to clone.
#[derive(Clone, Default)]
pub struct SocketMetrics {
    /// TCP accepts that failed for want of resources, per reason; the accept loop backs
    /// off after each instead of retrying at once.
    pub tcp_accept_errors: Family<AcceptErrorLabels, Counter>,
    /// UDP answers the kernel refused to send: dropped (the client asks again).
    pub udp_send_errors: Counter,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AcceptErrorLabels {
    /// `emfile` (this process is out of file descriptors), `enfile` (the system is),
    /// `enobufs`, or `other` (out of memory, or an error we do not know).
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TaskLabels {
    /// `udp` or `watch`.
    pub task: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamLabels {
    pub to: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamRcodeLabels {
    pub to: String,
    pub rcode: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct IgnoredLabels {
    pub to: String,
    /// `malformed`, `oversized` or `mismatch`.
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OverloadLabels {
    /// `waiters` or `tasks`.
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheHitLabels {
    server: String,
    r#type: &'static str,
    zones: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabels {
    server: String,
    zones: String,
}

fn forward_histogram() -> Histogram {
    // 250 µs to ~8 s, as CoreDNS's forward plugin buckets it.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
}

impl ForwardMetrics {
    fn new() -> Self {
        ForwardMetrics {
            requests: Family::default(),
            responses: Family::default(),
            durations: Family::new_with_constructor(forward_histogram),
            max_concurrent_rejects: Counter::default(),
            ignored: Family::default(),
            loops: Counter::default(),
            overload_rejects: Family::default(),
            cache_entries: Gauge::default(),
            cache_hits: Family::default(),
            cache_misses: Family::default(),
        }
    }

    /// The label of an upstream's response code, as CoreDNS writes it.
    pub fn rcode_label(rcode: ResponseCode) -> String {
        RCODES.iter().find(|(r, _)| *r == rcode).map_or_else(
            || rcode.to_string().to_uppercase(),
            |(_, l)| (*l).to_string(),
        )
    }
}

/// The `cluster` label of the source metrics: the `--cluster` name, and no label at
/// all without `--cluster`, so a single cluster's series stay as they were.
#[derive(Clone, Debug, Default, Hash, PartialEq, Eq)]
pub struct ClusterLabel(pub Option<String>);

impl EncodeLabelSet for ClusterLabel {
    fn encode(&self, encoder: &mut LabelSetEncoder<'_>) -> Result<(), std::fmt::Error> {
        match &self.0 {
            Some(name) => [("cluster", name.as_str())].encode(encoder),
            None => Ok(()),
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceStateLabels {
    #[prometheus(flatten)]
    pub cluster: ClusterLabel,
    pub kind: String,
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WatchErrorLabels {
    #[prometheus(flatten)]
    pub cluster: ClusterLabel,
    pub kind: String,
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    #[prometheus(flatten)]
    pub cluster: ClusterLabel,
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ZoneKindLabels {
    #[prometheus(flatten)]
    pub cluster: ClusterLabel,
    pub zone: String,
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ZoneLabels {
    pub zone: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SkipLabels {
    #[prometheus(flatten)]
    pub cluster: ClusterLabel,
    pub kind: String,
    pub reason: String,
}

fn build_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_1, 2.0, 16))
}

impl Metrics {
    /// Creates the families and registers them all in `registry`.
    pub fn new(domains: &[Name], registry: &mut Registry) -> Arc<Self> {
        let mut domains: Vec<LowerName> = domains.iter().map(LowerName::from).collect();
        domains.sort_by_key(|d| std::cmp::Reverse(d.num_labels()));
        domains.dedup();
        let task_restarts: Family<TaskLabels, Counter> = Family::default();
        let metrics = Metrics {
            requests: Family::default(),
            responses: Family::default(),
            durations: Family::new_with_constructor(duration_histogram),
            sizes: Family::new_with_constructor(size_histogram),
            zone: ZoneMetrics {
                builds: Counter::default(),
                build_seconds: build_histogram(),
                last_change: Gauge::default(),
                serial: Gauge::default(),
                records: Family::default(),
                names: Family::default(),
                skipped: Family::default(),
                reload_errors: Counter::default(),
            },
            sources: SourceMetrics {
                // The watches count their restarts in the same family as the UDP workers.
                task_restarts: task_restarts.clone(),
                ..SourceMetrics::default()
            },
            forward: ForwardMetrics::new(),
            notify: NotifyMetrics::default(),
            events: EventMetrics::default(),
            sockets: SocketMetrics::default(),
            task_restarts,
            transfer_aborts: Counter::default(),
            tsig_rejected: Family::default(),
            domains,
        };
        let dns = registry.sub_registry_with_prefix("coredns_dns");
        dns.register(
            "requests",
            "Counter of DNS requests made per zone, protocol and family",
            metrics.requests.clone(),
        );
        dns.register(
            "responses",
            "Counter of response status codes",
            metrics.responses.clone(),
        );
        dns.register(
            "request_duration_seconds",
            "Histogram of the time (in seconds) each request took",
            metrics.durations.clone(),
        );
        dns.register(
            "response_size_bytes",
            "Size of the returned response in bytes",
            metrics.sizes.clone(),
        );
        // A gauge fixed at 1, as CoreDNS exposes it (the Prometheus text format has no
        // info type).
        let build = Family::<BuildLabels, Gauge>::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
                revision: option_env!("K8S_GATEWAY_REVISION").unwrap_or("unknown"),
                goversion: "none (Rust)",
            })
            .set(1);
        registry
            .sub_registry_with_prefix("coredns")
            .register("build_info", "A metric with a constant '1' value labeled by version, revision, and goversion from which CoreDNS was built", build);

        let f = &metrics.forward;
        let forward = registry.sub_registry_with_prefix("coredns_forward");
        forward.register(
            "requests",
            "Counter of requests made per upstream",
            f.requests.clone(),
        );
        forward.register(
            "responses",
            "Counter of responses received per upstream",
            f.responses.clone(),
        );
        forward.register(
            "request_duration_seconds",
            "Histogram of the time each request took",
            f.durations.clone(),
        );
        forward.register(
            "max_concurrent_rejects",
            "Counter of the number of queries rejected because the concurrent queries were at maximum",
            f.max_concurrent_rejects.clone(),
        );
        let cache = registry.sub_registry_with_prefix("coredns_cache");
        cache.register("hits", "The count of cache hits", f.cache_hits.clone());
        cache.register(
            "misses",
            "The count of cache misses",
            f.cache_misses.clone(),
        );

        let own = registry.sub_registry_with_prefix("k8s_gateway");
        own.register(
            "forward_ignored_answers",
            "Packets from a --fallthrough server ignored, per reason (malformed, oversized, mismatch: another ID or question)",
            f.ignored.clone(),
        );
        own.register(
            "forward_loops",
            "Queries that arrived carrying our own forwarding marker and were answered SERVFAIL",
            f.loops.clone(),
        );
        own.register(
            "forward_overload_rejects",
            "Questions answered SERVFAIL without being asked upstream, per bound reached (waiters: 64 clients wait for that question already; tasks: 6400 UDP answers are pending)",
            f.overload_rejects.clone(),
        );
        own.register(
            "forward_cache_entries",
            "Upstream answers in the --fallthrough cache, as of the last one stored",
            f.cache_entries.clone(),
        );
        let n = &metrics.notify;
        own.register(
            "notify_sent",
            "NOTIFY messages sent to each --notify secondary, retries included",
            n.sent.clone(),
        );
        own.register(
            "notify_acknowledged",
            "NOTIFY messages each secondary acknowledged",
            n.acknowledged.clone(),
        );
        own.register(
            "notify_ignored_replies",
            "Replies to NOTIFY ignored: malformed, or with another ID or opcode",
            n.ignored.clone(),
        );
        own.register(
            "tcp_accept_errors",
            "TCP connections not accepted for want of resources, per reason (emfile, enfile, enobufs, other); each backs the accept loop off",
            metrics.sockets.tcp_accept_errors.clone(),
        );
        own.register(
            "udp_send_errors",
            "UDP answers the kernel refused to send (dropped; the client asks again)",
            metrics.sockets.udp_send_errors.clone(),
        );
        own.register(
            "events",
            "Kubernetes Events on the objects (--events), per result: written, series (an existing Event's count raised), duplicate (another replica wrote it), dropped (queue full or over the object's rate), failed",
            metrics.events.events.clone(),
        );
        own.register(
            "task_restarts",
            "Long-running tasks that ended or panicked and were started again, per task (udp, watch)",
            metrics.task_restarts.clone(),
        );
        own.register(
            "transfer_aborts",
            "Zone transfers cut off before their closing SOA because a message could not be encoded",
            metrics.transfer_aborts.clone(),
        );
        own.register(
            "tsig_rejected",
            "Signed requests answered NOTAUTH because their TSIG failed, per TSIG error (BADKEY, BADSIG, BADTIME)",
            metrics.tsig_rejected.clone(),
        );
        let z = &metrics.zone;
        own.register(
            "zone_builds",
            "Zones built from the sources (a build that changes nothing still counts)",
            z.builds.clone(),
        );
        own.register(
            "zone_build_duration_seconds",
            "Time to turn every object into a new zone",
            z.build_seconds.clone(),
        );
        own.register(
            "zone_last_change_timestamp_seconds",
            "Unix time when the served records last changed",
            z.last_change.clone(),
        );
        own.register(
            "zone_serial",
            "The SOA serial of the zone being served",
            z.serial.clone(),
        );
        own.register(
            "zone_records",
            "Records in the zone, per domain and kind of the object they came from",
            z.records.clone(),
        );
        own.register(
            "zone_names",
            "Names with records, per domain",
            z.names.clone(),
        );
        own.register(
            "skipped_objects",
            "Objects or records left out of the zone in the last build, per kind and reason",
            z.skipped.clone(),
        );
        own.register(
            "manifest_reload_errors",
            "Manifest files or documents, zone files or zone-file records that could not be read",
            z.reload_errors.clone(),
        );
        let w = &metrics.sources;
        own.register(
            "source_state",
            "1 for the state each watched kind is in (pending, synced, failing, not_served, forbidden), 0 otherwise",
            w.state.clone(),
        );
        own.register(
            "watch_errors",
            "Errors listing or watching the API, per kind and reason (forbidden, not_found, expired, connection, invalid_object, ...)",
            w.watch_errors.clone(),
        );
        own.register(
            "source_objects",
            "Objects of each kind held from the cluster",
            w.objects.clone(),
        );
        Arc::new(metrics)
    }

    /// The DNS metrics of one listening address.
    pub fn dns_server(self: &Arc<Self>, listen: SocketAddr) -> DnsMetrics {
        let zones = self.domains.len() + 1;
        DnsMetrics {
            metrics: self.clone(),
            server: format!("dns://{listen}"),
            requests: slots(zones * 2 * 2 * TYPE_SLOTS),
            responses: slots(zones * RCODE_SLOTS),
            durations: slots(zones * TYPE_SLOTS),
            sizes: slots(zones * 2),
        }
    }
}

fn slots<M>(n: usize) -> Box<[OnceLock<M>]> {
    (0..n).map(|_| OnceLock::new()).collect()
}

/// The request metrics of one server, with a lock-free slot per label combination.
pub struct DnsMetrics {
    metrics: Arc<Metrics>,
    server: String,
    requests: Box<[OnceLock<Counter>]>,
    responses: Box<[OnceLock<Counter>]>,
    durations: Box<[OnceLock<Histogram>]>,
    sizes: Box<[OnceLock<Histogram>]>,
}

/// Started when a request arrives; observed once its answer is sent.
#[derive(Clone, Copy)]
pub struct RequestTimer(Instant);

/// One answered request as the DNS layer reports it: plain values, so that metrics
/// import nothing of `dns` (the arrows point from the transports to the metrics).
pub struct Answered<'a> {
    pub question: Option<&'a (LowerName, RecordType)>,
    pub rcode: ResponseCode,
    /// `"udp"` or `"tcp"`.
    pub proto: &'static str,
    /// Bytes of the response.
    pub size: usize,
}

impl DnsMetrics {
    /// Counts a signed request answered NOTAUTH with TSIG `error` (`BADSIG`, ...): a
    /// secondary with the wrong key shows here, and nowhere else on our side.
    pub fn tsig_rejected(&self, error: &'static str) {
        self.metrics
            .tsig_rejected
            .get_or_create(&TsigLabels { error })
            .inc();
    }

    /// The fall-through metrics (shared by every server).
    pub fn forward(&self) -> &ForwardMetrics {
        &self.metrics.forward
    }

    /// The socket error metrics (shared by every server).
    pub fn sockets(&self) -> &SocketMetrics {
        &self.metrics.sockets
    }

    /// Counts an upstream answer for `name` served from the cache (`denial`: a negative
    /// one), or a miss, with CoreDNS's `server`, `type` and `zones` labels.
    pub fn cache_lookup(&self, name: &LowerName, hit: Option<bool>) {
        let zones = self
            .metrics
            .domains
            .iter()
            .find(|d| d.zone_of(name))
            .map_or_else(|| ".".to_string(), ToString::to_string);
        let server = self.server.clone();
        let forward = &self.metrics.forward;
        match hit {
            Some(denial) => forward
                .cache_hits
                .get_or_create(&CacheHitLabels {
                    server,
                    r#type: if denial { "denial" } else { "success" },
                    zones,
                })
                .inc(),
            None => forward
                .cache_misses
                .get_or_create(&CacheLabels { server, zones })
                .inc(),
        };
    }

    /// Counts a zone transfer cut off before its closing SOA.
    pub fn transfer_aborted(&self) {
        self.metrics.transfer_aborts.inc();
    }

    pub fn start(&self) -> RequestTimer {
        RequestTimer(Instant::now())
    }

    /// Counts one answered request.
    pub fn observe(&self, timer: &RequestTimer, peer: SocketAddr, answered: Answered<'_>) {
        let Answered {
            question,
            rcode,
            proto: proto_label,
            size,
        } = answered;
        let zone = match question {
            Some((name, _)) => self
                .metrics
                .domains
                .iter()
                .position(|d| d.zone_of(name))
                .unwrap_or(self.metrics.domains.len()),
            None => self.metrics.domains.len(),
        };
        let ty = question
            .and_then(|(_, t)| TYPES.iter().position(|x| x == t))
            .unwrap_or(TYPES.len());
        let proto = usize::from(proto_label == "tcp");
        let family = usize::from(peer.is_ipv6() && !is_v4_mapped(peer));
        let rcode = RCODES
            .iter()
            .position(|(r, _)| *r == rcode)
            .unwrap_or(RCODES.len());

        let zone_label = || match self.metrics.domains.get(zone) {
            Some(d) => d.to_string(),
            None => ".".to_string(),
        };
        let type_label = TYPES.get(ty).map_or("other", |t| record_type_label(*t));

        self.requests[((zone * 2 + proto) * 2 + family) * TYPE_SLOTS + ty]
            .get_or_init(|| {
                self.metrics.requests.get_or_create_owned(&RequestLabels {
                    server: self.server.clone(),
                    zone: zone_label(),
                    proto: proto_label,
                    family: if family == 0 { "1" } else { "2" },
                    r#type: type_label,
                })
            })
            .inc();
        self.responses[zone * RCODE_SLOTS + rcode]
            .get_or_init(|| {
                self.metrics.responses.get_or_create_owned(&ResponseLabels {
                    server: self.server.clone(),
                    zone: zone_label(),
                    rcode: RCODES.get(rcode).map_or("OTHER", |(_, l)| l),
                })
            })
            .inc();
        self.durations[zone * TYPE_SLOTS + ty]
            .get_or_init(|| {
                self.metrics.durations.get_or_create_owned(&DurationLabels {
                    server: self.server.clone(),
                    zone: zone_label(),
                    r#type: type_label,
                })
            })
            .observe(timer.0.elapsed().as_secs_f64());
        self.sizes[zone * 2 + proto]
            .get_or_init(|| {
                self.metrics.sizes.get_or_create_owned(&SizeLabels {
                    server: self.server.clone(),
                    zone: zone_label(),
                    proto: proto_label,
                })
            })
            .observe(size as f64);
    }
}

fn is_v4_mapped(peer: SocketAddr) -> bool {
    matches!(peer, SocketAddr::V6(v6) if v6.ip().to_ipv4_mapped().is_some())
}

fn record_type_label(t: RecordType) -> &'static str {
    match t {
        RecordType::A => "A",
        RecordType::AAAA => "AAAA",
        RecordType::CNAME => "CNAME",
        RecordType::DNSKEY => "DNSKEY",
        RecordType::DS => "DS",
        RecordType::HTTPS => "HTTPS",
        RecordType::MX => "MX",
        RecordType::NS => "NS",
        RecordType::NSEC => "NSEC",
        RecordType::NSEC3 => "NSEC3",
        RecordType::PTR => "PTR",
        RecordType::RRSIG => "RRSIG",
        RecordType::SOA => "SOA",
        RecordType::SRV => "SRV",
        RecordType::TXT => "TXT",
        RecordType::IXFR => "IXFR",
        RecordType::AXFR => "AXFR",
        RecordType::ANY => "ANY",
        _ => "other",
    }
}
