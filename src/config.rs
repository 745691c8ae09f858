//! Command-line and environment options, parsed and validated once at start.
//!
//! Every option also reads `K8S_GATEWAY_<NAME>` (lists comma-separated), so the chart
//! and plain containers can configure us without a command line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use hickory_proto::rr::{LowerName, Name};

use crate::zone::names::parse_hostname;
use crate::zone::{AddressRange, DEFAULT_APEX, DEFAULT_TTL, Kind, ReverseZone, Settings};

#[derive(Debug, Parser)]
#[command(
    name = "k8s-gateway",
    version,
    about = "Split-DNS for Kubernetes home clusters: answers your domain with the cluster's own addresses"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve DNS for the configured domains.
    Serve(ServeArgs),
    /// Print the zone as RFC 1035 zone files (one per domain) and exit.
    Render(RenderArgs),
    /// Explain one name: its records and the objects behind them, the kinds it lost to,
    /// the objects skipped on its account. Exits 0 when the name is served, 1 when not.
    Explain(ExplainArgs),
}

/// Options of `explain`: the name, the output format, and the same zone and source
/// options as `serve`.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The name to explain (`app.home.example`).
    #[arg(value_name = "NAME")]
    pub name: String,
    /// `table` for people, `json` (the `/explain` document) for scripts.
    #[arg(long, short, value_enum, default_value_t = Output::Table)]
    pub output: Output,
    #[command(flatten)]
    pub zone: ZoneArgs,
    #[command(flatten)]
    pub source: SourceArgs,
}

/// How `explain` prints its answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Table,
    Json,
}

/// Options of `render`: the same zone and source options as `serve`.
#[derive(Debug, Args)]
pub struct RenderArgs {
    #[command(flatten)]
    pub zone: ZoneArgs,
    #[command(flatten)]
    pub source: SourceArgs,
}

/// Options of `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub zone: ZoneArgs,
    #[command(flatten)]
    pub source: SourceArgs,

    /// Address for DNS over UDP and TCP; repeat for more (e.g. IPv4 and IPv6).
    #[arg(
        long,
        env = "K8S_GATEWAY_LISTEN",
        value_name = "ADDR:PORT",
        value_delimiter = ',',
        default_value = "0.0.0.0:1053"
    )]
    pub listen: Vec<SocketAddr>,

    /// Address of the HTTP endpoint for Prometheus and the kubelet (/metrics, /healthz,
    /// /readyz).
    #[arg(
        long,
        env = "K8S_GATEWAY_HTTP_LISTEN",
        value_name = "ADDR:PORT",
        default_value = "0.0.0.0:8080"
    )]
    pub http_listen: SocketAddr,

    /// Address of the debug views (the status page /, /zone, /explain), which show the
    /// whole zone; loopback by default (reach it with `kubectl port-forward`); `off`
    /// turns it off.
    #[arg(
        long,
        env = "K8S_GATEWAY_DEBUG_LISTEN",
        value_name = "ADDR:PORT|off",
        default_value = "127.0.0.1:8081",
        value_parser = parse_debug_listen
    )]
    pub debug_listen: DebugListen,
    /// UDP worker threads per listen address, each with its own socket (SO_REUSEPORT on
    /// Linux, so the kernel spreads queries over them). Default: one per CPU core.
    #[arg(long, env = "K8S_GATEWAY_UDP_WORKERS", value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub udp_workers: Option<u16>,
    /// Under load, how long a UDP worker that has emptied its queue waits for more
    /// queries before reading again, so that it answers more per system call (Linux).
    /// Only after a batch of 4 or more; 0 turns it off.
    #[arg(long, env = "K8S_GATEWAY_UDP_BATCH_WAIT", value_name = "MICROSECONDS", default_value_t = DEFAULT_UDP_BATCH_WAIT_US, value_parser = clap::value_parser!(u16).range(0..=1000))]
    pub udp_batch_wait: u16,
    /// Open TCP connections per listen address at most; when full, the one idle the
    /// longest is closed to admit a new client (RFC 7766 §6.2.3), so this bounds the
    /// sockets and buffers that TCP clients can hold.
    #[arg(long, env = "K8S_GATEWAY_TCP_MAX_CONNECTIONS", value_name = "N", default_value_t = DEFAULT_TCP_MAX_CONNECTIONS, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub tcp_max_connections: u32,
    /// Open TCP connections one client address may hold; its longest-idle one is closed
    /// for its next.
    #[arg(long, env = "K8S_GATEWAY_TCP_MAX_PER_CLIENT", value_name = "N", default_value_t = DEFAULT_TCP_MAX_PER_CLIENT, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub tcp_max_per_client: u32,

    /// Log format.
    #[arg(long, env = "K8S_GATEWAY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// A DNS server to ask for names of our domains that the zone does not have
    /// (instead of NXDOMAIN); repeat for more, asked in turn. Port 53 unless given.
    #[arg(
        long,
        env = "K8S_GATEWAY_FALLTHROUGH",
        value_name = "ADDR[:PORT]",
        value_delimiter = ',',
        value_parser = parse_upstream
    )]
    pub fallthrough: Vec<SocketAddr>,

    /// Answers from the --fallthrough servers kept at most (by their TTL); 0 keeps none.
    #[arg(long, env = "K8S_GATEWAY_FALLTHROUGH_CACHE", value_name = "ENTRIES", default_value_t = DEFAULT_FALLTHROUGH_CACHE)]
    pub fallthrough_cache: usize,

    /// Addresses allowed to transfer our zones (AXFR/IXFR over TCP), e.g. a secondary on
    /// the Pi-hole host; repeat for more. Default: nobody.
    #[arg(
        long = "transfer-allow",
        env = "K8S_GATEWAY_TRANSFER_ALLOW",
        value_name = "CIDR",
        value_delimiter = ',',
        value_parser = parse_address_range
    )]
    pub transfer_allow: Vec<AddressRange>,

    /// A secondary to send NOTIFY to whenever the zone's serial changes; repeat for more.
    /// Port 53 unless given.
    #[arg(
        long = "notify",
        env = "K8S_GATEWAY_NOTIFY",
        value_name = "ADDR[:PORT]",
        value_delimiter = ',',
        value_parser = parse_upstream
    )]
    pub notify: Vec<SocketAddr>,

    /// A TSIG key file (as `tsig-keygen` or `keymgr -t` write it); repeat for more. With
    /// a key, a transfer must also be signed with one, and NOTIFY is signed with the
    /// first.
    #[arg(
        long = "tsig-key",
        env = "K8S_GATEWAY_TSIG_KEY",
        value_name = "FILE",
        value_delimiter = ','
    )]
    pub tsig_key: Vec<PathBuf>,
}

