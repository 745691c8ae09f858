//! The folder source: Kubernetes objects read from YAML/JSON files, reloaded on change.
//!
//! Reads what `kubectl get -A -o yaml` prints (multi-document files, `kind: List`),
//! status included. A file, document or object that cannot be read is reported with its
//! file and skipped; everything else still serves.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::Ingress;

use super::dnsendpoint::DnsEndpoint;
use super::gateway_api::{Gateway, GrpcRoute, HttpRoute, TlsRoute};
use super::istio::{GATEWAY_KIND, IstioGateway, VirtualService};
use super::slim::Slim;
use super::{Objects, Rebuilder, object_ref};
use crate::metrics::ZoneMetrics;
use crate::zone::ObjectRef;

/// How long to wait for more file events before reloading: an editor or `kubectl` writes
/// several files, a ConfigMap update swaps a symlink; one reload covers them all.
const SETTLE: Duration = Duration::from_millis(150);

/// Why the manifests source could not run at all (a bad file is only a warning).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("--manifests {path}: {source}")]
    Unreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot watch {path} for changes: {source}")]
    WatchFailed {
        path: PathBuf,
        #[source]
        source: notify::Error,
    },
}

/// A problem with one file or document, reported and skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    pub file: PathBuf,
    pub message: String,
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.file.display(), self.message)
    }
}

/// Checks that every path exists and can be read, before anything starts.
pub fn check_paths(paths: &[PathBuf]) -> Result<(), Error> {
    for path in paths {
        let unreadable = |source| Error::Unreadable {
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

/// Reads every object under `paths`. Later files win when two define the same object.
pub fn load(paths: &[PathBuf]) -> (Objects, Vec<LoadError>) {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        collect_files(path, true, &mut files, &mut errors);
    }
    let mut loader = Loader::default();
    for file in &files {
        match std::fs::read_to_string(file) {
            Ok(text) => loader.read_text(file, &text),
            Err(e) => loader.errors.push(LoadError {
                file: file.clone(),
                message: format!("cannot read: {e}"),
            }),
        }
    }
    errors.append(&mut loader.errors);
    (loader.finish(), errors)
}

/// Lists the manifest files under `path`, sorted. Hidden entries are skipped: a mounted
/// ConfigMap keeps each file twice, under `..data/` and as a link beside it.
fn collect_files(path: &Path, top: bool, files: &mut Vec<PathBuf>, errors: &mut Vec<LoadError>) {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = match std::fs::read_dir(path) {
            Ok(dir) => dir.filter_map(|e| e.ok().map(|e| e.path())).collect(),
            Err(e) => {
                errors.push(LoadError {
                    file: path.to_path_buf(),
                    message: format!("cannot list: {e}"),
                });
                return;
            }
        };
        entries.sort();
        for entry in entries {
            let hidden = entry
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if !hidden {
                collect_files(&entry, false, files, errors);
            }
        }
    } else if top || is_manifest(path) {
        files.push(path.to_path_buf());
    }
}

fn is_manifest(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    )
}

/// One decoded object of a kind that publishes names.
#[derive(Debug)]
enum Decoded {
    Service(Box<Service>),
    Ingress(Box<Ingress>),
    DnsEndpoint(Box<DnsEndpoint>),
    Gateway(Box<Gateway>),
    HttpRoute(Box<HttpRoute>),
    GrpcRoute(Box<GrpcRoute>),
    TlsRoute(Box<TlsRoute>),
    IstioGateway(Box<IstioGateway>),
    VirtualService(Box<VirtualService>),
}

/// Accumulates objects by identity, so that a later definition replaces an earlier one.
#[derive(Default)]
struct Loader {
    objects: HashMap<ObjectRef, (usize, Decoded)>,
    locations: HashMap<ObjectRef, Arc<str>>,
    errors: Vec<LoadError>,
    order: usize,
}

