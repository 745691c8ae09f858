//! The cluster source: watches the Kubernetes API and keeps the zone in step with it.
//!
//! Each kind is on its own. Discovery tells which kinds (and which versions) the cluster
//! serves; a kind that is not served, or that RBAC does not let us list, is skipped with
//! one warning and a metric, and the others serve. (k8s_gateway answered SERVFAIL for
//! everything when one CRD or one rule was missing.) Discovery runs again every
//! `--resync`, so a CRD installed later is picked up without a restart.
//!
//! Every watch keeps a slimmed copy of its objects; a relist replaces a watch's objects
//! in one step, so the zone never sees half a list. When the API goes away the last good
//! zone keeps answering: watches resume with backoff and relist, and the zone is rebuilt
//! only when the objects changed. Events are coalesced over a short window, so a Flux
//! reconcile touching 200 objects rebuilds the zone a few times, not 200.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, DynamicObject};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::discovery::{ApiGroup, ApiResource};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::dnsendpoint::DnsEndpoint;
use super::gateway_api::{Gateway, GrpcRoute, HttpRoute, TlsRoute};
use super::istio::{GATEWAY_KIND, IstioGateway, VirtualService};
use super::slim::Slim;
use super::{Objects, Rebuilder};
use crate::metrics::{KindLabels, SourceMetrics, SourceStateLabels, WatchErrorLabels};
use crate::zone::Kind;

/// How long the rebuild waits for the events of a burst to stop arriving.
const QUIET: Duration = Duration::from_millis(100);
/// The longest a rebuild waits in a burst that does not stop: a change must reach the
/// answers within a second.
const MAX_WAIT: Duration = Duration::from_millis(500);
/// First and longest wait between discovery attempts while the API is unreachable.
const RETRY_FIRST: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(10);

/// The options of the cluster source (`--kubeconfig`, `--context`, `--namespace`,
/// `--label-selector`, `--resync`).
#[derive(Clone, Debug, Default)]
pub struct ClusterOptions {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    /// Empty: every namespace.
    pub namespaces: Vec<String>,
    pub label_selector: Option<String>,
    pub resync: Duration,
}

/// Why the cluster source could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("--kubeconfig {path}: {message}")]
    Kubeconfig { path: PathBuf, message: String },
    #[error(
        "no Kubernetes configuration (not in a pod, no KUBECONFIG or ~/.kube/config; or give --manifests): {0}"
    )]
    NoConfig(String),
    #[error("cannot create a Kubernetes client: {0}")]
    Client(String),
}

/// Connects with `--kubeconfig`/`--context` when given, else the pod's service account,
/// else `KUBECONFIG` or `~/.kube/config`.
pub async fn connect(options: &ClusterOptions) -> Result<Client, Error> {
    let kube_options = KubeConfigOptions {
        context: options.context.clone(),
        ..KubeConfigOptions::default()
    };
    let config = match &options.kubeconfig {
        Some(path) => {
            let invalid = |message: String| Error::Kubeconfig {
                path: path.clone(),
                message,
            };
            let file = Kubeconfig::read_from(path).map_err(|e| invalid(e.to_string()))?;
            kube::Config::from_custom_kubeconfig(file, &kube_options)
                .await
                .map_err(|e| invalid(e.to_string()))?
        }
        None if options.context.is_some() => kube::Config::from_kubeconfig(&kube_options)
            .await
            .map_err(|e| Error::NoConfig(e.to_string()))?,
        None => kube::Config::infer()
            .await
            .map_err(|e| Error::NoConfig(e.to_string()))?,
    };
    Client::try_from(config).map_err(|e| Error::Client(e.to_string()))
}

/// A kind of API object the zone is built from. Not the same as [`Kind`]: Gateways and
/// Services are read for what routes and VirtualServices point at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ApiKind {
    Service,
    Ingress,
    Gateway,
    HttpRoute,
    GrpcRoute,
    TlsRoute,
    IstioGateway,
    VirtualService,
    DnsEndpoint,
}

impl ApiKind {
    pub const ALL: [ApiKind; 9] = [
        ApiKind::Service,
        ApiKind::Ingress,
        ApiKind::Gateway,
        ApiKind::HttpRoute,
        ApiKind::GrpcRoute,
        ApiKind::TlsRoute,
        ApiKind::IstioGateway,
        ApiKind::VirtualService,
        ApiKind::DnsEndpoint,
    ];