/// Upstream answers cached at most, by default.
pub const DEFAULT_FALLTHROUGH_CACHE: usize = 10_000;

/// `--tcp-max-connections`: bounded memory, and room for a home network's resolvers.
pub const DEFAULT_TCP_MAX_CONNECTIONS: u32 = 512;
/// `--tcp-max-per-client`: a resolver forwarding everything (Pi-hole) needs a few at a
/// time, not 64.
pub const DEFAULT_TCP_MAX_PER_CLIENT: u32 = 64;

/// `--udp-batch-wait`: as good as longer waits on `dnsbench.sh` (README, Performance),
/// and well under a LAN's round trip.
pub const DEFAULT_UDP_BATCH_WAIT_US: u16 = 50;

/// What the zone is and how it answers.
#[derive(Debug, Args)]
pub struct ZoneArgs {
    /// A domain we answer for; repeat for more. The most specific wins when they nest.
    #[arg(long = "domain", env = "K8S_GATEWAY_DOMAIN", value_name = "DOMAIN", value_delimiter = ',', required = true, value_parser = parse_domain)]
    pub domains: Vec<Name>,

    /// TTL of the answers, in seconds (also the negative-answer TTL).
    #[arg(long, env = "K8S_GATEWAY_TTL", value_name = "SECONDS", default_value_t = DEFAULT_TTL, value_parser = clap::value_parser!(u32).range(0..=3600))]
    pub ttl: u32,

    /// Name of the zone's primary name server, relative to each domain (NS and SOA).
    #[arg(long, env = "K8S_GATEWAY_APEX", value_name = "NAME", default_value = DEFAULT_APEX, value_parser = parse_relative)]
    pub apex: Name,

    /// Name of a second name server, relative to each domain.
    #[arg(long, env = "K8S_GATEWAY_SECONDARY", value_name = "NAME", value_parser = parse_relative)]
    pub secondary: Option<Name>,

    /// Kinds that publish names, in order of precedence: the first kind with records
    /// for a name wins.
    #[arg(long, env = "K8S_GATEWAY_RESOURCES", value_name = "KIND,...", value_delimiter = ',', value_parser = parse_kind,
          default_value = "DNSEndpoint,HTTPRoute,GRPCRoute,TLSRoute,VirtualService,Ingress,Service")]
    pub resources: Vec<Kind>,

    /// An address range whose reverse domain we serve (PTR for every address served in
    /// it), e.g. `192.168.10.0/24`; repeat for more. IPv4 on octet, IPv6 on nibble
    /// boundaries.
    #[arg(long = "reverse-zone", env = "K8S_GATEWAY_REVERSE_ZONE", value_name = "CIDR", value_delimiter = ',', value_parser = parse_reverse_zone)]
    pub reverse_zones: Vec<ReverseZone>,
}