impl Loader {
    fn read_text(&mut self, file: &Path, text: &str) {
        let documents = match serde_saphyr::from_multiple::<Value>(text) {
            Ok(documents) => documents,
            Err(whole) => {
                // One broken document must not hide the good ones beside it.
                let parts = split_documents(text);
                if parts.len() <= 1 {
                    self.error(
                        file,
                        format!("not valid YAML or JSON: {}", first_line(&whole.to_string())),
                    );
                    return;
                }
                let mut documents = Vec::new();
                for (index, part) in parts.iter().enumerate() {
                    match serde_saphyr::from_multiple::<Value>(part) {
                        Ok(mut docs) => documents.append(&mut docs),
                        Err(e) => self.error(
                            file,
                            format!(
                                "document {}: not valid YAML: {}",
                                index + 1,
                                first_line(&e.to_string())
                            ),
                        ),
                    }
                }
                documents
            }
        };
        for (index, document) in documents.into_iter().enumerate() {
            self.read_document(file, index + 1, document);
        }
    }

    fn read_document(&mut self, file: &Path, index: usize, document: Value) {
        if document.is_null() {
            return;
        }
        let Some(kind) = document
            .get("kind")
            .and_then(Value::as_str)
            .map(str::to_owned)
        else {
            self.error(
                file,
                format!("document {index} is not a Kubernetes object: it has no kind"),
            );
            return;
        };
        let api_version = document
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if kind == "List" || kind.ends_with("List") && document.get("items").is_some() {
            let items = match document {
                Value::Object(mut map) => map.remove("items"),
                _ => None,
            };
            for item in items
                .and_then(|i| {
                    if let Value::Array(a) = i {
                        Some(a)
                    } else {
                        None
                    }
                })
                .unwrap_or_default()
            {
                self.read_document(file, index, item);
            }
            return;
        }
        let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
        // Every served version of a kind reads into the same tolerant type.
        match (group, kind.as_str()) {
            ("", "Service") => self.add(file, index, "Service", document, |o| {
                Decoded::Service(Box::new(o))
            }),
            ("networking.k8s.io", "Ingress") => self.add(file, index, "Ingress", document, |o| {
                Decoded::Ingress(Box::new(o))
            }),
            ("externaldns.k8s.io", "DNSEndpoint") => {
                self.add(file, index, "DNSEndpoint", document, |o| {
                    Decoded::DnsEndpoint(Box::new(o))
                })
            }
            ("gateway.networking.k8s.io", "Gateway") => {
                self.add(file, index, "Gateway", document, |o| {
                    Decoded::Gateway(Box::new(o))
                })
            }
            ("gateway.networking.k8s.io", "HTTPRoute") => {
                self.add(file, index, "HTTPRoute", document, |o| {
                    Decoded::HttpRoute(Box::new(o))
                })
            }
            ("gateway.networking.k8s.io", "GRPCRoute") => {
                self.add(file, index, "GRPCRoute", document, |o| {
                    Decoded::GrpcRoute(Box::new(o))
                })
            }
            ("gateway.networking.k8s.io", "TLSRoute") => {
                self.add(file, index, "TLSRoute", document, |o| {
                    Decoded::TlsRoute(Box::new(o))
                })
            }
            ("networking.istio.io", "Gateway") => {
                self.add(file, index, GATEWAY_KIND, document, |o| {
                    Decoded::IstioGateway(Box::new(o))
                })
            }
            ("networking.istio.io", "VirtualService") => {
                self.add(file, index, "VirtualService", document, |o| {
                    Decoded::VirtualService(Box::new(o))
                })
            }
            _ => {
                tracing::debug!(file = %file.display(), kind, "ignored: not a kind that publishes names")
            }
        }
    }

    /// Decodes and keeps one object of a known kind.
    fn add<T>(
        &mut self,
        file: &Path,
        index: usize,
        kind: &'static str,
        document: Value,
        wrap: fn(T) -> Decoded,
    ) where
        T: serde::de::DeserializeOwned + kube::Resource + Slim,
    {
        let Some(object) = self.decode::<T>(file, index, kind, document) else {
            return;
        };
        let mut object = object.slim();
        let meta = object.meta_mut();
        meta.namespace.get_or_insert_with(|| "default".into());
        let key = object_ref(kind, object.meta());
        self.locations
            .insert(key.clone(), format!("file {}", file.display()).into());
        self.order += 1;
        self.objects.insert(key, (self.order, wrap(object)));
    }

