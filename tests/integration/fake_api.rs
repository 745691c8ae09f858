//! A Kubernetes API server on 127.0.0.1 that speaks the API's real JSON, for testing the
//! cluster source through kube's real `Client`: discovery documents, paginated lists,
//! watch event streams with bookmarks, 410 Gone, 403 and 404 with Status bodies, and a
//! server that drops connections, goes away and comes back.
//!
//! Only what kube's discovery and watcher use is served. Each test drives it through
//! [`FakeApi`]: declare resources, apply and delete objects, break things.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// One resource the server serves, at one version.
#[derive(Clone, Debug)]
struct ResourceDef {
    group: String,
    version: String,
    plural: String,
    kind: String,
    namespaced: bool,
}

/// What an open watch wants and where its events go.
struct Watcher {
    group: String,
    plural: String,
    namespace: Option<String>,
    selector: Option<String>,
    bookmarks: bool,
    api_version: String,
    tx: mpsc::UnboundedSender<Line>,
}

enum Line {
    Event(String),
    /// End the stream cleanly.
    End,
    /// Break the connection mid-stream.
    Drop,
}

#[derive(Default)]
struct Inner {
    resources: Vec<ResourceDef>,
    objects: BTreeMap<(String, String), BTreeMap<(String, String), Value>>,
    resource_version: u64,
    /// Events by resource version, for watches that resume: the last [`HISTORY`].
    history: VecDeque<(u64, String, String, &'static str, Value)>,
    /// Watches from a resource version below this get 410 Gone.
    expired_before: u64,
    forbidden: HashSet<(String, String)>,
    /// Lists of these (group, plural, namespace or all) answer 500, as an API server does
    /// when a CRD's conversion webhook is down or etcd times out; watches are not touched.
    failing_lists: HashSet<(String, String, Option<String>)>,
    /// Served, but left out of discovery (an API server that restarts serves `/apis`
    /// before it has loaded every CRD).
    hidden: HashSet<(String, String)>,
    /// Requests for `/api` (the core group, asked first): one per discovery round.
    discoveries: usize,
    watchers: Vec<Watcher>,
    /// events.k8s.io Events, by namespace and name, as created and patched.
    events: BTreeMap<(String, String), Value>,
    /// Every Event write that was answered 2xx: `("create" | "patch", the Event after)`.
    event_writes: Vec<(&'static str, Value)>,
    /// Event writes tried, answered or not.
    event_attempts: usize,
    /// When set, every Event write is answered with this status (403, 500).
    refuse_events: Option<u16>,
    lists: HashMap<String, usize>,
    watches: HashMap<String, usize>,
}

/// How many events are kept for watches that resume (a real API server keeps about five
/// minutes of them); a watch from before the oldest gets 410 Gone, as it would there.
const HISTORY: usize = 10_000;
/// The most bytes of queued events sent as one chunk of a watch stream.
const CHUNK: usize = 64 * 1024;

/// A handle on the fake API server; clones share it.
#[derive(Clone)]
pub struct FakeApi {
    inner: Arc<Mutex<Inner>>,
    addr: SocketAddr,
    serving: Arc<Mutex<Vec<JoinHandle<()>>>>,
    /// Watch events written to the streams so far.
    delivered: Arc<AtomicU64>,
}

impl FakeApi {
    /// Serves on a fresh port of 127.0.0.1.
    pub async fn start() -> FakeApi {
        let api = FakeApi::reserve().await;
        api.serve().await;
        api
    }

    /// Picks a port but does not serve yet: a client gets "connection refused" until
    /// [`FakeApi::serve`].
    pub async fn reserve() -> FakeApi {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        drop(listener);
        FakeApi {
            inner: Arc::default(),
            addr,
            serving: Arc::default(),
            delivered: Arc::default(),
        }
    }

    /// Starts serving on the reserved port (again, after [`FakeApi::stop`]).
    pub async fn serve(&self) {
        let listener = TcpListener::bind(self.addr)
            .await
            .expect("bind the reserved port");
        let router = Router::new().fallback(handle).with_state(self.clone());
        let serving = self.serving.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let service = TowerToHyperService::new(router.clone());
                let connection = tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
                lock(&serving).push(connection);
            }
        });
        lock(&self.serving).push(accept);
    }

    /// Stops serving: the port is closed and every open connection is cut.
    pub async fn stop(&self) {
        let tasks: Vec<JoinHandle<()>> = lock(&self.serving).drain(..).collect();
        for task in &tasks {
            task.abort();
        }
        for task in tasks {
            let _ = task.await;
        }
        self.state().watchers.clear();
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A kubeconfig for this server (no credentials), as `kubectl` writes them.
    pub fn write_kubeconfig(&self, dir: &Path) -> PathBuf {
        let path = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {}\nusers:\n- name: fake\n  user: {{}}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n    namespace: default\ncurrent-context: fake\n",
            self.url()
        );
        std::fs::write(&path, text).expect("write kubeconfig");
        path
    }

    /// The Events created or patched so far, in order, each as it stood after the write.
    pub fn event_writes(&self) -> Vec<(&'static str, Value)> {
        self.state().event_writes.clone()
    }

    /// Event writes tried so far, refused ones included.
    pub fn event_attempts(&self) -> usize {
        self.state().event_attempts
    }

    /// Answers every Event write with `code` (None: accept them again).
    pub fn refuse_events(&self, code: Option<u16>) {
        self.state().refuse_events = code;
    }

    /// Waits until `n` Event writes have been tried.
    pub async fn wait_event_attempts(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.event_attempts() < n {
            assert!(
                Instant::now() < deadline,
                "{} Event writes, wanted {n}",
                self.event_attempts()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn state(&self) -> MutexGuard<'_, Inner> {
        lock(&self.inner)
    }

    /// Serves `plural` of `group` at `version`; the first version of a group is its
    /// preferred one.
    pub fn serve_resource(
        &self,
        group: &str,
        version: &str,
        plural: &str,
        kind: &str,
        namespaced: bool,
    ) {
        self.state().resources.push(ResourceDef {
            group: group.into(),
            version: version.into(),
            plural: plural.into(),
            kind: kind.into(),
            namespaced,
        });
    }

    /// Every kind k8s-gateway reads, at the versions a current cluster serves.
    pub fn serve_all(&self) {
        self.serve_resource("", "v1", "services", "Service", true);
        self.serve_resource("", "v1", "namespaces", "Namespace", false);
        self.serve_resource("networking.k8s.io", "v1", "ingresses", "Ingress", true);
        for (plural, kind) in [
            ("gateways", "Gateway"),
            ("httproutes", "HTTPRoute"),
            ("grpcroutes", "GRPCRoute"),
        ] {
            self.serve_resource("gateway.networking.k8s.io", "v1", plural, kind, true);
        }
        self.serve_resource(
            "gateway.networking.k8s.io",
            "v1alpha2",
            "tlsroutes",
            "TLSRoute",
            true,
        );
        for (plural, kind) in [
            ("gateways", "Gateway"),
            ("virtualservices", "VirtualService"),
        ] {
            self.serve_resource("networking.istio.io", "v1", plural, kind, true);
        }
        self.serve_resource(
            "externaldns.k8s.io",
            "v1alpha1",
            "dnsendpoints",
            "DNSEndpoint",
            true,
        );
    }

    /// Takes a resource out of discovery and makes its URLs 404 (its CRD is deleted):
    /// its open watches end, as the API server ends them.
    pub fn remove_resource(&self, group: &str, plural: &str) {
        let mut state = self.state();
        state
            .resources
            .retain(|r| !(r.group == group && r.plural == plural));
        for watcher in (state.watchers.iter()).filter(|w| w.group == group && w.plural == plural) {
            let _ = watcher.tx.send(Line::End);
        }
    }

    /// Leaves a resource out of discovery while still serving it, or puts it back.
    pub fn hide_from_discovery(&self, group: &str, plural: &str, hidden: bool) {
        let key = (group.to_string(), plural.to_string());
        let mut state = self.state();
        if hidden {
            state.hidden.insert(key);
        } else {
            state.hidden.remove(&key);
        }
    }

    /// Discovery rounds started so far (requests for `/api`).
    pub fn discoveries(&self) -> usize {
        self.state().discoveries
    }

    /// Every list of this resource (in `namespace`, or across all namespaces) answers
    /// 500 with a Status, or normally again.
    pub fn fail_lists(&self, group: &str, plural: &str, namespace: Option<&str>, failing: bool) {
        let key = (
            group.to_string(),
            plural.to_string(),
            namespace.map(str::to_owned),
        );
        let mut state = self.state();
        if failing {
            state.failing_lists.insert(key);
        } else {
            state.failing_lists.remove(&key);
        }
    }

    /// Every list and watch of this resource answers 403 (RBAC), or normally again.
    pub fn forbid(&self, group: &str, plural: &str, forbidden: bool) {
        let mut state = self.state();
        let key = (group.to_string(), plural.to_string());
        if forbidden {
            state.forbidden.insert(key);
        } else {
            state.forbidden.remove(&key);
        }
    }

    /// Creates or replaces an object and tells the watches.
    pub fn apply(&self, group: &str, plural: &str, mut object: Value) {
        let mut state = self.state();
        state.resource_version += 1;
        let rv = state.resource_version;
        let namespace = object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("default")
            .to_string();
        let name = object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .expect("metadata.name")
            .to_string();
        let meta = object
            .get_mut("metadata")
            .and_then(Value::as_object_mut)
            .expect("metadata");
        let cluster_scoped = (state.resources.iter())
            .any(|r| r.group == group && r.plural == plural && !r.namespaced);
        if !cluster_scoped {
            meta.insert("namespace".into(), json!(namespace));
        }
        meta.insert("resourceVersion".into(), json!(rv.to_string()));
        meta.entry("uid")
            .or_insert(json!(format!("uid-{namespace}-{name}")));
        meta.entry("creationTimestamp")
            .or_insert(json!("2026-11-24T00:00:00Z"));
        let objects = state
            .objects
            .entry((group.into(), plural.into()))
            .or_default();
        let kind = if objects.insert((namespace, name), object.clone()).is_some() {
            "MODIFIED"
        } else {
            "ADDED"
        };
        state.publish(rv, group, plural, kind, object);
    }

    /// Creates many objects at once, without watch events or history: a cluster that
    /// already holds them when the watches start (each needs `metadata.namespace`).
    pub fn seed(&self, group: &str, plural: &str, objects: impl IntoIterator<Item = Value>) {
        let mut state = self.state();
        state.resource_version += 1;
        let rv = json!(state.resource_version.to_string());
        let stored = state
            .objects
            .entry((group.into(), plural.into()))
            .or_default();
        for mut object in objects {
            let meta = &mut object["metadata"];
            meta["resourceVersion"] = rv.clone();
            let key = (
                meta["namespace"].as_str().unwrap_or("default").to_string(),
                meta["name"].as_str().expect("metadata.name").to_string(),
            );
            stored.insert(key, object);
        }
    }

    /// Sends `line` as it is, as one line of every open watch of `plural`: an event the
    /// server makes up (a kind we do not read, an object that does not decode).
    pub fn send_raw(&self, plural: &str, line: &str) {
        let mut state = self.state();
        state.watchers.retain(|w| !w.tx.is_closed());
        for watcher in state.watchers.iter().filter(|w| w.plural == plural) {
            let _ = watcher.tx.send(Line::Event(line.to_string()));
        }
    }

    pub fn delete(&self, group: &str, plural: &str, namespace: &str, name: &str) {
        let mut state = self.state();
        let removed = state
            .objects
            .get_mut(&(group.to_string(), plural.to_string()))
            .and_then(|o| o.remove(&(namespace.to_string(), name.to_string())));
        if let Some(mut object) = removed {
            state.resource_version += 1;
            let rv = state.resource_version;
            object["metadata"]["resourceVersion"] = json!(rv.to_string());
            state.publish(rv, group, plural, "DELETED", object);
        }
    }

    /// Every resource version so far becomes too old: open watches get an ERROR event
    /// with 410 Gone and end, and a watch resuming from them gets the same.
    pub fn expire(&self) {
        let mut state = self.state();
        state.resource_version += 1;
        state.expired_before = state.resource_version;
        state.history.clear();
        for watcher in state.watchers.drain(..) {
            let _ = watcher.tx.send(Line::Event(gone(0, 0).to_string()));
            let _ = watcher.tx.send(Line::End);
        }
    }

    /// Cuts every open watch mid-stream.
    pub fn drop_watches(&self) {
        for watcher in self.state().watchers.drain(..) {
            let _ = watcher.tx.send(Line::Drop);
        }
    }

    /// Sends a BOOKMARK to every watch that asked for them.
    pub fn bookmark(&self) {
        let state = self.state();
        let rv = state.resource_version.to_string();
        for watcher in state.watchers.iter().filter(|w| w.bookmarks) {
            let kind = state
                .resources
                .iter()
                .find(|r| r.group == watcher.group && r.plural == watcher.plural)
                .map_or("Unknown".to_string(), |r| r.kind.clone());
            let event = json!({"type": "BOOKMARK", "object": {
                "apiVersion": watcher.api_version, "kind": kind,
                "metadata": {"resourceVersion": rv}}});
            let _ = watcher.tx.send(Line::Event(event.to_string()));
        }
    }

    pub fn lists(&self, plural: &str) -> usize {
        self.state().lists.get(plural).copied().unwrap_or(0)
    }

    pub fn watches(&self, plural: &str) -> usize {
        self.state().watches.get(plural).copied().unwrap_or(0)
    }

    /// Watch events written to the streams so far (every watch, every resource).
    pub fn events_delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }

    /// Waits until `n` watches of `plural` are open.
    pub async fn wait_watching(&self, plural: &str, n: usize) {
        let start = Instant::now();
        loop {
            let open = self
                .state()
                .watchers
                .iter()
                .filter(|w| w.plural == plural && !w.tx.is_closed())
                .count();
            if open >= n {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "{open} watches of {plural} open, want {n}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Inner {
    fn publish(&mut self, rv: u64, group: &str, plural: &str, kind: &'static str, object: Value) {
        self.history
            .push_back((rv, group.into(), plural.into(), kind, object.clone()));
        if self.history.len() > HISTORY
            && let Some((forgotten, ..)) = self.history.pop_front()
        {
            // A watch from before this event could not be told it: 410 Gone.
            self.expired_before = self.expired_before.max(forgotten);
        }
        self.watchers.retain(|w| !w.tx.is_closed());
        for watcher in &self.watchers {
            if watcher.group == group
                && watcher.plural == plural
                && in_scope(
                    &object,
                    watcher.namespace.as_deref(),
                    watcher.selector.as_deref(),
                )
            {
                let line =
                    json!({"type": kind, "object": versioned(&object, &watcher.api_version)});
                let _ = watcher.tx.send(Line::Event(line.to_string()));
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn versioned(object: &Value, api_version: &str) -> Value {
    let mut object = object.clone();
    object["apiVersion"] = json!(api_version);
    object
}

fn in_scope(object: &Value, namespace: Option<&str>, selector: Option<&str>) -> bool {
    let ns = object
        .pointer("/metadata/namespace")
        .and_then(Value::as_str);
    if namespace.is_some_and(|n| Some(n) != ns) {
        return false;
    }
    let labels = object.pointer("/metadata/labels");
    let label = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
    selector
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .all(|term| {
            if let Some((k, v)) = term.split_once("!=") {
                label(k.trim()) != Some(v.trim())
            } else if let Some((k, v)) = term.split_once('=') {
                label(k.trim()) == Some(v.trim_start_matches('=').trim())
            } else if let Some(k) = term.strip_prefix('!') {
                label(k).is_none()
            } else {
                label(term).is_some()
            }
        })
}

fn status(code: u16, reason: &str, message: &str) -> Response {
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "code": code});
    (
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn gone(asked: u64, current: u64) -> Value {
    json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": format!("too old resource version: {asked} ({current})"),
        "reason": "Expired", "code": 410}})
}

fn json_response(value: Value) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}

async fn handle(
    State(api): State<FakeApi>,
    Query(query): Query<HashMap<String, String>>,
    request: Request,
) -> Response {
    let path = request.uri().path().trim_end_matches('/').to_string();
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    if let [
        "apis",
        "events.k8s.io",
        "v1",
        "namespaces",
        ns,
        "events",
        rest @ ..,
    ] = parts.as_slice()
    {
        return events(&api, ns, rest.first().copied(), request).await;
    }
    let state = api.state();
    match parts.as_slice() {
        ["version"] => json_response(
            json!({"major": "1", "minor": "33", "gitVersion": "v1.33.0-fake", "platform": "linux/amd64"}),
        ),
        ["api"] => {
            drop(state);
            api.state().discoveries += 1;
            json_response(json!({"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": api.addr.to_string()}]}))
        }
        ["apis"] => {
            let mut groups: Vec<(String, Vec<String>)> = Vec::new();
            for r in (state.resources.iter()).filter(|r| {
                !r.group.is_empty() && !state.hidden.contains(&(r.group.clone(), r.plural.clone()))
            }) {
                match groups.iter_mut().find(|(g, _)| *g == r.group) {
                    Some((_, versions)) if !versions.contains(&r.version) => {
                        versions.push(r.version.clone())
                    }
                    Some(_) => {}
                    None => groups.push((r.group.clone(), vec![r.version.clone()])),
                }
            }
            let groups: Vec<Value> = groups.iter().map(|(g, v)| group_doc(g, v)).collect();
            json_response(json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}))
        }
        ["apis", group] => {
            let versions: Vec<String> = state.resources.iter().filter(|r| r.group == *group).fold(
                Vec::new(),
                |mut v, r| {
                    if !v.contains(&r.version) {
                        v.push(r.version.clone());
                    }
                    v
                },
            );
            if versions.is_empty() {
                return status(
                    404,
                    "NotFound",
                    "the server could not find the requested resource",
                );
            }
            let mut doc = group_doc(group, &versions);
            doc["apiVersion"] = json!("v1");
            json_response(doc)
        }
        ["api", version] => resource_list(&state, "", version),
        ["apis", group, version] => resource_list(&state, group, version),
        ["api", version, plural] => {
            drop(state);
            objects(&api, "", version, None, plural, &query)
        }
        ["api", version, "namespaces", ns, plural] => {
            drop(state);
            objects(&api, "", version, Some(ns), plural, &query)
        }
        ["apis", group, version, plural] => {
            drop(state);
            objects(&api, group, version, None, plural, &query)
        }
        ["apis", group, version, "namespaces", ns, plural] => {
            drop(state);
            objects(&api, group, version, Some(ns), plural, &query)
        }
        _ => status(
            404,
            "NotFound",
            "the server could not find the requested resource",
        ),
    }
}