/// Where the objects come from.
#[derive(Debug, Args)]
pub struct SourceArgs {
    /// A manifest file or folder (recursive, *.yaml|*.yml|*.json), watched for changes;
    /// repeat for more. Without it, the cluster's API is watched; with it, only the
    /// files, unless --watch-cluster.
    #[arg(
        long,
        env = "K8S_GATEWAY_MANIFESTS",
        value_name = "PATH",
        value_delimiter = ','
    )]
    pub manifests: Vec<PathBuf>,

    /// With --manifests, watch the cluster too: both feed one zone (the names a home
    /// network has outside the cluster, beside the cluster's).
    #[arg(long, env = "K8S_GATEWAY_WATCH_CLUSTER")]
    pub watch_cluster: bool,

    /// An RFC 1035 zone file for one of the --domain's (its $ORIGIN, else its SOA's
    /// owner), watched for changes; repeat for more. Its A, AAAA, CNAME, TXT and SRV
    /// records serve below every --resources kind. Alone, it is the only source; with
    /// --manifests or --watch-cluster, beside them.
    #[arg(
        long = "zone-file",
        env = "K8S_GATEWAY_ZONE_FILE",
        value_name = "PATH",
        value_delimiter = ','
    )]
    pub zone_files: Vec<PathBuf>,

    /// Record a Kubernetes Event (events.k8s.io/v1) on an object whenever what it
    /// publishes changes: Published, NotPublished (with the reason) or Superseded, for
    /// `kubectl describe`. Needs the cluster and RBAC create/patch on events.
    #[arg(long, env = "K8S_GATEWAY_EVENTS")]
    pub events: bool,

    /// Kubeconfig file for the cluster (default: the pod's service account, else
    /// KUBECONFIG or ~/.kube/config).
    #[arg(long, env = "K8S_GATEWAY_KUBECONFIG", value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,

    /// Kubeconfig context to use (default: the current context).
    #[arg(long, env = "K8S_GATEWAY_CONTEXT", value_name = "NAME")]
    pub context: Option<String>,

    /// One of several clusters to watch, as `NAME=KUBECONFIG[:CONTEXT]`; repeat for
    /// more. Their objects feed one zone; when two publish the same name, the one given
    /// first wins. An empty KUBECONFIG (`NAME=`, `NAME=:CONTEXT`) is the default: the
    /// pod's service account, else KUBECONFIG or ~/.kube/config. Instead of
    /// --kubeconfig/--context.
    #[arg(
        long = "cluster",
        env = "K8S_GATEWAY_CLUSTER",
        value_name = "NAME=KUBECONFIG[:CONTEXT]",
        value_delimiter = ',',
        value_parser = parse_cluster
    )]
    pub clusters: Vec<NamedCluster>,

    /// Watch only this namespace; repeat for more (default: all namespaces).
    #[arg(
        long = "namespace",
        env = "K8S_GATEWAY_NAMESPACE",
        value_name = "NS",
        value_delimiter = ','
    )]
    pub namespaces: Vec<String>,

    /// Label selector applied to every kind (`app=web,tier!=internal`).
    #[arg(long, env = "K8S_GATEWAY_LABEL_SELECTOR", value_name = "SELECTOR")]
    pub label_selector: Option<String>,

    /// How often to re-discover which kinds the cluster serves (a CRD installed later is
    /// picked up without a restart), e.g. `60s`, `5m`.
    #[arg(long, env = "K8S_GATEWAY_RESYNC", value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub resync: Duration,

    /// How long the first zone waits for a kind whose list keeps failing (a 5xx, a
    /// conversion webhook that is down) once the API has answered for another kind:
    /// after it, the zone is served without that kind, which shows as `failing` and is
    /// retried until its list succeeds. E.g. `30s`, `2m`.
    #[arg(long, env = "K8S_GATEWAY_SYNC_TIMEOUT", value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub sync_timeout: Duration,

    /// Only Ingresses of this class publish (`spec.ingressClassName` or the legacy
    /// annotation); repeat for more. Unset: every Ingress.
    #[arg(
        long = "ingress-class",
        env = "K8S_GATEWAY_INGRESS_CLASS",
        value_name = "NAME",
        value_delimiter = ','
    )]
    pub ingress_classes: Vec<String>,

    /// Only routes attached to Gateways of this class publish; repeat for more.
    #[arg(
        long = "gateway-class",
        env = "K8S_GATEWAY_GATEWAY_CLASS",
        value_name = "NAME",
        value_delimiter = ','
    )]
    pub gateway_classes: Vec<String>,
}

/// Where the debug views listen, if anywhere. A newtype so that clap does not read
/// `Option` as "the flag may be left out".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DebugListen(pub Option<SocketAddr>);

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// What is wrong with the options, in one line. Exit code 2.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Invalid(String),
    #[error("{option} {path}: {source}")]
    Unreadable {
        /// `--manifests` or `--zone-file`.
        option: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Where the objects come from.
#[derive(Clone, Debug)]
pub enum Source {
    Manifests(Vec<PathBuf>),
    Cluster(ClusterOptions),
    /// `--manifests` with `--watch-cluster`: one object set from both.
    Both(Vec<PathBuf>, ClusterOptions),
}

impl Source {
    /// The manifest paths read (none without `--manifests`).
    pub fn manifests(&self) -> &[PathBuf] {
        match self {
            Source::Manifests(paths) | Source::Both(paths, _) => paths,
            Source::Cluster(_) => &[],
        }
    }

    /// The cluster watched, if any.
    pub fn cluster(&self) -> Option<&ClusterOptions> {
        match self {
            Source::Cluster(options) | Source::Both(_, options) => Some(options),
            Source::Manifests(_) => None,
        }
    }
}

/// The options of the cluster source (`--kubeconfig`, `--context`, `--cluster`,
/// `--namespace`, `--label-selector`, `--resync`, `--sync-timeout`).
#[derive(Clone, Debug, Default)]
pub struct ClusterOptions {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    /// `--cluster`s, in the order given (their precedence). Empty: the one cluster of
    /// `--kubeconfig`/`--context` (or the pod's service account).
    pub clusters: Vec<NamedCluster>,
    /// Empty: every namespace.
    pub namespaces: Vec<String>,
    pub label_selector: Option<String>,
    pub resync: Duration,
    pub sync_timeout: Duration,
    /// `--events`: record Events on the objects read.
    pub events: bool,
}

/// One `--cluster NAME=KUBECONFIG[:CONTEXT]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedCluster {
    /// A DNS label: it names the cluster in metrics, logs, `/explain` and the status page.
    pub name: String,
    /// `None` (`NAME=`): the default, as without `--kubeconfig` (the pod's service
    /// account, else `KUBECONFIG` or `~/.kube/config`): the cluster the chart is
    /// installed in.
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig's context; `None`: its current context.
    pub context: Option<String>,
}

impl ClusterOptions {
    /// The options of each cluster to watch, one by one: each `--cluster` with its own
    /// kubeconfig and context and the shared options, or the one cluster as given.
    pub fn each(&self) -> Vec<ClusterOptions> {
        if self.clusters.is_empty() {
            return vec![self.clone()];
        }
        self.clusters
            .iter()
            .map(|cluster| ClusterOptions {
                kubeconfig: cluster.kubeconfig.clone(),
                context: cluster.context.clone(),
                clusters: vec![cluster.clone()],
                ..self.clone()
            })
            .collect()
    }

