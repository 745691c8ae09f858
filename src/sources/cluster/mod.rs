//! The cluster feeder: watches the Kubernetes API and keeps the object set in step.
//!
//! Each kind is on its own. Discovery ([`discovery`]) tells which kinds (and which
//! versions) the cluster serves; a kind that is not served, or that RBAC does not let
//! us list, is skipped with one warning and a metric, and the others serve. (k8s_gateway
//! answered SERVFAIL for everything when one CRD or one rule was missing.) Discovery
//! runs again every `--resync`, so a CRD installed later is picked up without a restart.
//!
//! Each watch ([`watch`]) keeps its kind's slimmed objects in the feed; when the API goes
//! away the last good zone keeps answering, watches resume with backoff and relist, and
//! the zone is rebuilt only when the objects changed.
//!
//! What the API does wrong for a while never takes the names down: a kind whose first
//! list keeps failing while others list is served without after `--sync-timeout`
//! (`failing`, retried); a kind missing from one discovery keeps its objects until the
//! watch says NotFound or [`MISSES_TO_FORGET`] discoveries in a row miss it; a watch task
//! that panics starts again ([`crate::supervise`]).
//!
//! Several `--cluster`s ([`Clusters`]) are each watched as one cluster is, into a layer
//! of the feed of their own; `--sync-timeout` counts from the first kind listed in any
//! of them, so a cluster that is down at start holds the others' names back no longer
//! than a failing kind would.

pub mod discovery;
pub mod events;
pub mod listed;
pub mod watch;

use std::any::TypeId;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kube::Client;
use kube::api::Api;
use kube::config::{InferConfigError, KubeConfigOptions, Kubeconfig, KubeconfigError};
use kube::discovery::ApiResource;
use kube::runtime::watcher;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::feed::{Feed, lock};
use super::kind::{self, Kind};
use super::objects::ObjectSet;
use crate::config::ClusterOptions;
use crate::metrics::{
    ClusterLabel, KindLabels, SourceMetrics, SourceStateLabels, WatchErrorLabels,
};
use crate::zone;
use discovery::Served;
use watch::Failure;

/// First and longest wait between discovery attempts while the API is unreachable.
const RETRY_FIRST: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(10);
/// Discoveries in a row that must miss a watched kind before its objects are dropped
/// (unless its watch says NotFound first): an API server that restarts serves discovery
/// before it has loaded its CRDs (k3s does), and one such answer must not blank every
/// route.
pub const MISSES_TO_FORGET: u32 = 3;

/// Why the cluster feeder could not start: there is no usable Kubernetes configuration.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{option}{path}: {source}")]
    Kubeconfig {
        /// `--kubeconfig `, or `--cluster NAME=`.
        option: String,
        path: PathBuf,
        #[source]
        source: KubeconfigError,
    },
    #[error(
        "no Kubernetes configuration (not in a pod, no KUBECONFIG or ~/.kube/config; or give --manifests): {source}"
    )]
    NoConfig {
        #[source]
        source: InferConfigError,
    },
    #[error(
        "no Kubernetes configuration (not in a pod, no KUBECONFIG or ~/.kube/config; or give --manifests): {source}"
    )]
    NoContext {
        #[source]
        source: KubeconfigError,
    },
    #[error("cannot create a Kubernetes client: {source}")]
    Client {
        #[source]
        source: kube::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Connects with `--kubeconfig`/`--context` when given, else the pod's service account,
/// else `KUBECONFIG` or `~/.kube/config`.
pub async fn connect(options: &ClusterOptions) -> Result<Client> {
    let kube_options = KubeConfigOptions {
        context: options.context.clone(),
        ..KubeConfigOptions::default()
    };
    let config = match &options.kubeconfig {
        Some(path) => {
            let invalid = |source| Error::Kubeconfig {
                option: options
                    .name()
                    .map_or("--kubeconfig ".into(), |name| format!("--cluster {name}=")),
                path: path.clone(),
                source,
            };
            let file = Kubeconfig::read_from(path).map_err(invalid)?;
            kube::Config::from_custom_kubeconfig(file, &kube_options)
                .await
                .map_err(invalid)?
        }
        None if options.context.is_some() => kube::Config::from_kubeconfig(&kube_options)
            .await
            .map_err(|source| Error::NoContext { source })?,
        None => kube::Config::infer()
            .await
            .map_err(|source| Error::NoConfig { source })?,
    };
    Client::try_from(config).map_err(|source| Error::Client { source })
}

/// Where a kind stands. The server is ready once no enabled kind is `Pending`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncState {
    /// Not listed yet (the API may be unreachable).
    Pending,
    /// Listed, and watched.
    Synced,
    /// Its list kept failing for `--sync-timeout` while other kinds listed: the zone is
    /// served without it, and the list is retried.
    Failing,
    /// The cluster does not serve this kind (its CRD is not installed).
    NotServed,
    /// RBAC does not let us list it.
    Forbidden,
}