    pub fn group(self) -> &'static str {
        match self {
            ApiKind::Service => "",
            ApiKind::Ingress => "networking.k8s.io",
            ApiKind::Gateway | ApiKind::HttpRoute | ApiKind::GrpcRoute | ApiKind::TlsRoute => {
                super::gateway_api::GROUP
            }
            ApiKind::IstioGateway | ApiKind::VirtualService => super::istio::GROUP,
            ApiKind::DnsEndpoint => "externaldns.k8s.io",
        }
    }

    /// The kind as the API names it.
    pub fn api_kind(self) -> &'static str {
        match self {
            ApiKind::Service => "Service",
            ApiKind::Ingress => "Ingress",
            ApiKind::Gateway | ApiKind::IstioGateway => "Gateway",
            ApiKind::HttpRoute => "HTTPRoute",
            ApiKind::GrpcRoute => "GRPCRoute",
            ApiKind::TlsRoute => "TLSRoute",
            ApiKind::VirtualService => "VirtualService",
            ApiKind::DnsEndpoint => "DNSEndpoint",
        }
    }

    /// The name in logs and metric labels; unambiguous between the two Gateways.
    pub fn label(self) -> &'static str {
        match self {
            ApiKind::IstioGateway => GATEWAY_KIND,
            other => other.api_kind(),
        }
    }

    /// The kinds to watch for the kinds `--resources` enables.
    pub fn needed(enabled: &[Kind]) -> Vec<ApiKind> {
        let mut kinds = Vec::new();
        for kind in enabled {
            let add: &[ApiKind] = match kind {
                Kind::Service => &[ApiKind::Service],
                Kind::Ingress => &[ApiKind::Ingress],
                Kind::HttpRoute => &[ApiKind::Gateway, ApiKind::HttpRoute],
                Kind::GrpcRoute => &[ApiKind::Gateway, ApiKind::GrpcRoute],
                Kind::TlsRoute => &[ApiKind::Gateway, ApiKind::TlsRoute],
                // The Istio Gateway's addresses are its LoadBalancer Services'.
                Kind::VirtualService => &[
                    ApiKind::Service,
                    ApiKind::IstioGateway,
                    ApiKind::VirtualService,
                ],
                Kind::DnsEndpoint => &[ApiKind::DnsEndpoint],
            };
            for k in add {
                if !kinds.contains(k) {
                    kinds.push(*k);
                }
            }
        }
        kinds.sort();
        kinds
    }
}

/// Where a kind stands. The server is ready once no enabled kind is `Pending`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncState {
    /// Not listed yet (the API may be unreachable).
    Pending,
    /// Listed, and watched.
    Synced,
    /// The cluster does not serve this kind (its CRD is not installed).
    NotServed,
    /// RBAC does not let us list it.
    Forbidden,
}

impl SyncState {
    const ALL: [SyncState; 4] = [
        SyncState::Pending,
        SyncState::Synced,
        SyncState::NotServed,
        SyncState::Forbidden,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SyncState::Pending => "pending",
            SyncState::Synced => "synced",
            SyncState::NotServed => "not_served",
            SyncState::Forbidden => "forbidden",
        }
    }
}

type Key = (String, String);

/// The slimmed objects of every watched kind.
#[derive(Default)]
struct Store {
    services: BTreeMap<Key, Service>,
    ingresses: BTreeMap<Key, Ingress>,
    gateways: BTreeMap<Key, Gateway>,
    http_routes: BTreeMap<Key, HttpRoute>,
    grpc_routes: BTreeMap<Key, GrpcRoute>,
    tls_routes: BTreeMap<Key, TlsRoute>,
    istio_gateways: BTreeMap<Key, IstioGateway>,
    virtual_services: BTreeMap<Key, VirtualService>,
    dns_endpoints: BTreeMap<Key, DnsEndpoint>,
}