    /// The name of this cluster when it is one of several `--cluster`s.
    pub fn name(&self) -> Option<&str> {
        match self.clusters.as_slice() {
            [one] => Some(&one.name),
            _ => None,
        }
    }
}

/// Which objects may publish, beyond their kind being enabled.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filters {
    /// `--ingress-class`: when set, only Ingresses of these classes.
    pub ingress_classes: Vec<String>,
    /// `--gateway-class`: when set, only routes through Gateways of these classes.
    pub gateway_classes: Vec<String>,
}

/// The validated configuration of `serve`.
#[derive(Clone, Debug)]
pub struct Config {
    pub settings: Settings,
    pub filters: Filters,
    /// Where the objects come from: manifests, or the cluster.
    pub source: Source,
    /// `--zone-file`s, read with the manifests (beside the cluster, or alone).
    pub zone_files: Vec<PathBuf>,
    pub listen: Vec<SocketAddr>,
    pub http_listen: Option<SocketAddr>,
    /// The status page, `/zone` and `/explain`; `None` when turned off.
    pub debug_listen: Option<SocketAddr>,
    /// UDP worker threads (and sockets) per listen address; `None`: one per CPU core.
    pub udp_workers: Option<usize>,
    /// How long a busy UDP worker waits to fill its next batch (zero: never).
    pub udp_batch_wait: Duration,
    /// Open TCP connections per listen address at most.
    pub tcp_max_connections: usize,
    /// Open TCP connections per client address at most.
    pub tcp_max_per_client: usize,
    pub log_format: LogFormat,
    /// Where names of our domains that the zone lacks are asked, in order (empty: off).
    pub fallthrough: Vec<SocketAddr>,
    /// Upstream answers cached at most.
    pub fallthrough_cache: usize,
    /// Who may transfer our zones (over TCP).
    pub transfer_allow: Vec<AddressRange>,
    /// Secondaries told of every serial change.
    pub notify: Vec<SocketAddr>,
    /// The TSIG key files (`--tsig-key`), read when the server starts.
    pub tsig_keys: Vec<PathBuf>,
}

impl Config {
    /// Validates what clap could not: duplicates, and that the paths can be read.
    pub fn from_args(args: ServeArgs) -> Result<Self> {
        let mut config = Config::from_sources(args.zone, args.source)?;
        let mut listen = args.listen;
        listen.dedup();
        config.listen = listen;
        config.http_listen = Some(args.http_listen);
        config.debug_listen = args.debug_listen.0;
        if config.debug_listen == config.http_listen && args.http_listen.port() != 0 {
            return Err(Error::Invalid(format!(
                "--debug-listen and --http-listen are both {}: give the debug views their own port (or --debug-listen off)",
                args.http_listen
            )));
        }
        config.udp_workers = args.udp_workers.map(usize::from);
        config.udp_batch_wait = Duration::from_micros(args.udp_batch_wait.into());
        config.tcp_max_connections = args.tcp_max_connections as usize;
        config.tcp_max_per_client = args.tcp_max_per_client as usize;
        config.log_format = args.log_format;
        let mut fallthrough = Vec::new();
        for upstream in args.fallthrough {
            if !fallthrough.contains(&upstream) {
                fallthrough.push(upstream);
            }
        }
        config.fallthrough = fallthrough;
        config.fallthrough_cache = args.fallthrough_cache;
        config.transfer_allow = args.transfer_allow;
        let mut notify = args.notify;
        notify.dedup();
        config.notify = notify;
        config.tsig_keys = args.tsig_key;
        Ok(config)
    }

    /// The configuration of `render`: no sockets.
    pub fn from_render_args(args: RenderArgs) -> Result<Self> {
        Config::from_sources(args.zone, args.source)
    }

    /// The configuration of `explain`, and the name asked about (checked here, so a
    /// name that is not a DNS name is a usage error before any source is read).
    pub fn from_explain_args(args: ExplainArgs) -> Result<(Self, LowerName)> {
        let name = crate::zone::explain_name(&args.name).map_err(Error::Invalid)?;
        Ok((Config::from_sources(args.zone, args.source)?, name))
    }