/// `POST .../namespaces/{ns}/events` (409 AlreadyExists for a name that exists), `GET`
/// and merge `PATCH` of `.../events/{name}`, as the Events API answers them.
async fn events(api: &FakeApi, ns: &str, name: Option<&str>, request: Request) -> Response {
    let method = request.method().clone();
    let body = axum::body::to_bytes(request.into_body(), usize::MAX)
        .await
        .unwrap_or_default();
    let mut state = api.state();
    if method != axum::http::Method::GET {
        state.event_attempts += 1;
        if let Some(code) = state.refuse_events {
            return status(
                code,
                "Forbidden",
                "events.events.k8s.io is forbidden (fake)",
            );
        }
    }
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    match (method.as_str(), name) {
        ("POST", None) => {
            let Some(name) = body.pointer("/metadata/name").and_then(Value::as_str) else {
                return status(422, "Invalid", "metadata.name: Required value");
            };
            let key = (ns.to_string(), name.to_string());
            if state.events.contains_key(&key) {
                return status(
                    409,
                    "AlreadyExists",
                    &format!("events.events.k8s.io \"{name}\" already exists"),
                );
            }
            let mut event = body.clone();
            event["metadata"]["namespace"] = json!(ns);
            state.events.insert(key, event.clone());
            state.event_writes.push(("create", event.clone()));
            (StatusCode::CREATED, json_response(event)).into_response()
        }
        ("GET", Some(name)) => match state.events.get(&(ns.to_string(), name.to_string())) {
            Some(event) => json_response(event.clone()),
            None => status(404, "NotFound", "events.events.k8s.io not found"),
        },
        ("PATCH", Some(name)) => {
            let Some(event) = state.events.get_mut(&(ns.to_string(), name.to_string())) else {
                return status(404, "NotFound", "events.events.k8s.io not found");
            };
            merge_patch(event, &body);
            let event = event.clone();
            state.event_writes.push(("patch", event.clone()));
            json_response(event)
        }
        _ => status(405, "MethodNotAllowed", "not served by the fake API"),
    }
}