impl Store {
    fn objects(&self) -> Objects {
        Objects {
            services: self.services.values().cloned().collect(),
            ingresses: self.ingresses.values().cloned().collect(),
            dns_endpoints: self.dns_endpoints.values().cloned().collect(),
            gateways: self.gateways.values().cloned().collect(),
            http_routes: self.http_routes.values().cloned().collect(),
            grpc_routes: self.grpc_routes.values().cloned().collect(),
            tls_routes: self.tls_routes.values().cloned().collect(),
            istio_gateways: self.istio_gateways.values().cloned().collect(),
            virtual_services: self.virtual_services.values().cloned().collect(),
            locations: HashMap::new(),
        }
    }

    fn clear(&mut self, kind: ApiKind) -> bool {
        let had = self.len(kind) > 0;
        match kind {
            ApiKind::Service => self.services.clear(),
            ApiKind::Ingress => self.ingresses.clear(),
            ApiKind::Gateway => self.gateways.clear(),
            ApiKind::HttpRoute => self.http_routes.clear(),
            ApiKind::GrpcRoute => self.grpc_routes.clear(),
            ApiKind::TlsRoute => self.tls_routes.clear(),
            ApiKind::IstioGateway => self.istio_gateways.clear(),
            ApiKind::VirtualService => self.virtual_services.clear(),
            ApiKind::DnsEndpoint => self.dns_endpoints.clear(),
        }
        had
    }

    fn len(&self, kind: ApiKind) -> usize {
        match kind {
            ApiKind::Service => self.services.len(),
            ApiKind::Ingress => self.ingresses.len(),
            ApiKind::Gateway => self.gateways.len(),
            ApiKind::HttpRoute => self.http_routes.len(),
            ApiKind::GrpcRoute => self.grpc_routes.len(),
            ApiKind::TlsRoute => self.tls_routes.len(),
            ApiKind::IstioGateway => self.istio_gateways.len(),
            ApiKind::VirtualService => self.virtual_services.len(),
            ApiKind::DnsEndpoint => self.dns_endpoints.len(),
        }
    }
}

/// An object type the store holds.
trait Stored: Slim + Clone + PartialEq + DeserializeOwned + Resource + Send + Sync + 'static {
    fn slot(store: &mut Store) -> &mut BTreeMap<Key, Self>;
}

macro_rules! stored {
    ($($t:ty => $field:ident),* $(,)?) => {$(
        impl Stored for $t {
            fn slot(store: &mut Store) -> &mut BTreeMap<Key, Self> {
                &mut store.$field
            }
        }
    )*};
}

stored!(
    Service => services,
    Ingress => ingresses,
    Gateway => gateways,
    HttpRoute => http_routes,
    GrpcRoute => grpc_routes,
    TlsRoute => tls_routes,
    IstioGateway => istio_gateways,
    VirtualService => virtual_services,
    DnsEndpoint => dns_endpoints,
);

/// What the watch tasks and the rebuild loop share.
struct Shared {
    store: Mutex<Store>,
    states: Mutex<BTreeMap<ApiKind, SyncState>>,
    /// Set when the objects changed since the last rebuild.
    dirty: AtomicBool,
    changed: Notify,
    metrics: SourceMetrics,
    /// (kind, reason) already warned about, until the kind syncs again.
    warned: Mutex<HashSet<(ApiKind, &'static str)>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn mark_changed(&self) {
        self.dirty.store(true, Ordering::Release);
        self.changed.notify_one();
    }

    fn set_state(&self, kind: ApiKind, state: SyncState) {
        let previous = lock(&self.states).insert(kind, state);
        for s in SyncState::ALL {
            self.metrics
                .state
                .get_or_create(&SourceStateLabels {
                    kind: kind.label().into(),
                    state: s.as_str().into(),
                })
                .set(i64::from(s == state));
        }
        if previous != Some(state) {
            // Readiness may have changed.
            self.changed.notify_one();
        }
    }

    fn state(&self, kind: ApiKind) -> Option<SyncState> {
        lock(&self.states).get(&kind).copied()
    }

    fn all_settled(&self) -> bool {
        lock(&self.states)
            .values()
            .all(|s| *s != SyncState::Pending)
    }

    fn count(&self, kind: ApiKind, store: &Store) {
        self.metrics
            .objects
            .get_or_create(&KindLabels {
                kind: kind.label().into(),
            })
            .set(i64::try_from(store.len(kind)).unwrap_or(i64::MAX));
    }