    fn from_sources(zone: ZoneArgs, source: SourceArgs) -> Result<Self> {
        let mut precedence = Vec::new();
        for kind in zone.resources {
            if precedence.contains(&kind) {
                return Err(Error::Invalid(format!("--resources lists {kind} twice")));
            }
            precedence.push(kind);
        }
        let namespaces = source.namespaces;
        for namespace in &namespaces {
            if parse_hostname(namespace, false).is_err() || namespace.contains('.') {
                return Err(Error::Invalid(format!(
                    "--namespace {namespace:?} is not a namespace name"
                )));
            }
        }
        let label_selector = source
            .label_selector
            .filter(|s| !s.trim().is_empty())
            .map(|s| {
                check_selector(&s)
                    .map(|()| s.clone())
                    .map_err(|e| Error::Invalid(format!("--label-selector {s:?}: {e}")))
            })
            .transpose()?;
        let cluster_only = !namespaces.is_empty()
            || label_selector.is_some()
            || source.kubeconfig.is_some()
            || source.context.is_some()
            || !source.clusters.is_empty();
        check_clusters(
            &source.clusters,
            source.kubeconfig.is_some() || source.context.is_some(),
        )?;
        let cluster_order = source.clusters.iter().map(|c| c.name.clone()).collect();
        let cluster = ClusterOptions {
            kubeconfig: source.kubeconfig,
            context: source.context,
            clusters: source.clusters,
            namespaces,
            label_selector,
            resync: source.resync,
            sync_timeout: source.sync_timeout,
            events: source.events,
        };
        check_paths("--zone-file", &source.zone_files)?;
        let files = !source.manifests.is_empty() || !source.zone_files.is_empty();
        let input = if !files {
            Source::Cluster(cluster)
        } else if source.watch_cluster {
            check_paths("--manifests", &source.manifests)?;
            Source::Both(source.manifests, cluster)
        } else {
            if cluster_only {
                return Err(Error::Invalid(
                    "--kubeconfig, --context, --cluster, --namespace and --label-selector apply to the cluster: with --manifests or --zone-file, add --watch-cluster to watch it too"
                        .into(),
                ));
            }
            if source.events {
                return Err(Error::Invalid(
                    "--events records Events on the cluster's objects: files have no API to record on; add --watch-cluster, or leave --events out"
                        .into(),
                ));
            }
            check_paths("--manifests", &source.manifests)?;
            Source::Manifests(source.manifests)
        };
        // Zone files serve below every kind: last in the precedence, whatever --resources.
        precedence.push(Kind::ZoneFile);
        Ok(Config {
            settings: Settings {
                domains: zone.domains,
                ttl: zone.ttl,
                apex: zone.apex,
                secondary: zone.secondary,
                precedence,
                clusters: cluster_order,
                reverse_zones: zone.reverse_zones,
            },
            filters: Filters {
                ingress_classes: source.ingress_classes,
                gateway_classes: source.gateway_classes,
            },
            source: input,
            zone_files: source.zone_files,
            listen: Vec::new(),
            http_listen: None,
            debug_listen: None,
            udp_workers: None,
            udp_batch_wait: Duration::from_micros(DEFAULT_UDP_BATCH_WAIT_US.into()),
            tcp_max_connections: DEFAULT_TCP_MAX_CONNECTIONS as usize,
            tcp_max_per_client: DEFAULT_TCP_MAX_PER_CLIENT as usize,
            log_format: LogFormat::Text,
            fallthrough: Vec::new(),
            fallthrough_cache: DEFAULT_FALLTHROUGH_CACHE,
            transfer_allow: Vec::new(),
            notify: Vec::new(),
            tsig_keys: Vec::new(),
        })
    }
}

/// Checks the `--cluster`s: not beside `--kubeconfig`/`--context`, each name once, each
/// kubeconfig readable (a typo stops us at start, naming the cluster).
fn check_clusters(clusters: &[NamedCluster], single: bool) -> Result<()> {
    if clusters.is_empty() {
        return Ok(());
    }
    if single {
        return Err(Error::Invalid(
            "--cluster names each cluster's kubeconfig and context: leave out --kubeconfig and --context".into(),
        ));
    }
    for (at, cluster) in clusters.iter().enumerate() {
        if clusters[..at].iter().any(|c| c.name == cluster.name) {
            return Err(Error::Invalid(format!(
                "--cluster {} is given twice: each cluster needs a name of its own",
                cluster.name
            )));
        }
        let Some(path) = &cluster.kubeconfig else {
            continue;
        };
        if let Err(error) = std::fs::File::open(path)
            .and_then(|f| f.metadata())
            .and_then(|m| {
                if m.is_dir() {
                    Err(std::io::Error::other("a folder, not a kubeconfig file"))
                } else {
                    Ok(())
                }
            })
        {
            return Err(Error::Invalid(format!(
                "--cluster {}={}: cannot read the kubeconfig: {error}",
                cluster.name,
                path.display()
            )));
        }
    }
    Ok(())
}

/// `NAME=KUBECONFIG[:CONTEXT]`. The path ends at its first `:`, as the context may hold
/// more (EKS contexts are ARNs: `arn:aws:eks:...`).
fn parse_cluster(text: &str) -> Result<NamedCluster, String> {
    let text = text.trim();
    let Some((name, rest)) = text.split_once('=') else {
        return Err(format!("{text:?} is not NAME=KUBECONFIG[:CONTEXT]"));
    };
    let valid_name = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if !valid_name {
        return Err(format!(
            "{name:?} is not a cluster name (a DNS label: lowercase letters, digits and '-', at most 63)"
        ));
    }
    let (path, context) = match rest.split_once(':') {
        Some((path, context)) => (path, Some(context)),
        None => (rest, None),
    };
    if context == Some("") {
        return Err(format!(
            "{text:?}: the context after ':' is empty (leave out ':' for the current context)"
        ));
    }
    Ok(NamedCluster {
        name: name.to_string(),
        kubeconfig: (!path.is_empty()).then(|| PathBuf::from(path)),
        context: context.map(str::to_owned),
    })
}