impl SyncState {
    const ALL: [SyncState; 5] = [
        SyncState::Pending,
        SyncState::Synced,
        SyncState::Failing,
        SyncState::NotServed,
        SyncState::Forbidden,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SyncState::Pending => "pending",
            SyncState::Synced => "synced",
            SyncState::Failing => "failing",
            SyncState::NotServed => "not_served",
            SyncState::Forbidden => "forbidden",
        }
    }
}

/// When the first kind listed in full in any cluster: the API works, and
/// `--sync-timeout` counts from here. Shared by every cluster's [`Shared`].
type FirstListed = Arc<tokio::sync::watch::Sender<Option<Instant>>>;

/// What the watch tasks of one cluster share: the feed they fill, and where each kind
/// stands.
pub(crate) struct Shared {
    feed: Arc<Feed>,
    /// The feed's layer of this cluster.
    layer: usize,
    /// The `--cluster` name, for the metrics' `cluster` label and the feed's readiness.
    cluster: Option<Arc<str>>,
    states: Mutex<HashMap<TypeId, SyncState>>,
    metrics: SourceMetrics,
    /// (kind, failure) already warned about, until the kind lists again.
    warned: Mutex<HashSet<(TypeId, Failure)>>,
    /// How many scopes a scoped kind is watched in (namespaces, or one for all of them).
    scopes: usize,
    /// The scopes each kind has been listed in: it is synced once all are.
    listed: Mutex<HashMap<TypeId, HashSet<Option<String>>>>,
    /// When the first kind listed in full, in this cluster or another.
    first_listed: FirstListed,
    /// The last error of each kind's watch, for the line that says it is failing.
    last_error: Mutex<HashMap<TypeId, String>>,
    /// Kinds whose watch the API answered with NotFound since they last listed.
    gone: Mutex<HashSet<TypeId>>,
}

impl Shared {
    /// Changes the objects of `kind`, counting them when they changed.
    fn change(&self, kind: &dyn Kind, change: impl FnOnce(&mut ObjectSet) -> bool) {
        self.feed.update_cluster(self.layer, |set| {
            let changed = change(set);
            if changed {
                let count = i64::try_from(set.len(kind)).unwrap_or(i64::MAX);
                let labels = KindLabels {
                    cluster: self.cluster_label(),
                    kind: kind.label().into_owned(),
                };
                self.metrics.objects.get_or_create(&labels).set(count);
            }
            changed
        });
    }

    fn set_state(&self, kind: &dyn Kind, state: SyncState) {
        lock(&self.states).insert(kind.id(), state);
        for s in SyncState::ALL {
            let labels = SourceStateLabels {
                cluster: self.cluster_label(),
                kind: kind.label().into_owned(),
                state: s.as_str().into(),
            };
            self.metrics
                .state
                .get_or_create(&labels)
                .set(i64::from(s == state));
        }
        let pending = match &self.cluster {
            Some(cluster) => format!("{} in cluster {cluster}", kind.label()),
            None => kind.label().into_owned(),
        };
        if state == SyncState::Pending {
            self.feed.wait_for(&pending);
        } else {
            self.feed.settled(&pending);
        }
    }

    fn cluster_label(&self) -> ClusterLabel {
        ClusterLabel(self.cluster.as_deref().map(str::to_owned))
    }

    fn state(&self, kind: &dyn Kind) -> Option<SyncState> {
        lock(&self.states).get(&kind.id()).copied()
    }

    fn count_failure(&self, kind: &dyn Kind, failure: Failure) {
        let labels = WatchErrorLabels {
            cluster: self.cluster_label(),
            kind: kind.label().into_owned(),
            reason: failure.as_str().into(),
        };
        self.metrics.watch_errors.get_or_create(&labels).inc();
    }

    /// Warns once per kind and failure until the kind lists again.
    fn warn_once(&self, kind: &dyn Kind, failure: Failure) -> bool {
        lock(&self.warned).insert((kind.id(), failure))
    }

    fn forget_warnings(&self, kind: &dyn Kind) {
        lock(&self.warned).retain(|(k, _)| *k != kind.id());
    }

    /// Notes that `kind` was listed in `scope`; true once it is listed in every scope.
    fn listed_in(&self, kind: &dyn Kind, scope: Option<&str>) -> bool {
        let mut listed = lock(&self.listed);
        let scopes = listed.entry(kind.id()).or_default();
        scopes.insert(scope.map(str::to_owned));
        let complete = scopes.len() >= if kind.scoped() { self.scopes } else { 1 };
        drop(listed);
        lock(&self.gone).remove(&kind.id());
        if complete {
            self.first_listed.send_if_modified(|first| {
                let unset = first.is_none();
                first.get_or_insert_with(Instant::now);
                unset
            });
        }
        complete
    }