    /// Replaces the objects of one watch (all namespaces, or one) after a list.
    fn replace<T: Stored>(&self, kind: ApiKind, scope: Option<&str>, objects: BTreeMap<Key, T>) {
        let mut store = lock(&self.store);
        let slot = T::slot(&mut store);
        let in_scope = |key: &Key| scope.is_none_or(|ns| key.0 == ns);
        let unchanged = slot.iter().filter(|(k, _)| in_scope(k)).count() == objects.len()
            && objects.iter().all(|(k, v)| slot.get(k) == Some(v));
        if !unchanged {
            slot.retain(|k, _| !in_scope(k));
            slot.extend(objects);
            self.count(kind, &store);
            self.mark_changed();
        }
    }

    fn apply<T: Stored>(&self, kind: ApiKind, key: Key, object: T) {
        let mut store = lock(&self.store);
        let slot = T::slot(&mut store);
        if slot.get(&key) != Some(&object) {
            slot.insert(key, object);
            self.count(kind, &store);
            self.mark_changed();
        }
    }

    fn delete<T: Stored>(&self, kind: ApiKind, key: &Key) {
        let mut store = lock(&self.store);
        if T::slot(&mut store).remove(key).is_some() {
            self.count(kind, &store);
            self.mark_changed();
        }
    }

    fn forget(&self, kind: ApiKind) {
        let mut store = lock(&self.store);
        if store.clear(kind) {
            self.count(kind, &store);
            self.mark_changed();
        }
    }

    /// Warns once per kind and reason until the kind syncs again.
    fn warn_once(&self, kind: ApiKind, reason: &'static str) -> bool {
        lock(&self.warned).insert((kind, reason))
    }
}

/// The running watch of one kind, at the version discovery chose.
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

/// Watches the cluster and rebuilds the zone from what it sees.
pub struct ClusterSource {
    client: Client,
    options: ClusterOptions,
    kinds: Vec<ApiKind>,
    rebuilder: Arc<Rebuilder>,
    shared: Arc<Shared>,
}

impl ClusterSource {
    /// Connects with `options` (see [`connect`]) and prepares the watches; nothing is
    /// listed until [`ClusterSource::run`].
    pub async fn connect(
        options: &ClusterOptions,
        enabled: &[Kind],
        rebuilder: Arc<Rebuilder>,
        metrics: SourceMetrics,
    ) -> Result<Self, Error> {
        let client = connect(options).await?;
        Ok(Self::new(
            client,
            options.clone(),
            enabled,
            rebuilder,
            metrics,
        ))
    }

    /// `enabled` is `--resources`: only what those kinds need is watched.
    fn new(
        client: Client,
        options: ClusterOptions,
        enabled: &[Kind],
        rebuilder: Arc<Rebuilder>,
        metrics: SourceMetrics,
    ) -> Self {
        let shared = Arc::new(Shared {
            store: Mutex::default(),
            states: Mutex::default(),
            dirty: AtomicBool::new(false),
            changed: Notify::new(),
            metrics,
            warned: Mutex::default(),
        });
        let kinds = ApiKind::needed(enabled);
        for kind in &kinds {
            shared.set_state(*kind, SyncState::Pending);
        }
        ClusterSource {
            client,
            options,
            kinds,
            rebuilder,
            shared,
        }
    }