/// Checks that every path exists and can be read, before anything starts.
fn check_paths(option: &'static str, paths: &[PathBuf]) -> Result<()> {
    for path in paths {
        let unreadable = |source| Error::Unreadable {
            option,
            path: path.clone(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(unreadable)?;
        if meta.is_dir() {
            std::fs::read_dir(path).map_err(unreadable)?;
        } else {
            std::fs::File::open(path).map_err(unreadable)?;
        }
    }
    Ok(())
}

fn parse_domain(text: &str) -> Result<Name, String> {
    if text.trim().is_empty() {
        return Err("a domain cannot be empty".into());
    }
    let mut name = parse_hostname(text, false)?;
    if name.num_labels() < 1 {
        return Err(format!("{text:?} is not a domain"));
    }
    name.set_fqdn(true);
    Ok(name.to_lowercase())
}

/// Checks a label selector the way the API server reads it (`k=v`, `k==v`, `k!=v`, `k`,
/// `!k`, `k in (a,b)`, `k notin (a,b)`, comma-separated), so that a typo stops us at
/// start instead of leaving every watch failing.
fn check_selector(text: &str) -> Result<(), String> {
    let is_key = |k: &str| {
        !k.is_empty()
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/'))
    };
    let is_value = |v: &str| {
        v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
    };
    let mut terms = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' if depth == 0 => return Err("unbalanced ')'".into()),
            ')' => depth -= 1,
            ',' if depth == 0 => {
                terms.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err("unbalanced '('".into());
    }
    terms.push(&text[start..]);
    for term in terms.into_iter().map(str::trim) {
        let ok = if let Some((key, value)) = term
            .split_once("!=")
            .or_else(|| term.split_once("=="))
            .or_else(|| term.split_once('='))
        {
            is_key(key.trim()) && is_value(value.trim())
        } else if let Some((key, rest)) = term
            .split_once(" notin ")
            .or_else(|| term.split_once(" in "))
        {
            let rest = rest.trim();
            is_key(key.trim())
                && rest.starts_with('(')
                && rest.ends_with(')')
                && rest[1..rest.len() - 1]
                    .split(',')
                    .all(|v| is_value(v.trim()))
        } else {
            is_key(term.strip_prefix('!').unwrap_or(term))
        };
        if !ok {
            return Err(format!(
                "{term:?} is not a label requirement (k=v, k!=v, k, !k, k in (a,b))"
            ));
        }
    }
    Ok(())
}

/// A duration as `90s`, `5m`, `1h` or plain seconds; at least one second.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = text
        .find(|c: char| !c.is_ascii_digit())
        .map_or((text, ""), |i| text.split_at(i));
    let value: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (like 30s, 5m, 1h)"))?;
    let seconds = match unit {
        "" | "s" => value,
        "m" => value.saturating_mul(60),
        "h" => value.saturating_mul(3600),
        _ => return Err(format!("{text:?} is not a duration (like 30s, 5m, 1h)")),
    };
    if seconds == 0 {
        return Err("a duration must be at least 1s".into());
    }
    Ok(Duration::from_secs(seconds))
}

fn parse_debug_listen(text: &str) -> Result<DebugListen, String> {
    if text.trim().eq_ignore_ascii_case("off") {
        return Ok(DebugListen(None));
    }
    text.trim()
        .parse()
        .map(|address| DebugListen(Some(address)))
        .map_err(|_| format!("{text:?} is not ADDR:PORT (like 127.0.0.1:8081) or off"))
}

/// An upstream DNS server: an IP address with an optional port (`192.0.2.1`,
/// `192.0.2.1:5353`, `::1`, `[::1]:5353`), port 53 when none is given. Host names are
/// not accepted: resolving them would need the DNS we are configuring.
fn parse_upstream(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    if let Ok(address) = text.parse::<SocketAddr>() {
        if address.port() == 0 {
            return Err(format!(
                "{text:?}: port 0 is not a port a server listens on"
            ));
        }
        return Ok(address);
    }
    let bare = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    bare.parse::<std::net::IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| format!("{text:?} is not an IP address with an optional port (like 192.0.2.1 or [2001:db8::1]:5353)"))
}

fn parse_address_range(text: &str) -> Result<AddressRange, String> {
    text.parse()
}

fn parse_reverse_zone(text: &str) -> Result<ReverseZone, String> {
    text.parse()
}

fn parse_relative(text: &str) -> Result<Name, String> {
    let mut name = parse_hostname(text, false)?;
    name.set_fqdn(false);
    Ok(name.to_lowercase())
}