    fn note_error(&self, kind: &dyn Kind, failure: Failure, error: &dyn std::fmt::Display) {
        lock(&self.last_error).insert(kind.id(), error.to_string());
        if failure == Failure::NotFound {
            lock(&self.gone).insert(kind.id());
        }
    }

    /// Whether the API said NotFound for `kind`'s watch since it last listed.
    fn said_gone(&self, kind: &dyn Kind) -> bool {
        lock(&self.gone).contains(&kind.id())
    }

    /// Serves without the kinds still pending: `--sync-timeout` has passed since another
    /// kind listed.
    fn give_up_waiting(&self, kinds: &[&'static dyn Kind], timeout: Duration) {
        for kind in kinds {
            if self.state(*kind) != Some(SyncState::Pending) {
                continue;
            }
            let error = lock(&self.last_error)
                .get(&kind.id())
                .cloned()
                .unwrap_or_else(|| "no answer yet".into());
            tracing::warn!(
                kind = %kind.label(),
                "{} not listed after {}s: serving the zone without it and retrying; last error: {error}",
                kind.label(),
                timeout.as_secs()
            );
            self.set_state(*kind, SyncState::Failing);
        }
    }
}

/// Waits `timeout` from the first kind listed in full, then serves without the kinds
/// still pending. While no kind has listed (the API is away, or fails every list), the
/// server keeps answering SERVFAIL: an empty zone's NXDOMAIN would be cached downstream.
async fn sync_timeout(shared: Arc<Shared>, kinds: Vec<&'static dyn Kind>, timeout: Duration) {
    let mut first = shared.first_listed.subscribe();
    let Ok(at) = first.wait_for(Option::is_some).await.map(|at| *at) else {
        return;
    };
    if let Some(at) = at {
        tokio::time::sleep_until((at + timeout).into()).await;
        shared.give_up_waiting(&kinds, timeout);
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The running watches of one kind, at the version discovery chose.
struct Running {
    resource: ApiResource,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Watches the cluster and feeds what it sees to the rebuild loop.
pub struct ClusterSource {
    client: Client,
    options: ClusterOptions,
    kinds: Vec<&'static dyn Kind>,
    shared: Arc<Shared>,
}

/// Every cluster watched: the one cluster, or each `--cluster` in order, each into its
/// own layer of the feed.
pub struct Clusters(Vec<ClusterSource>);

impl Clusters {
    /// Connects to each cluster (see [`connect`]) and prepares the watches of what the
    /// `enabled` kinds (`--resources`) need; nothing is listed until [`Clusters::run`].
    /// Until every kind of every cluster has settled (listed, not served, forbidden, or
    /// given up on after `--sync-timeout`), the feed holds back the first zone.
    pub async fn connect(
        options: &ClusterOptions,
        enabled: &[zone::Kind],
        feed: Arc<Feed>,
        metrics: SourceMetrics,
    ) -> Result<Self> {
        let first_listed = Arc::new(tokio::sync::watch::Sender::new(None));
        let mut sources = Vec::new();
        for one in options.each() {
            let source = ClusterSource::connect(
                &one,
                enabled,
                feed.clone(),
                metrics.clone(),
                first_listed.clone(),
            )
            .await?;
            sources.push(source);
        }
        Ok(Clusters(sources))
    }

    /// Each cluster's client, by its `--cluster` name (`None` for the one cluster):
    /// what the Events of `--events` are written through. Cheap to clone.
    pub fn clients(&self) -> Vec<(Option<Arc<str>>, Client)> {
        (self.0.iter())
            .map(|source| (source.shared.cluster.clone(), source.client.clone()))
            .collect()
    }

    /// Runs every cluster's discovery and watches until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let running = self
            .0
            .into_iter()
            .map(|source| source.run(shutdown.clone()));
        futures::future::join_all(running).await;
    }
}

impl ClusterSource {
    async fn connect(
        options: &ClusterOptions,
        enabled: &[zone::Kind],
        feed: Arc<Feed>,
        metrics: SourceMetrics,
        first_listed: FirstListed,
    ) -> Result<Self> {
        let client = connect(options).await?;
        let namespaces: HashSet<&String> = options.namespaces.iter().collect();
        let cluster: Option<Arc<str>> = options.name().map(Into::into);
        let shared = Arc::new(Shared {
            layer: feed.add_cluster(cluster.clone()),
            cluster,
            feed,
            states: Mutex::default(),
            metrics,
            warned: Mutex::default(),
            scopes: namespaces.len().max(1),
            listed: Mutex::default(),
            first_listed,
            last_error: Mutex::default(),
            gone: Mutex::default(),
        });
        let kinds = kind::needed(enabled);
        for kind in &kinds {
            shared.set_state(*kind, SyncState::Pending);
        }
        Ok(ClusterSource {
            client,
            options: options.clone(),
            kinds,
            shared,
        })
    }

    /// Runs until `shutdown`: discovery every `--resync`, and the watches of every
    /// served kind. With `--cluster`, its log lines name the cluster.
    pub async fn run(self, shutdown: CancellationToken) {
        let span = match &self.shared.cluster {
            Some(cluster) => tracing::info_span!("cluster", name = %cluster),
            None => tracing::Span::none(),
        };
        self.run_watches(shutdown).instrument(span).await;
    }

    async fn run_watches(self, shutdown: CancellationToken) {
        let mut running: HashMap<TypeId, Running> = HashMap::new();
        // Discoveries in a row that missed each watched kind.
        let mut misses: HashMap<TypeId, u32> = HashMap::new();
        let _timeout = AbortOnDrop(tokio::spawn(
            sync_timeout(
                self.shared.clone(),
                self.kinds.clone(),
                self.options.sync_timeout,
            )
            .in_current_span(),
        ));
        let mut retry = RETRY_FIRST;
        let mut reachable = true;
        loop {
            let wait = match discovery::discover(&self.client, &self.kinds).await {
                Ok(served) => {
                    if !reachable {
                        tracing::info!("the Kubernetes API is reachable again");
                    }
                    reachable = true;
                    retry = RETRY_FIRST;
                    self.follow(served, &mut running, &mut misses);
                    self.options.resync
                }
                Err(error) => {
                    tracing::debug!(%error, "discovery failed");
                    if reachable {
                        tracing::warn!(
                            "cannot reach the Kubernetes API for discovery; serving the last zone, retrying"
                        );
                    }
                    reachable = false;
                    let wait = retry;
                    retry = (retry * 2).min(RETRY_MAX).min(self.options.resync);
                    wait
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Starts, restarts or stops the watches after discovery.
    fn follow(
        &self,
        served: Vec<Served>,
        running: &mut HashMap<TypeId, Running>,
        misses: &mut HashMap<TypeId, u32>,
    ) {
        for (kind, served) in self.kinds.iter().copied().zip(served) {
            match served {
                Served::No => {
                    if running.contains_key(&kind.id()) {
                        let missed = misses.entry(kind.id()).or_default();
                        *missed += 1;
                        if *missed < MISSES_TO_FORGET && !self.shared.said_gone(kind) {
                            tracing::info!(
                                kind = %kind.label(),
                                group = %kind.group(),
                                "discovery did not list this kind; keeping its objects until the API confirms it is gone"
                            );
                            continue;
                        }
                    }
                    misses.remove(&kind.id());
                    if running.remove(&kind.id()).is_some()
                        || self.shared.state(kind) != Some(SyncState::NotServed)
                    {
                        tracing::warn!(
                            kind = %kind.label(),
                            group = %kind.group(),
                            "the cluster does not serve this kind (CRD not installed?): skipped"
                        );
                    }
                    self.shared.change(kind, |set| set.clear(kind));
                    self.shared.set_state(kind, SyncState::NotServed);
                }
                Served::At(resource) => {
                    misses.remove(&kind.id());
                    let current = running.get(&kind.id()).map(|r| r.resource.version.clone());
                    if current.as_deref() == Some(resource.version.as_str()) {
                        continue;
                    }
                    if let Some(old) = current {
                        tracing::info!(kind = %kind.label(), from = %old, to = %resource.version, "the served version changed: watching again");
                    }
                    running.remove(&kind.id());
                    tracing::info!(kind = %kind.label(), version = %resource.api_version, "watching");
                    let tasks = self.spawn_watches(kind, &resource);
                    running.insert(kind.id(), Running { resource, tasks });
                }
            }
        }
    }

    /// One watch per `--namespace` (or one over all namespaces); one over everything,
    /// without `--label-selector`, for a kind that is only looked up (Namespaces).
    fn spawn_watches(
        &self,
        kind: &'static dyn Kind,
        resource: &ApiResource,
    ) -> Vec<JoinHandle<()>> {
        let scopes: Vec<Option<String>> = if self.options.namespaces.is_empty() || !kind.scoped() {
            vec![None]
        } else {
            self.options.namespaces.iter().cloned().map(Some).collect()
        };
        scopes
            .into_iter()
            .map(|scope| {
                let api: Api<listed::ListedObject> = match &scope {
                    Some(ns) => Api::namespaced_with(self.client.clone(), ns, resource),
                    None => Api::all_with(self.client.clone(), resource),
                };
                let mut config = watcher::Config::default();
                if let Some(selector) = self
                    .options
                    .label_selector
                    .as_ref()
                    .filter(|_| kind.scoped())
                {
                    config = config.labels(selector);
                }
                watch::spawn(self.shared.clone(), kind, api, scope, config)
            })
            .collect()
    }
}