    /// Runs until `shutdown`: discovery every `--resync`, a watch per served kind, and
    /// the rebuild loop.
    pub async fn run(self, shutdown: CancellationToken) {
        let rebuild = tokio::spawn(rebuild_loop(
            self.shared.clone(),
            self.rebuilder.clone(),
            shutdown.clone(),
        ));
        let mut running: HashMap<ApiKind, Running> = HashMap::new();
        let mut retry = RETRY_FIRST;
        let mut reachable = true;
        loop {
            let complete = self.discover(&mut running).await;
            let wait = if complete {
                if !reachable {
                    tracing::info!("the Kubernetes API is reachable again");
                }
                reachable = true;
                retry = RETRY_FIRST;
                self.options.resync
            } else {
                if reachable {
                    tracing::warn!(
                        "cannot reach the Kubernetes API for discovery; serving the last zone, retrying"
                    );
                }
                reachable = false;
                let wait = retry;
                retry = (retry * 2).min(RETRY_MAX).min(self.options.resync);
                wait
            };
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(wait) => {}
            }
        }
        drop(running);
        let _ = rebuild.await;
    }

    /// Discovers which kinds the cluster serves and starts, restarts or stops their
    /// watches. Returns false when the API could not be asked (try again soon).
    async fn discover(&self, running: &mut HashMap<ApiKind, Running>) -> bool {
        let mut groups: BTreeMap<&str, Option<ApiGroup>> = BTreeMap::new();
        for kind in &self.kinds {
            let group = kind.group();
            if groups.contains_key(group) {
                continue;
            }
            match kube::discovery::group(&self.client, group).await {
                Ok(found) => {
                    groups.insert(group, Some(found));
                }
                Err(kube::Error::Discovery(_)) => {
                    groups.insert(group, None);
                }
                Err(kube::Error::Api(status)) if status.code == 404 => {
                    groups.insert(group, None);
                }
                Err(e) => {
                    tracing::debug!(group, error = %e, "discovery failed");
                    return false;
                }
            }
        }
        for kind in &self.kinds {
            let resource = groups
                .get(kind.group())
                .and_then(Option::as_ref)
                .and_then(|g| served_resource(g, kind.api_kind()));
            match resource {
                None => {
                    if running.remove(kind).is_some()
                        || self.shared.state(*kind) != Some(SyncState::NotServed)
                    {
                        tracing::warn!(
                            kind = kind.label(),
                            group = kind.group(),
                            "the cluster does not serve this kind (CRD not installed?): skipped"
                        );
                    }
                    self.shared.forget(*kind);
                    self.shared.set_state(*kind, SyncState::NotServed);
                }
                Some(resource) => {
                    let current = running.get(kind).map(|r| r.resource.version.clone());
                    if current.as_deref() == Some(resource.version.as_str()) {
                        continue;
                    }
                    if let Some(old) = current {
                        tracing::info!(kind = kind.label(), from = %old, to = %resource.version, "the served version changed: watching again");
                    }
                    running.remove(kind);
                    tracing::info!(
                        kind = kind.label(),
                        version = %resource.api_version,
                        "watching"
                    );
                    let tasks = self.spawn_watches(*kind, &resource);
                    running.insert(*kind, Running { resource, tasks });
                }
            }
        }
        true
    }

    fn spawn_watches(&self, kind: ApiKind, resource: &ApiResource) -> Vec<JoinHandle<()>> {
        let scopes: Vec<Option<String>> = if self.options.namespaces.is_empty() {
            vec![None]
        } else {
            self.options.namespaces.iter().cloned().map(Some).collect()
        };
        scopes
            .into_iter()
            .map(|scope| {
                let api: Api<DynamicObject> = match &scope {
                    Some(ns) => Api::namespaced_with(self.client.clone(), ns, resource),
                    None => Api::all_with(self.client.clone(), resource),
                };
                let mut config = watcher::Config::default();
                if let Some(selector) = &self.options.label_selector {
                    config = config.labels(selector);
                }
                let shared = self.shared.clone();
                match kind {
                    ApiKind::Service => spawn_watch::<Service>(shared, kind, api, scope, config),
                    ApiKind::Ingress => spawn_watch::<Ingress>(shared, kind, api, scope, config),
                    ApiKind::Gateway => spawn_watch::<Gateway>(shared, kind, api, scope, config),
                    ApiKind::HttpRoute => {
                        spawn_watch::<HttpRoute>(shared, kind, api, scope, config)
                    }
                    ApiKind::GrpcRoute => {
                        spawn_watch::<GrpcRoute>(shared, kind, api, scope, config)
                    }
                    ApiKind::TlsRoute => spawn_watch::<TlsRoute>(shared, kind, api, scope, config),
                    ApiKind::IstioGateway => {
                        spawn_watch::<IstioGateway>(shared, kind, api, scope, config)
                    }
                    ApiKind::VirtualService => {
                        spawn_watch::<VirtualService>(shared, kind, api, scope, config)
                    }
                    ApiKind::DnsEndpoint => {
                        spawn_watch::<DnsEndpoint>(shared, kind, api, scope, config)
                    }
                }
            })
            .collect()
    }
}