    /// Decodes one object, naming the field when its shape is wrong.
    fn decode<T: serde::de::DeserializeOwned>(
        &mut self,
        file: &Path,
        index: usize,
        kind: &str,
        document: Value,
    ) -> Option<T> {
        let name = document
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("(no name)")
            .to_owned();
        let namespace = document
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("default")
            .to_owned();
        match serde_path_to_error::deserialize::<_, T>(document) {
            Ok(object) if name != "(no name)" => Some(object),
            Ok(_) => {
                self.error(
                    file,
                    format!("document {index}: {kind} has no metadata.name: skipped"),
                );
                None
            }
            Err(e) => {
                let path = e.path().to_string();
                self.error(
                    file,
                    format!(
                        "{kind} {namespace}/{name} (document {index}): field {path}: {}: skipped",
                        e.inner()
                    ),
                );
                None
            }
        }
    }

    fn error(&mut self, file: &Path, message: String) {
        self.errors.push(LoadError {
            file: file.to_path_buf(),
            message,
        });
    }

    fn finish(self) -> Objects {
        let mut decoded: Vec<(usize, Decoded)> = self.objects.into_values().collect();
        decoded.sort_by_key(|(order, _)| *order);
        let mut objects = Objects {
            locations: self.locations,
            ..Objects::default()
        };
        for (_, object) in decoded {
            match object {
                Decoded::Service(o) => objects.services.push(*o),
                Decoded::Ingress(o) => objects.ingresses.push(*o),
                Decoded::DnsEndpoint(o) => objects.dns_endpoints.push(*o),
                Decoded::Gateway(o) => objects.gateways.push(*o),
                Decoded::HttpRoute(o) => objects.http_routes.push(*o),
                Decoded::GrpcRoute(o) => objects.grpc_routes.push(*o),
                Decoded::TlsRoute(o) => objects.tls_routes.push(*o),
                Decoded::IstioGateway(o) => objects.istio_gateways.push(*o),
                Decoded::VirtualService(o) => objects.virtual_services.push(*o),
            }
        }
        objects
    }
}

/// Splits a YAML stream on its `---` document markers.
fn split_documents(text: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    for line in text.lines() {
        if line.starts_with("---") && line[3..].trim().is_empty() {
            parts.push(String::new());
        } else if let Some(last) = parts.last_mut() {
            last.push_str(line);
            last.push('\n');
        }
    }
    parts.retain(|p| !p.trim().is_empty());
    parts
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}

/// Loads, reports problems, and rebuilds the zone.
pub fn reload(paths: &[PathBuf], rebuilder: &Rebuilder, metrics: &ZoneMetrics) {
    let (objects, errors) = load(paths);
    for error in &errors {
        metrics.reload_errors.inc();
        tracing::warn!("{error}");
    }
    rebuilder.rebuild(&objects);
}

/// File-change notifications for the manifest paths. Created before the first load, so
/// that a change made while loading is not missed.
pub struct ManifestWatch {
    paths: Vec<PathBuf>,
    events: mpsc::Receiver<()>,
    /// Dropping the watcher stops the notifications: it lives as long as the loop.
    _watcher: notify::RecommendedWatcher,
}