fn parse_kind(text: &str) -> Result<Kind, String> {
    Kind::parse(text).ok_or_else(|| {
        let known: Vec<_> = Kind::DEFAULT_ORDER.iter().map(|k| k.as_str()).collect();
        format!(
            "{text:?} is not a kind we serve (one of {})",
            known.join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn serve_args(args: &[&str]) -> ServeArgs {
        match parse(args).unwrap().command {
            Command::Serve(args) => args,
            _ => panic!("not serve"),
        }
    }

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("k8s-gateway").chain(args.iter().copied()))
    }

    #[test]
    fn defaults_match_the_documented_ones() {
        let args = serve_args(&["serve", "--domain", "Home.Example", "--manifests", "."]);
        assert_eq!(args.zone.domains[0].to_string(), "home.example.");
        assert_eq!(args.zone.ttl, 60);
        assert_eq!(args.zone.apex.to_string(), "dns1.kube-system");
        assert_eq!(args.zone.resources, Kind::DEFAULT_ORDER);
        assert_eq!(
            args.listen,
            vec!["0.0.0.0:1053".parse::<SocketAddr>().unwrap()]
        );
        // The debug views are on loopback unless asked otherwise.
        assert_eq!(
            args.debug_listen,
            DebugListen(Some("127.0.0.1:8081".parse().unwrap()))
        );
        let config = Config::from_args(args).unwrap();
        assert_eq!(config.udp_batch_wait, Duration::from_micros(50));
    }

    #[test]
    fn the_tcp_connection_limits_default_to_512_and_64_and_refuse_0() {
        let base = ["serve", "--domain", "home.example", "--manifests", "."];
        let config = Config::from_args(serve_args(&base)).unwrap();
        assert_eq!(
            (config.tcp_max_connections, config.tcp_max_per_client),
            (512, 64)
        );
        let limits = [
            &base[..],
            &["--tcp-max-connections", "8", "--tcp-max-per-client", "2"],
        ]
        .concat();
        let config = Config::from_args(serve_args(&limits)).unwrap();
        assert_eq!(
            (config.tcp_max_connections, config.tcp_max_per_client),
            (8, 2)
        );
        for flag in ["--tcp-max-connections", "--tcp-max-per-client"] {
            let err = parse(&[&base[..], &[flag, "0"]].concat()).unwrap_err();
            assert!(err.to_string().contains(flag), "{flag}: {err}");
        }
    }

    #[test]
    fn the_udp_batch_wait_is_microseconds_and_zero_turns_it_off() {
        let base = ["serve", "--domain", "home.example", "--manifests", "."];
        let wait = |value: &str| {
            let args: Vec<&str> = base
                .iter()
                .copied()
                .chain(["--udp-batch-wait", value])
                .collect();
            Config::from_args(serve_args(&args)).unwrap().udp_batch_wait
        };
        assert_eq!(wait("0"), Duration::ZERO);
        assert_eq!(wait("1000"), Duration::from_millis(1));
        for bad in ["1001", "lots", "50us"] {
            let err = parse(&[&base[..], &["--udp-batch-wait", bad]].concat()).unwrap_err();
            assert!(err.to_string().contains("--udp-batch-wait"), "{bad}: {err}");
        }
    }

    #[test]
    fn the_debug_listener_can_be_moved_or_turned_off() {
        let base = ["serve", "--domain", "home.example", "--manifests", "."];
        let with = |extra: &[&str]| {
            let args: Vec<&str> = base.iter().chain(extra).copied().collect();
            Config::from_args(serve_args(&args))
        };
        assert_eq!(with(&["--debug-listen", "off"]).unwrap().debug_listen, None);
        assert_eq!(
            with(&["--debug-listen", "0.0.0.0:9000"])
                .unwrap()
                .debug_listen,
            Some("0.0.0.0:9000".parse().unwrap())
        );
        let err = with(&["--debug-listen", "0.0.0.0:8080"]).unwrap_err();
        assert!(err.to_string().contains("--debug-listen"), "{err}");
        let err = parse(&[&base[..], &["--debug-listen", "nope"]].concat()).unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
    }

    #[test]
    fn bad_values_are_rejected() {
        // (arguments, what the error must mention)
        let cases: [(&[&str], &str); 6] = [
            (
                &["serve", "--domain", "bad domain", "--manifests", "."],
                "not a host name",
            ),
            (
                &[
                    "serve",
                    "--domain",
                    "home.example",
                    "--manifests",
                    ".",
                    "--ttl",
                    "3601",
                ],
                "3601",
            ),
            (
                &[
                    "serve",
                    "--domain",
                    "home.example",
                    "--manifests",
                    ".",
                    "--resources",
                    "Pod",
                ],
                "Pod",
            ),
            (
                &[
                    "serve",
                    "--domain",
                    "home.example",
                    "--manifests",
                    ".",
                    "--listen",
                    "nope",
                ],
                "nope",
            ),
            (&["serve", "--manifests", "."], "--domain"),
            (
                &[
                    "serve",
                    "--domain",
                    "home.example",
                    "--manifests",
                    ".",
                    "--udp-workers",
                    "0",
                ],
                "--udp-workers",
            ),
        ];
        for (args, mention) in cases {
            let err = parse(args).unwrap_err().to_string();
            assert!(err.contains(mention), "{args:?}: {err}");
        }
    }

    #[test]
    fn duplicate_kinds_and_missing_paths_are_config_errors() {
        let args = serve_args(&[
            "serve",
            "--domain",
            "home.example",
            "--manifests",
            ".",
            "--resources",
            "Service,service",
        ]);
        assert!(
            Config::from_args(args)
                .unwrap_err()
                .to_string()
                .contains("twice")
        );
        let args = serve_args(&[
            "serve",
            "--domain",
            "home.example",
            "--manifests",
            "/nonexistent/k8s",
        ]);
        assert!(
            Config::from_args(args)
                .unwrap_err()
                .to_string()
                .contains("/nonexistent/k8s")
        );
    }

    #[test]
    fn upstreams_take_port_53_unless_given() {
        let args = serve_args(&[
            "serve",
            "--domain",
            "home.example",
            "--manifests",
            ".",
            "--fallthrough",
            "192.0.2.1",
            "--fallthrough",
            "[2001:db8::1]:5353,::1,192.0.2.1:53",
        ]);
        let config = Config::from_args(args).unwrap();
        let expected: Vec<SocketAddr> = ["192.0.2.1:53", "[2001:db8::1]:5353", "[::1]:53"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        assert_eq!(config.fallthrough, expected, "in order, duplicates dropped");
        assert_eq!(config.fallthrough_cache, 10_000);
        for bad in ["pihole.lan", "192.0.2.1:0", "192.0.2.1:99999", ""] {
            assert!(parse_upstream(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_and_label_selectors_are_checked() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        for bad in ["", "0s", "5x", "m", "1m30s", "-1s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        for good in [
            "app=web",
            "app==web,tier!=internal",
            "dns.home.example/publish",
            "!legacy",
            "env in (home, lab),tier notin (test)",
        ] {
            assert_eq!(check_selector(good), Ok(()), "{good}");
        }
        for bad in ["a b", "=web", "env in (home", "x in home"] {
            assert!(check_selector(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn zone_files_alone_are_the_only_source_and_serve_below_every_kind() {
        let base = [
            "serve",
            "--domain",
            "home.example",
            "--zone-file",
            "Cargo.toml",
        ];
        let config = Config::from_args(serve_args(&base)).unwrap();
        assert!(matches!(&config.source, Source::Manifests(paths) if paths.is_empty()));
        assert_eq!(config.zone_files, [PathBuf::from("Cargo.toml")]);
        assert_eq!(config.settings.precedence.last(), Some(&Kind::ZoneFile));
        let both = Config::from_args(serve_args(&[&base[..], &["--watch-cluster"]].concat()));
        assert!(matches!(both.unwrap().source, Source::Both(paths, _) if paths.is_empty()));
        let missing = [
            "serve",
            "--domain",
            "home.example",
            "--zone-file",
            "no/such.zone",
        ];
        let err = Config::from_args(serve_args(&missing)).unwrap_err();
        assert!(
            err.to_string().starts_with("--zone-file no/such.zone"),
            "{err}"
        );
        // Not a kind `--resources` can name or move.
        assert!(parse(&[&base[..], &["--resources", "ZoneFile"]].concat()).is_err());
    }

    #[test]
    fn clusters_are_named_kubeconfigs_in_order_with_the_shared_options() {
        let dir = tempfile::tempdir().unwrap();
        let (prod, lab) = (dir.path().join("prod"), dir.path().join("lab"));
        std::fs::write(&prod, "").unwrap();
        std::fs::write(&lab, "").unwrap();
        let (prod, lab) = (prod.to_string_lossy(), lab.to_string_lossy());
        let first = format!("prod={prod}");
        let second = format!("lab={lab}:arn:aws:eks:eu-west-1:1:cluster/lab");
        let base = ["serve", "--domain", "home.example", "--namespace", "apps"];
        let args = [&base[..], &["--cluster", &first, "--cluster", &second]].concat();
        let config = Config::from_args(serve_args(&args)).unwrap();
        let Source::Cluster(options) = &config.source else {
            panic!("cluster source");
        };
        let each = options.each();
        assert_eq!(each.len(), 2);
        assert_eq!(each[0].name(), Some("prod"));
        assert_eq!(each[0].kubeconfig.as_deref(), Some(Path::new(&*prod)));
        assert_eq!(each[0].context, None, "the current context");
        // The path ends at the first ':', the context keeps the rest.
        assert_eq!(
            each[1].context.as_deref(),
            Some("arn:aws:eks:eu-west-1:1:cluster/lab")
        );
        assert!(each.iter().all(|c| c.namespaces == ["apps"]));
        assert_eq!(config.settings.clusters, ["prod", "lab"]);
        // One cluster without --cluster has no name.
        let single = Config::from_args(serve_args(&base)).unwrap();
        let one = single.source.cluster().unwrap().each();
        assert_eq!((one.len(), one[0].name()), (1, None));
        assert!(single.settings.clusters.is_empty());

        // (arguments after the base, what the error must mention)
        let missing = format!("lab={}/none", dir.path().display());
        let twice = format!("prod={lab}");
        let cases: [(Vec<&str>, &str); 4] = [
            (
                vec!["--cluster", &first, "--kubeconfig", &lab],
                "--kubeconfig",
            ),
            (vec!["--cluster", &first, "--context", "x"], "--context"),
            (vec!["--cluster", &first, "--cluster", &twice], "twice"),
            (vec!["--cluster", &missing], "/none"),
        ];
        for (extra, mention) in cases {
            let err = Config::from_args(serve_args(&[&base[..], &extra].concat())).unwrap_err();
            assert!(err.to_string().contains(mention), "{extra:?}: {err}");
        }
        for bad in ["prod", "Prod=x", "-a=x", "a_b=x", "a=x:", "a=:", "=x"] {
            assert!(parse_cluster(bad).is_err(), "{bad}");
        }
        // An empty path is the default config (the pod's service account), with its
        // current context or the one named.
        let home = parse_cluster("home=").unwrap();
        assert_eq!((home.kubeconfig, home.context), (None, None));
        let laptop = parse_cluster("lab=:lab-admin").unwrap();
        assert_eq!(laptop.kubeconfig, None);
        assert_eq!(laptop.context.as_deref(), Some("lab-admin"));
    }

    #[test]
    fn without_manifests_the_cluster_is_the_source() {
        let config = Config::from_args(serve_args(&[
            "serve",
            "--domain",
            "home.example",
            "--namespace",
            "media,apps",
            "--label-selector",
            "dns=public",
            "--resync",
            "5m",
        ]))
        .unwrap();
        let Source::Cluster(options) = config.source else {
            panic!("cluster source");
        };
        assert_eq!(options.namespaces, ["media", "apps"]);
        assert_eq!(options.label_selector.as_deref(), Some("dns=public"));
        assert_eq!(options.resync, Duration::from_secs(300));
        assert_eq!(options.sync_timeout, Duration::from_secs(30), "the default");

        // Cluster-only options make no sense with manifests.
        let err = Config::from_args(serve_args(&[
            "serve",
            "--domain",
            "home.example",
            "--manifests",
            ".",
            "--namespace",
            "media",
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("--namespace"), "{err}");
        assert!(err.to_string().contains("--watch-cluster"), "{err}");

        // Unless the cluster is watched too: both sources, the cluster options kept.
        let config = Config::from_args(serve_args(&[
            "serve",
            "--domain",
            "home.example",
            "--manifests",
            ".",
            "--watch-cluster",
            "--namespace",
            "media",
        ]))
        .unwrap();
        assert_eq!(config.source.manifests(), [PathBuf::from(".")]);
        assert_eq!(config.source.cluster().unwrap().namespaces, ["media"]);
    }
}