/// The resource for `kind` at the first version the group serves it in, preferred
/// version first (TLSRoute may be served only at v1alpha2 while the group prefers v1).
fn served_resource(group: &ApiGroup, kind: &str) -> Option<ApiResource> {
    let preferred = group.preferred_version().map(str::to_owned);
    let versions = preferred
        .iter()
        .map(String::as_str)
        .chain(group.versions())
        .collect::<Vec<_>>();
    versions.into_iter().find_map(|version| {
        group
            .versioned_resources(version)
            .into_iter()
            .find(|(resource, _)| resource.kind == kind)
            .map(|(resource, _)| resource)
    })
}

fn spawn_watch<T: Stored>(
    shared: Arc<Shared>,
    kind: ApiKind,
    api: Api<DynamicObject>,
    scope: Option<String>,
    config: watcher::Config,
) -> JoinHandle<()> {
    tokio::spawn(watch::<T>(shared, kind, api, scope, config))
}

/// One watch: list, then follow events; relist after 410 Gone; back off on errors.
async fn watch<T: Stored>(
    shared: Arc<Shared>,
    kind: ApiKind,
    api: Api<DynamicObject>,
    scope: Option<String>,
    config: watcher::Config,
) {
    let stream = watcher(api, config).default_backoff();
    futures::pin_mut!(stream);
    let mut listing: BTreeMap<Key, T> = BTreeMap::new();
    while let Some(event) = stream.next().await {
        match event {
            Ok(watcher::Event::Init) => listing.clear(),
            Ok(watcher::Event::InitApply(object)) => {
                if let Some((key, object)) = decode::<T>(&shared, kind, object) {
                    listing.insert(key, object);
                }
            }
            Ok(watcher::Event::InitDone) => {
                shared.replace(kind, scope.as_deref(), std::mem::take(&mut listing));
                if shared.state(kind) != Some(SyncState::Synced) {
                    tracing::info!(
                        kind = kind.label(),
                        namespace = scope.as_deref().unwrap_or("(all)"),
                        "listed"
                    );
                }
                lock(&shared.warned).retain(|(k, _)| *k != kind);
                shared.set_state(kind, SyncState::Synced);
            }
            Ok(watcher::Event::Apply(object)) => {
                if let Some((key, object)) = decode::<T>(&shared, kind, object) {
                    shared.apply(kind, key, object);
                }
            }
            Ok(watcher::Event::Delete(object)) => {
                let key = key_of(&object);
                shared.delete::<T>(kind, &key);
            }
            Err(error) => report(&shared, kind, &error),
        }
    }
}

fn key_of(object: &DynamicObject) -> Key {
    (
        object.metadata.namespace.clone().unwrap_or_default(),
        object.metadata.name.clone().unwrap_or_default(),
    )
}

/// Turns an object into our slimmed type; one that does not fit is reported with the
/// field, and skipped.
fn decode<T: Stored>(shared: &Shared, kind: ApiKind, object: DynamicObject) -> Option<(Key, T)> {
    let key = key_of(&object);
    let value = match serde_json::to_value(object) {
        Ok(value) => value,
        Err(e) => {
            tracing::warn!(kind = kind.label(), object = %format!("{}/{}", key.0, key.1), "skipped: {e}");
            return None;
        }
    };
    match serde_path_to_error::deserialize::<_, T>(value) {
        Ok(object) => Some((key, object.slim())),
        Err(e) => {
            shared
                .metrics
                .watch_errors
                .get_or_create(&WatchErrorLabels {
                    kind: kind.label().into(),
                    reason: "invalid_object".into(),
                })
                .inc();
            tracing::warn!(
                kind = kind.label(),
                object = %format!("{}/{}", key.0, key.1),
                "skipped: field {}: {}",
                e.path(),
                e.inner()
            );
            None
        }
    }
}

/// The reason label of a watch error.
fn reason(error: &watcher::Error) -> &'static str {
    let status = match error {
        watcher::Error::InitialListFailed(kube::Error::Api(s))
        | watcher::Error::WatchStartFailed(kube::Error::Api(s))
        | watcher::Error::WatchFailed(kube::Error::Api(s)) => Some(s.code),
        watcher::Error::WatchError(s) => Some(s.code),
        _ => None,
    };
    match (status, error) {
        (Some(403), _) => "forbidden",
        (Some(404), _) => "not_found",
        (Some(410), _) => "expired",
        (Some(401), _) => "unauthorized",
        (Some(_), _) => "api_error",
        (None, watcher::Error::NoResourceVersion) => "protocol",
        (None, _) => "connection",
    }
}