/// A JSON merge patch (RFC 7386 §2): objects merge, `null` removes, the rest replaces.
fn merge_patch(target: &mut Value, patch: &Value) {
    let Some(patch) = patch.as_object() else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    if let Some(target) = target.as_object_mut() {
        for (field, value) in patch {
            if value.is_null() {
                target.remove(field);
            } else {
                merge_patch(target.entry(field.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

fn group_doc(group: &str, versions: &[String]) -> Value {
    let versions: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    json!({"kind": "APIGroup", "name": group, "versions": versions, "preferredVersion": versions[0]})
}

fn resource_list(state: &Inner, group: &str, version: &str) -> Response {
    let resources: Vec<Value> = state
        .resources
        .iter()
        .filter(|r| r.group == group && r.version == version)
        .filter(|r| !state.hidden.contains(&(r.group.clone(), r.plural.clone())))
        .map(|r| json!({"name": r.plural, "singularName": r.kind.to_lowercase(), "namespaced": r.namespaced,
            "kind": r.kind, "verbs": ["get", "list", "watch"]}))
        .collect();
    if resources.is_empty() && !group.is_empty() {
        return status(
            404,
            "NotFound",
            "the server could not find the requested resource",
        );
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    json_response(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}),
    )
}

fn objects(
    api: &FakeApi,
    group: &str,
    version: &str,
    namespace: Option<&str>,
    plural: &str,
    query: &HashMap<String, String>,
) -> Response {
    let mut state = api.state();
    let Some(def) = state
        .resources
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
        .cloned()
    else {
        return status(
            404,
            "NotFound",
            "the server could not find the requested resource",
        );
    };
    let api_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    let watch = query.get("watch").is_some_and(|w| w == "true" || w == "1");
    if state
        .forbidden
        .contains(&(group.to_string(), plural.to_string()))
    {
        let verb = if watch { "watch" } else { "list" };
        return status(
            403,
            "Forbidden",
            &format!(
                "{plural}.{group} is forbidden: User \"system:serviceaccount:dns:k8s-gateway\" cannot {verb} resource \"{plural}\" in API group \"{group}\" at the cluster scope"
            ),
        );
    }
    let selector = query.get("labelSelector").cloned();
    if watch {
        *state.watches.entry(plural.into()).or_default() += 1;
        let from: u64 = query
            .get("resourceVersion")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let (tx, rx) = mpsc::unbounded_channel();
        if from != 0 && from < state.expired_before {
            let _ = tx.send(Line::Event(gone(from, state.resource_version).to_string()));
            let _ = tx.send(Line::End);
        } else {
            for (rv, g, p, kind, object) in &state.history {
                if *rv > from
                    && g == group
                    && p == plural
                    && in_scope(object, namespace, selector.as_deref())
                {
                    let line = json!({"type": kind, "object": versioned(object, &api_version)});
                    let _ = tx.send(Line::Event(line.to_string()));
                }
            }
            state.watchers.push(Watcher {
                group: group.into(),
                plural: plural.into(),
                namespace: namespace.map(str::to_owned),
                selector,
                bookmarks: query
                    .get("allowWatchBookmarks")
                    .is_some_and(|b| b == "true"),
                api_version,
                tx: tx.clone(),
            });
        }
        if let Some(timeout) = query
            .get("timeoutSeconds")
            .and_then(|t| t.parse::<u64>().ok())
        {
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(timeout)).await;
                let _ = tx.send(Line::End);
            });
        }
        let delivered = api.delivered.clone();
        // The state is the channel and a line taken from it that must wait for the next
        // chunk (an end after events).
        let stream = futures::stream::unfold((rx, None), move |(mut rx, held)| {
            let delivered = delivered.clone();
            async move {
                let line = match held {
                    Some(line) => Some(line),
                    None => rx.recv().await,
                };
                match line {
                    Some(Line::Event(text)) => {
                        // Events already queued go out in one chunk, as a busy API server
                        // writes them: 1,000 changes a second are not 1,000 writes.
                        let mut chunk = text + "\n";
                        let mut events = 1;
                        let mut held = None;
                        while chunk.len() < CHUNK {
                            match rx.try_recv() {
                                Ok(Line::Event(text)) => {
                                    chunk.push_str(&text);
                                    chunk.push('\n');
                                    events += 1;
                                }
                                Ok(other) => {
                                    held = Some(other);
                                    break;
                                }
                                Err(_) => break,
                            }
                        }
                        delivered.fetch_add(events, Ordering::Relaxed);
                        let chunk = Ok::<Bytes, std::io::Error>(Bytes::from(chunk));
                        Some((chunk, (rx, held)))
                    }
                    Some(Line::Drop) => Some((Err(std::io::Error::other("dropped")), (rx, None))),
                    Some(Line::End) | None => None,
                }
            }
        });
        return (
            [(header::CONTENT_TYPE, "application/json")],
            Body::from_stream(stream),
        )
            .into_response();
    }

    *state.lists.entry(plural.into()).or_default() += 1;
    let failing = |ns: Option<&str>| {
        let key = (group.to_string(), plural.to_string(), ns.map(str::to_owned));
        state.failing_lists.contains(&key)
    };
    if failing(None) || namespace.is_some_and(|ns| failing(Some(ns))) {
        return status(
            500,
            "InternalError",
            &format!(
                "Internal error occurred: conversion webhook for {plural}.{group} failed: Post \"https://webhook.example.svc:443/convert\": context deadline exceeded"
            ),
        );
    }
    // Only the page asked for is read and copied: a list of 100,000 objects comes in
    // 200 pages, and each page starts where the last ended (its continue token is the
    // last key), so listing stays linear in the number of objects.
    let after = query
        .get("continue")
        .and_then(|c| c.split_once('/'))
        .map(|(ns, name)| (ns.to_string(), name.to_string()));
    let limit: usize = query
        .get("limit")
        .and_then(|l| l.parse().ok())
        .filter(|l| *l > 0)
        .unwrap_or(usize::MAX);
    let kind_objects = state.objects.get(&(group.to_string(), plural.to_string()));
    let mut page: Vec<(&(String, String), &Value)> = kind_objects
        .into_iter()
        .flat_map(|o| match &after {
            Some(key) => o.range((Bound::Excluded(key.clone()), Bound::Unbounded)),
            None => o.range::<(String, String), _>(..),
        })
        .filter(|(_, v)| in_scope(v, namespace, selector.as_deref()))
        .take(limit.saturating_add(1))
        .collect();
    let mut metadata = json!({"resourceVersion": state.resource_version.to_string()});
    if page.len() > limit {
        page.truncate(limit);
        if let Some(((ns, name), _)) = page.last() {
            metadata["continue"] = json!(format!("{ns}/{name}"));
        }
    }
    let items: Vec<Value> = page
        .into_iter()
        .map(|(_, v)| versioned(v, &api_version))
        .collect();
    json_response(
        json!({"kind": format!("{}List", def.kind), "apiVersion": api_version,
        "metadata": metadata, "items": items}),
    )
}
