//! Wiring: builds the first zone, binds the sockets and starts every task.
//!
//! Used by `main` and by the integration tests, which start the real server on
//! `127.0.0.1:0` and read the bound addresses back.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::dns::forward::{Forwarder, UPSTREAM_TIMEOUT};
use crate::dns::{self, DnsContext};
use crate::metrics::{Metrics, TaskLabels};
use crate::rebuild::{self, Rebuilder};
use crate::sources::zone_file::ZoneFiles;
use crate::sources::{Feed, cluster, manifests};
use crate::supervise;
use crate::zone::{AddressRange, SharedZone};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot listen on {address}: {source}")]
    BindFailed {
        address: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Manifests(#[from] manifests::Error),
    #[error(transparent)]
    Cluster(#[from] cluster::Error),
    #[error("the cluster was not listed within {0:?}")]
    SyncTimeout(std::time::Duration),
    #[error("HTTP endpoint on {address} failed: {source}")]
    HttpFailed {
        address: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    TsigKey(#[from] dns::tsig::Error),
    #[error("the first load of the manifests failed: {0}")]
    FirstLoadFailed(#[source] tokio::task::JoinError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Whether the fault is in how we were started (no usable Kubernetes configuration),
    /// which the binary reports as a usage error, like a bad option.
    pub fn is_usage(&self) -> bool {
        matches!(self, Error::Cluster(_) | Error::TsigKey(_))
    }
}

/// A started server: its addresses, and the tasks to wait for.
pub struct Server {
    /// The bound DNS addresses (UDP and TCP share each), in `--listen` order.
    pub dns_addresses: Vec<SocketAddr>,
    /// The bound HTTP address, when the endpoint is on.
    pub http_address: Option<SocketAddr>,
    /// The bound address of the debug views, unless `--debug-listen off`.
    pub debug_address: Option<SocketAddr>,
    pub zone: SharedZone,
    pub metrics: Arc<Metrics>,
    pub registry: Arc<Registry>,
    tasks: JoinSet<Result<()>>,
}

impl Server {
    /// Builds the first zone, then opens the sockets: a query never meets an empty zone
    /// when the objects come from files.
    pub async fn start(config: Config, shutdown: CancellationToken) -> Result<Server> {
        let mut keys = Vec::new();
        for path in &config.tsig_keys {
            keys.extend(dns::tsig::load(path)?);
        }
        let keys: Arc<[dns::tsig::Key]> = keys.into();
        let mut registry = Registry::default();
        let metrics = Metrics::new(&config.settings.origins(), &mut registry);
        let registry = Arc::new(registry);
        let zone: SharedZone = Arc::new(ArcSwapOption::empty());
        let rebuilder = Rebuilder::new(
            config.settings.clone(),
            config.filters.clone(),
            zone.clone(),
            metrics.zone.clone(),
        );
        let mut tasks = JoinSet::new();
        if !config.notify.is_empty() {
            // NOTIFY follows the serial of every zone swapped in.
            tasks.spawn(ok(dns::notify::run(
                config.notify.clone(),
                keys.first().cloned(),
                zone.clone(),
                rebuilder.subscribe(),
                metrics.notify.clone(),
                shutdown.clone(),
            )));
        }
        let rebuilder = Arc::new(rebuilder);
        start_source(&config, &rebuilder, &metrics, &mut tasks, &shutdown).await?;

        let dns_addresses =
            start_dns(&config, &zone, &keys, &metrics, &mut tasks, &shutdown).await?;
        let http_address = match config.http_listen {
            Some(address) => {
                let listener = bind_http(address).await?;
                let bound = local_address(&listener, address)?;
                tracing::info!(address = %bound, "serving HTTP (/metrics /healthz /readyz)");
                let (zone, registry, stop) = (zone.clone(), registry.clone(), shutdown.clone());
                tasks.spawn(http_failed(
                    bound,
                    crate::http::serve(listener, zone, registry, stop),
                ));
                Some(bound)
            }
            None => None,
        };
        let debug_address = match config.debug_listen {
            Some(address) => {
                let listener = bind_http(address).await?;
                let bound = local_address(&listener, address)?;
                tracing::info!(address = %bound, "serving the debug views (/ /zone /explain)");
                let (zone, registry, stop) = (zone.clone(), registry.clone(), shutdown.clone());
                let views = crate::http::debug::Views {
                    fallthrough: config.fallthrough.clone().into(),
                    clusters: config.settings.clusters.clone().into(),
                };
                tasks.spawn(http_failed(
                    bound,
                    crate::http::debug::serve(listener, zone, registry, views, stop),
                ));
                Some(bound)
            }
            None => None,
        };

        Ok(Server {
            dns_addresses,
            http_address,
            debug_address,
            zone,
            metrics,
            registry,
            tasks,
        })
    }

    /// Waits for every task to finish (after the shutdown token fired), returning the
    /// first error.
    pub async fn wait(mut self) -> Result<()> {
        let mut result = Ok(());
        while let Some(done) = self.tasks.join_next().await {
            if let Ok(Err(e)) = done
                && result.is_ok()
            {
                result = Err(e);
            }
        }
        result
    }
}

/// Binds every `--listen` address and starts its UDP workers and TCP loop, answering
/// from `zone` (and the upstreams, with `--fallthrough`). Returns the bound addresses.
async fn start_dns(
    config: &Config,
    zone: &SharedZone,
    tsig_keys: &Arc<[dns::tsig::Key]>,
    metrics: &Arc<Metrics>,
    tasks: &mut JoinSet<Result<()>>,
    shutdown: &CancellationToken,
) -> Result<Vec<SocketAddr>> {
    let forwarder = (!config.fallthrough.is_empty()).then(|| {
        Arc::new(Forwarder::new(
            zone.clone(),
            &config.fallthrough,
            config.fallthrough_cache,
            UPSTREAM_TIMEOUT,
            metrics.forward.clone(),
            tokio::runtime::Handle::current(),
        ))
    });
    let transfer_allow: Arc<[AddressRange]> = config.transfer_allow.clone().into();
    let workers = config
        .udp_workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let batch_wait_us = config.udp_batch_wait.as_micros();
    tracing::info!(
        workers,
        batch_wait_us,
        "UDP workers (and sockets) per address"
    );
    let mut dns_addresses = Vec::new();
    for address in &config.listen {
        let (udp, tcp) = bind_pair(*address, workers).await?;
        let bound = local_address(&tcp, *address)?;
        tracing::info!(address = %bound, "serving DNS over UDP and TCP");
        let ctx = DnsContext {
            zone: zone.clone(),
            metrics: Arc::new(metrics.dns_server(bound)),
            forwarder: forwarder.clone(),
            transfer_allow: transfer_allow.clone(),
            tsig_keys: tsig_keys.clone(),
        };
        // A worker that panics or ends is started again on the same socket: otherwise
        // the clients the kernel sends to that socket would go unanswered.
        let restarts = metrics
            .task_restarts
            .get_or_create(&TaskLabels { task: "udp" })
            .clone();
        for udp in udp {
            let (ctx, stop, wait) = (ctx.clone(), shutdown.clone(), config.udp_batch_wait);
            let work = move || dns::serve_udp(udp.clone(), ctx.clone(), wait, stop.clone());
            tasks.spawn(ok(supervise::blocking(
                "udp",
                restarts.clone(),
                shutdown.clone(),
                work,
            )));
        }
        let limits = (config.tcp_max_connections, config.tcp_max_per_client);
        tasks.spawn(ok(dns::serve_tcp(tcp, ctx, limits, shutdown.clone())));
        dns_addresses.push(bound);
    }
    Ok(dns_addresses)
}

/// The address a listener got (the port the kernel chose for port 0).
fn local_address(listener: &TcpListener, asked: SocketAddr) -> Result<SocketAddr> {
    listener.local_addr().map_err(|source| Error::BindFailed {
        address: asked,
        source,
    })
}

/// An HTTP listener's task, whose failure names its address.
async fn http_failed(
    address: SocketAddr,
    serve: impl Future<Output = io::Result<()>>,
) -> Result<()> {
    serve
        .await
        .map_err(|source| Error::HttpFailed { address, source })
}

async fn bind_http(address: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(address)
        .await
        .map_err(|source| Error::BindFailed { address, source })
}

/// Starts the feeders of `config`'s sources and the rebuild loop. From manifests only,
/// the first zone is built before this returns: a query never meets an empty zone when
/// the objects come from files. With the cluster, queries get SERVFAIL and /readyz says
/// not ready until every kind is listed (and the manifests, read first, are in).
async fn start_source(
    config: &Config,
    rebuilder: &Arc<Rebuilder>,
    metrics: &Metrics,
    tasks: &mut JoinSet<Result<()>>,
    shutdown: &CancellationToken,
) -> Result<()> {
    let paths = config.source.manifests();
    let feed = if paths.is_empty() && config.zone_files.is_empty() {
        Arc::new(Feed::default())
    } else {
        // Watch first, then load: a change made during the first load is not lost.
        let watch = manifests::ManifestWatch::new(paths, zone_files(config))?;
        let (reader, first, zone_metrics) =
            (watch.reader(), rebuilder.clone(), metrics.zone.clone());
        // With the cluster too, the first zone waits for its kinds.
        let build_now = config.source.cluster().is_none();
        let objects = tokio::task::spawn_blocking(move || {
            let objects = reader.load_reporting(&zone_metrics);
            if build_now {
                first.rebuild(&objects);
            }
            objects
        })
        .await
        .map_err(Error::FirstLoadFailed)?;
        let feed = Arc::new(Feed::built_from(objects));
        tasks.spawn(ok(watch.run(
            feed.clone(),
            metrics.zone.clone(),
            shutdown.clone(),
        )));
        feed
    };
    if let Some(options) = config.source.cluster() {
        let source = cluster::Clusters::connect(
            options,
            &config.settings.precedence,
            feed.clone(),
            metrics.sources.clone(),
        )
        .await?;
        if options.events {
            let (queue, changes) = cluster::events::EventQueue::new(metrics.events.clone());
            let recorder = cluster::events::Recorder::new(
                source.clients(),
                cluster::events::Recorder::instance_name(),
            );
            tasks.spawn(ok(cluster::events::run(
                changes,
                recorder,
                metrics.events.clone(),
                shutdown.clone(),
            )));
            rebuilder.record_events(queue);
        }
        tasks.spawn(ok(source.run(shutdown.clone())));
    }
    tasks.spawn(ok(rebuild::run(feed, rebuilder.clone(), shutdown.clone())));
    Ok(())
}

/// The `--zone-file`s, with the domains their origins must be.
fn zone_files(config: &Config) -> ZoneFiles {
    ZoneFiles {
        paths: config.zone_files.clone(),
        domains: config.settings.domains.clone(),
    }
}

async fn ok(task: impl Future<Output = ()>) -> Result<()> {
    task.await;
    Ok(())
}

/// Binds the UDP sockets (`workers` of them) and TCP on the same address. With port 0,
/// the TCP socket takes the port the kernel gave UDP (tried a few times, as another
/// process may hold it for TCP).
async fn bind_pair(
    address: SocketAddr,
    workers: usize,
) -> Result<(Vec<Arc<std::net::UdpSocket>>, TcpListener)> {
    let failed = |source| Error::BindFailed { address, source };
    let mut last = None;
    for _ in 0..16 {
        let udp = dns::bind_udp(address, workers).map_err(failed)?;
        let bound = udp[0].local_addr().map_err(failed)?;
        match TcpListener::bind(bound).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) if address.port() == 0 => last = Some(e),
            Err(e) => return Err(failed(e)),
        }
    }
    Err(failed(last.unwrap_or_else(|| {
        io::Error::from(io::ErrorKind::AddrInUse)
    })))
}

/// Loads the objects once and returns the zone, for `render`: from the manifests, or
/// from the cluster once every kind is listed (at most `timeout`).
pub async fn render_once(
    config: &Config,
    timeout: std::time::Duration,
) -> Result<crate::zone::Zone> {
    let mut registry = Registry::default();
    let metrics = Metrics::new(&config.settings.origins(), &mut registry);
    let zone: SharedZone = Arc::new(ArcSwapOption::empty());
    let rebuilder = Arc::new(Rebuilder::new(
        config.settings.clone(),
        config.filters.clone(),
        zone.clone(),
        metrics.zone.clone(),
    ));
    let (objects, errors) = manifests::load_all(config.source.manifests(), &zone_files(config));
    for error in &errors {
        tracing::warn!("{error}");
    }
    match config.source.cluster() {
        None => Ok(Arc::unwrap_or_clone(rebuilder.rebuild(&objects))),
        Some(options) => {
            let feed = Arc::new(Feed::built_from(objects));
            let source = cluster::Clusters::connect(
                options,
                &config.settings.precedence,
                feed.clone(),
                metrics.sources.clone(),
            )
            .await?;
            let mut built = rebuilder.subscribe();
            let stop = CancellationToken::new();
            let tasks = [
                tokio::spawn(source.run(stop.clone())),
                tokio::spawn(rebuild::run(feed, rebuilder, stop.clone())),
            ];
            let first =
                tokio::time::timeout(timeout, built.wait_for(|_| zone.load().is_some())).await;
            stop.cancel();
            for task in tasks {
                let _ = task.await;
            }
            match first {
                Ok(Ok(_)) => zone
                    .load_full()
                    .map(Arc::unwrap_or_clone)
                    .ok_or(Error::SyncTimeout(timeout)),
                _ => Err(Error::SyncTimeout(timeout)),
            }
        }
    }
}