impl ManifestWatch {
    /// Starts watching `paths` (folders recursively; a file through its folder, so that
    /// an editor's write-to-temporary-then-rename is seen too).
    pub fn new(paths: &[PathBuf]) -> Result<Self, Error> {
        let (tx, events) = mpsc::channel::<()>(1);
        let watched: Vec<PathBuf> = paths
            .iter()
            .map(|p| p.canonicalize().unwrap_or_else(|_| p.clone()))
            .collect();
        let filter = watched.clone();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                let relevant = match &event {
                    // NB: our own reads raise access (and atime) events; reacting to them
                    // would reload forever.
                    Ok(event)
                        if matches!(
                            event.kind,
                            notify::EventKind::Access(_)
                                | notify::EventKind::Modify(notify::event::ModifyKind::Metadata(_))
                        ) =>
                    {
                        false
                    }
                    Ok(event) => event
                        .paths
                        .iter()
                        .any(|p| filter.iter().any(|w| p.starts_with(w) || w.starts_with(p))),
                    Err(_) => true,
                };
                if relevant {
                    let _ = tx.try_send(()); // full means a reload is already due
                }
            })
            .map_err(|source| Error::WatchFailed {
                path: paths.first().cloned().unwrap_or_default(),
                source,
            })?;
        for path in &watched {
            let (target, mode) = if path.is_dir() {
                (path.clone(), RecursiveMode::Recursive)
            } else {
                (
                    path.parent()
                        .map_or_else(|| path.clone(), Path::to_path_buf),
                    RecursiveMode::NonRecursive,
                )
            };
            watcher
                .watch(&target, mode)
                .map_err(|source| Error::WatchFailed {
                    path: target.clone(),
                    source,
                })?;
        }
        Ok(ManifestWatch {
            paths: paths.to_vec(),
            events,
            _watcher: watcher,
        })
    }

    /// Reloads the zone whenever a file under the paths changes, until `shutdown`.
    pub async fn run(
        mut self,
        rebuilder: Arc<Rebuilder>,
        metrics: ZoneMetrics,
        shutdown: CancellationToken,
    ) -> Result<(), Error> {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                event = self.events.recv() => if event.is_none() { return Ok(()) },
            }
            tokio::time::sleep(SETTLE).await;
            while self.events.try_recv().is_ok() {}
            let paths = self.paths.clone();
            let rebuilder = rebuilder.clone();
            let metrics = metrics.clone();
            // Reading files blocks: keep it off the threads that answer queries.
            let _ = tokio::task::spawn_blocking(move || reload(&paths, &rebuilder, &metrics)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(name: &str, text: &str) -> (Objects, Vec<LoadError>) {
        let mut loader = Loader::default();
        loader.read_text(Path::new(name), text);
        let errors = std::mem::take(&mut loader.errors);
        (loader.finish(), errors)
    }

    #[test]
    fn reads_multi_document_files_and_lists() {
        let text = r#"
apiVersion: v1
kind: Service
metadata: {name: a, namespace: apps}
spec: {type: LoadBalancer}
---
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Service
  metadata: {name: b}
  spec: {type: LoadBalancer}
- apiVersion: apps/v1
  kind: Deployment
  metadata: {name: c}
"#;
        let (objects, errors) = load_text("a.yaml", text);
        assert_eq!(errors, Vec::new());
        let names: Vec<_> = objects
            .services
            .iter()
            .map(|s| object_ref("Service", &s.metadata).to_string())
            .collect();
        assert_eq!(names, ["Service apps/a", "Service default/b"]);
    }

    #[test]
    fn a_broken_document_is_reported_and_the_others_still_load() {
        let text = "apiVersion: v1\nkind: Service\nmetadata: {name: good}\n---\nkind: [unclosed\n---\nfoo: bar\n";
        let (objects, errors) = load_text("mixed.yaml", text);
        assert_eq!(objects.services.len(), 1);
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].message.contains("document 2"), "{}", errors[0]);
        assert!(errors[1].message.contains("no kind"), "{}", errors[1]);
    }

    #[test]
    fn a_malformed_object_names_itself_and_the_field() {
        let text = "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: apps}\nspec: {ports: [{port: eighty}]}\n";
        let (objects, errors) = load_text("bad.yaml", text);
        assert!(objects.services.is_empty());
        let message = errors[0].to_string();
        assert!(
            message.starts_with("bad.yaml: Service apps/web"),
            "{message}"
        );
        assert!(message.contains("spec.ports[0].port"), "{message}");
    }

    #[test]
    fn a_later_definition_replaces_an_earlier_one() {
        let text = "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {type: ClusterIP}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {type: LoadBalancer}\n";
        let (objects, _) = load_text("dup.yaml", text);
        assert_eq!(objects.services.len(), 1);
        assert_eq!(
            objects.services[0].spec.as_ref().unwrap().type_.as_deref(),
            Some("LoadBalancer")
        );
    }

    #[test]
    fn not_yaml_at_all_is_one_error_for_the_file() {
        let (objects, errors) = load_text("junk.yaml", "{{{ not yaml");
        assert!(objects.services.is_empty());
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].message.starts_with("not valid YAML"),
            "{}",
            errors[0]
        );
    }
}