fn report(shared: &Shared, kind: ApiKind, error: &watcher::Error) {
    let reason = reason(error);
    shared
        .metrics
        .watch_errors
        .get_or_create(&WatchErrorLabels {
            kind: kind.label().into(),
            reason: reason.into(),
        })
        .inc();
    let state = shared.state(kind);
    match reason {
        // The API server's normal way of saying "relist"; the watcher does.
        "expired" => tracing::debug!(kind = kind.label(), "watch expired (410 Gone): relisting"),
        "forbidden" => {
            if shared.warn_once(kind, reason) {
                tracing::warn!(
                    kind = kind.label(),
                    group = kind.group(),
                    "not allowed to list or watch {}: the service account needs get, list and watch on it (RBAC); skipped until allowed: {error}",
                    kind.label()
                );
            }
            if state != Some(SyncState::Synced) {
                shared.set_state(kind, SyncState::Forbidden);
            }
        }
        "not_found" => {
            if shared.warn_once(kind, reason) {
                tracing::warn!(
                    kind = kind.label(),
                    "the API no longer serves {} (CRD removed?): keeping the last objects until discovery confirms",
                    kind.label()
                );
            }
            if state != Some(SyncState::Synced) {
                shared.set_state(kind, SyncState::NotServed);
            }
        }
        _ => {
            if shared.warn_once(kind, reason) {
                tracing::warn!(
                    kind = kind.label(),
                    reason,
                    "watch failed, serving the last zone and retrying with backoff: {error}"
                );
            }
        }
    }
}

/// Rebuilds the zone after changes, once every kind has settled (listed, not served or
/// forbidden): before that the zone stays empty and queries get SERVFAIL, never half a
/// cluster.
async fn rebuild_loop(shared: Arc<Shared>, rebuilder: Arc<Rebuilder>, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = shared.changed.notified() => {}
        }
        // Coalesce a burst: wait until it has been quiet for a moment, or at most
        // MAX_WAIT after the first event.
        let first = Instant::now();
        loop {
            let left = MAX_WAIT.saturating_sub(first.elapsed());
            if left.is_zero() {
                break;
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(QUIET.min(left)) => break,
                () = shared.changed.notified() => {}
            }
        }
        let first_zone = rebuilder.zone().load().is_none();
        if first_zone && !shared.all_settled() {
            continue;
        }
        if !shared.dirty.swap(false, Ordering::AcqRel) && !first_zone {
            continue;
        }
        let objects = lock(&shared.store).objects();
        let rebuilder = rebuilder.clone();
        // Thousands of objects take milliseconds: off the async workers.
        let built = tokio::task::spawn_blocking(move || {
            rebuilder.rebuild(&objects);
        })
        .await;
        if first_zone && built.is_ok() {
            tracing::info!("every kind listed: serving");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_enabled_kinds_decide_what_is_watched() {
        assert_eq!(ApiKind::needed(&[Kind::Service]), [ApiKind::Service]);
        assert_eq!(
            ApiKind::needed(&[Kind::VirtualService]),
            [
                ApiKind::Service,
                ApiKind::IstioGateway,
                ApiKind::VirtualService
            ]
        );
        assert_eq!(
            ApiKind::needed(&[Kind::TlsRoute, Kind::HttpRoute]),
            [ApiKind::Gateway, ApiKind::HttpRoute, ApiKind::TlsRoute]
        );
        assert_eq!(ApiKind::needed(&Kind::DEFAULT_ORDER), ApiKind::ALL);
    }

    #[test]
    fn errors_get_a_reason() {
        let status = |code| {
            Box::new(kube::core::Status {
                code,
                ..kube::core::Status::default()
            })
        };
        let api = |code| kube::Error::Api(status(code));
        assert_eq!(
            reason(&watcher::Error::InitialListFailed(api(403))),
            "forbidden"
        );
        assert_eq!(
            reason(&watcher::Error::WatchStartFailed(api(404))),
            "not_found"
        );
        assert_eq!(reason(&watcher::Error::WatchError(status(410))), "expired");
        assert_eq!(reason(&watcher::Error::NoResourceVersion), "protocol");
    }
}
