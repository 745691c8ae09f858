//! The folder feeder: Kubernetes objects read from YAML/JSON files, reloaded on change.
//!
//! Reads what `kubectl get -A -o yaml` prints (multi-document files, `kind: List`),
//! status included. A file, document or object that cannot be read is reported with its
//! file and skipped; everything else still serves. The `--zone-file`s are read and
//! watched with the manifests ([`zone_file`] reads them), into the same object set.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::hash::BuildHasher;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use notify::{RecursiveMode, Watcher};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::block_yaml;
use super::feed::Feed;
use super::kind::{self, Kind};
use super::objects::{ObjectSet, Stored};
use super::zone_file::{self, ZoneFiles};
use crate::metrics::ZoneMetrics;

/// Why the manifests cannot be watched (a bad file is only a warning).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot watch {path} for changes: {source}")]
    WatchFailed {
        path: PathBuf,
        #[source]
        source: notify::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

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

/// The largest manifest file read, in bytes. Bigger files are skipped with a warning
/// naming them: one stray dump must not take the process's memory with it. 256 MiB is
/// well above what `kubectl get services -A -o yaml` prints for 100,000 Services (about
/// 94 MB), which must still load.
pub const MAX_FILE_BYTES: u64 = 256 * 1024 * 1024;

/// Reads every object under `paths`. Later files win when two define the same object.
pub fn load(paths: &[PathBuf]) -> (ObjectSet, Vec<LoadError>) {
    load_all(paths, &ZoneFiles::default())
}

/// [`load`], and the records of the zone files (see [`zone_file`]).
pub fn load_all(paths: &[PathBuf], zone_files: &ZoneFiles) -> (ObjectSet, Vec<LoadError>) {
    let (objects, errors, _) = load_with(paths, zone_files, SpanCache::default());
    (objects, errors)
}

/// [`load_all`], reusing what the spans of `previous` decoded to; returns the cache of
/// this read for the next.
fn load_with(
    paths: &[PathBuf],
    zone_files: &ZoneFiles,
    previous: SpanCache,
) -> (ObjectSet, Vec<LoadError>, SpanCache) {
    let mut walk = Walk::default();
    for path in paths {
        walk.collect(path, true);
    }
    let mut loader = Loader {
        errors: walk.errors,
        previous,
        ..Loader::default()
    };
    // One file at a time, each closed before the next is opened: a folder of tens of
    // thousands of files holds one descriptor and one file's text at once.
    for file in &walk.files {
        match read_file(file) {
            Ok(text) => {
                loader.prefetch(file, &text);
                loader.read_text(file, &text);
                // What the prefetch noted is about this text only, which is dropped now.
                loader.listed.clear();
            }
            Err(message) => loader.error(file, message),
        }
    }
    let (records, errors) = zone_file::load(zone_files);
    loader.read.extend(records);
    loader.errors.extend(errors);
    (
        ObjectSet::from_read(loader.read),
        loader.errors,
        loader.next,
    )
}

/// Where a slice of a file's text starts, and its length: which span it is, while the
/// text is read (the read only looks these up within the text they were taken from).
type TextId = (usize, usize);

fn text_id(span: &str) -> TextId {
    (span.as_ptr() as usize, span.len())
}

/// At most this many threads decode a file's new spans at once.
const MAX_READERS: usize = 8;
/// Fewer new spans than twice this are decoded on the calling thread.
const MIN_SPANS_PER_READER: usize = 256;

/// Reads the manifest paths again on every change, decoding only the documents and list
/// items whose text changed since the last read: with 100,000 Services in one file, a
/// change to one of them decodes one object again, not 100,000.
#[derive(Clone)]
pub struct Reader {
    paths: Vec<PathBuf>,
    zone_files: ZoneFiles,
    cache: Arc<Mutex<SpanCache>>,
}

impl Reader {
    pub fn new(paths: &[PathBuf], zone_files: ZoneFiles) -> Self {
        Reader {
            paths: paths.to_vec(),
            zone_files,
            cache: Arc::default(),
        }
    }

    /// Reads every object, warning about (and counting) each problem. Blocks.
    pub fn load_reporting(&self, metrics: &ZoneMetrics) -> ObjectSet {
        let started = std::time::Instant::now();
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        let (objects, errors, next) =
            load_with(&self.paths, &self.zone_files, std::mem::take(&mut *cache));
        *cache = next;
        tracing::debug!(
            spans = cache.spans.len(),
            ms = started.elapsed().as_millis(),
            "manifests read"
        );
        report(&errors, metrics);
        objects
    }
}

/// What each span of text (a document, or an item of a `kubectl` list) that read
/// without a problem decoded to, by a hash of its file's path and its text. Only the
/// spans of the last read are kept, so it never outgrows the files.
#[derive(Default)]
struct SpanCache {
    spans: HashMap<SpanKey, Decoded, foldhash::fast::RandomState>,
}

/// A span's file and text, hashed, with the text's length as a second check.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct SpanKey(u64, usize);

impl SpanKey {
    /// foldhash rather than the standard SipHash: every reload hashes every byte of the
    /// files (86 MB for 100,000 Services), and nothing here is chosen by an attacker
    /// who could aim at collisions (the files are the operator's own).
    fn of(file: &Path, text: &str) -> Self {
        let hash = foldhash::quality::FixedState::with_seed(0x6b38_735f_6777);
        SpanKey(hash.hash_one((file, text)), text.len())
    }
}

/// What one span decoded to: its objects in order, and how many documents it held.
#[derive(Clone, Default)]
struct Decoded {
    objects: Vec<(&'static dyn Kind, Stored)>,
    documents: usize,
}

/// Reads the objects in the text of one file, as [`load`] does for each file it finds:
/// for tests and fuzzing, which have text rather than files.
pub fn read_text(file: &Path, text: &str) -> (ObjectSet, Vec<LoadError>) {
    let mut loader = Loader::default();
    loader.read_text(file, text);
    (ObjectSet::from_read(loader.read), loader.errors)
}

/// Reads one manifest file whole, refusing what is not a regular file or is over
/// [`MAX_FILE_BYTES`]. The error says why, for a warning that names the file.
pub(super) fn read_file(path: &Path) -> Result<String, String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    // Non-blocking, so that opening a FIFO (named pipe) returns at once instead of
    // waiting forever for a writer; regular files read the same either way.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| format!("cannot read: {e}"))?;
    // The type and size of what was opened, not of what the name points to now: the
    // file may be replaced between the two.
    let meta = file.metadata().map_err(|e| format!("cannot read: {e}"))?;
    if !meta.is_file() {
        return Err(
            "not a regular file (a FIFO, socket or device): skipped, only files are read".into(),
        );
    }
    let too_big = |size: u64| {
        format!(
            "{size} bytes, over the limit of {MAX_FILE_BYTES} bytes (256 MiB) for a manifest file: skipped"
        )
    };
    if meta.len() > MAX_FILE_BYTES {
        return Err(too_big(meta.len()));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    // Never more than the limit, even when the file grows while it is read.
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read: {e}"))?;
    let read = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    if read > MAX_FILE_BYTES {
        return Err(too_big(read));
    }
    if read < meta.len() {
        // Truncated while read (a writer that truncates, then writes). Its change
        // notification brings another reload, which reads it whole.
        return Err(format!(
            "changed while being read ({read} of {} bytes): skipped until it is read whole",
            meta.len()
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "not UTF-8 text (invalid byte at offset {}): skipped",
            e.utf8_error().valid_up_to()
        )
    })
}

/// The manifest files under some paths, sorted per folder, and what could not be listed.
#[derive(Default)]
struct Walk {
    files: Vec<PathBuf>,
    errors: Vec<LoadError>,
    /// Folders already listed, by device and inode: a symbolic link back to a parent
    /// (a loop) or a second link to the same folder is listed once.
    seen: HashSet<(u64, u64)>,
}

impl Walk {
    /// Lists the manifest files under `path`. Hidden entries are skipped: a mounted
    /// ConfigMap keeps each file twice, under `..data/` and as a link beside it.
    fn collect(&mut self, path: &Path, top: bool) {
        use std::os::unix::fs::MetadataExt;
        // Follows links; a link in a loop with itself, or to nothing, fails here.
        let meta = match std::fs::metadata(path) {
            Ok(meta) => meta,
            Err(e) if top || is_manifest(path) => {
                self.error(path, format!("cannot read: {e}"));
                return;
            }
            Err(_) => return,
        };
        if meta.is_dir() {
            if !self.seen.insert((meta.dev(), meta.ino())) {
                if top {
                    return; // the same --manifests twice: nothing to say
                }
                let message =
                    "a folder already read (a symbolic link loop, or a second link to it): skipped";
                self.error(path, message.into());
                return;
            }
            let mut entries: Vec<PathBuf> = match std::fs::read_dir(path) {
                Ok(dir) => dir.filter_map(|e| e.ok().map(|e| e.path())).collect(),
                Err(e) => {
                    self.error(path, format!("cannot list: {e}"));
                    return;
                }
            };
            entries.sort();
            for entry in entries {
                let hidden = entry
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'));
                if !hidden {
                    self.collect(&entry, false);
                }
            }
        } else if top || is_manifest(path) {
            self.files.push(path.to_path_buf());
        }
    }

    fn error(&mut self, file: &Path, message: String) {
        self.errors.push(LoadError {
            file: file.to_path_buf(),
            message,
        });
    }
}

fn is_manifest(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    )
}

/// How a path is watched: a folder as what it links to; a file as its folder's real
/// path and its own name. A file of a mounted ConfigMap links into a `..<timestamp>`
/// folder that the next update deletes: watching where it leads would see one change.
fn watched_path(path: &Path) -> PathBuf {
    if path.is_dir() {
        return path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    }
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => {
            let parent = if parent.as_os_str().is_empty() {
                Path::new(".")
            } else {
                parent
            };
            parent
                .canonicalize()
                .map_or_else(|_| path.to_path_buf(), |p| p.join(name))
        }
        _ => path.to_path_buf(),
    }
}

/// Whether a change to `changed` can change what the watched paths hold. Editors and
/// `kubectl`-style writers leave hidden and temporary files beside the manifests
/// (`.apps.yaml.swp`, `apps.yaml~`, `.tmp-…`); reloading for each would rebuild the
/// zone two or three times per save. A ConfigMap's update is the swap of its hidden
/// `..data` link, which does count.
fn concerns(changed: &Path, watched: &[(PathBuf, bool)]) -> bool {
    watched.iter().any(|(root, is_folder)| {
        if changed == root || root.starts_with(changed) {
            return true; // the path itself, or a folder above it
        }
        let folder = if *is_folder {
            root.as_path()
        } else {
            match root.parent() {
                Some(parent) => parent,
                None => return false,
            }
        };
        let Ok(inside) = changed.strip_prefix(folder) else {
            return false;
        };
        let swapped = changed.file_name() == Some(OsStr::new("..data"));
        if folder != root {
            // A file is watched through its folder: only it, or its ConfigMap's swap.
            return swapped && changed.parent() == Some(folder);
        }
        let folders = if swapped {
            inside.parent()
        } else {
            Some(inside)
        };
        let hidden = folders
            .into_iter()
            .flat_map(Path::components)
            .any(|c| c.as_os_str().to_string_lossy().starts_with('.'));
        if swapped {
            return !hidden;
        }
        let other_file = changed.extension().is_some() && !is_manifest(changed);
        !hidden && (!other_file || changed.is_dir())
    })
}

/// Accumulates objects by identity, so that a later definition replaces an earlier one.
#[derive(Default)]
struct Loader {
    /// Every object read, in order, and where: made into an [`ObjectSet`] at the end.
    read: Vec<(&'static dyn Kind, Stored, Option<Arc<str>>)>,
    errors: Vec<LoadError>,
    /// "file <path>" of the file being read, shared by its objects.
    location: Option<(PathBuf, Arc<str>)>,
    /// What the spans of the last read decoded to, and those of this read.
    previous: SpanCache,
    next: SpanCache,
    /// What the document and the list item being read decode to, for `next`.
    document: Option<Decoded>,
    item: Option<Decoded>,
    /// The `kubectl` list documents the prefetch split into items, by [`text_id`]: the
    /// items' keys and [`text_id`]s, so that the read does not split and hash a file of
    /// 100,000 items a second time.
    listed: HashMap<TextId, Vec<(SpanKey, TextId)>>,
    /// A prefetch reader: it only fills `next`, whose spans the read that follows keeps
    /// in `read` (keeping them here too would cost a second list of every object).
    decode_only: bool,
}

impl Loader {
    /// Reads a file document by document, each decoded and dropped before the next is
    /// parsed: a file of 100,000 Services never holds all their YAML trees at once. A
    /// broken document is reported and the others are read. Should the split on `---`
    /// lines have cut the stream wrongly (a marker followed by content), the whole
    /// stream is parsed at once instead.
    fn read_text(&mut self, file: &Path, text: &str) {
        let errors_before = self.errors.len();
        let parts = document_spans(text);
        let mut index = 0;
        let mut broken = false;
        for (part_index, part) in parts.iter().enumerate() {
            let span = SpanKey::of(file, part);
            if let Some(documents) = self.reuse(file, span) {
                index += documents;
                continue;
            }
            let errors_before_part = self.errors.len();
            self.document = Some(Decoded::default());
            match self.read_part(file, index, part) {
                Ok(documents) => {
                    index += documents;
                    self.remember(span, errors_before_part, documents);
                }
                Err(e) => {
                    self.document = None;
                    let message = if parts.len() == 1 {
                        format!("not valid YAML or JSON: {}", first_line(&e.to_string()))
                    } else {
                        format!(
                            "document {}: not valid YAML: {}",
                            part_index + 1,
                            first_line(&e.to_string())
                        )
                    };
                    broken = true;
                    self.error(file, message);
                }
            }
        }
        self.document = None;
        if broken
            && parts.len() > 1
            && let Ok(documents) = serde_saphyr::from_multiple::<Value>(text)
        {
            // The stream is valid as a whole: read it so (objects read above are the
            // same objects again, and replace themselves).
            self.errors.truncate(errors_before);
            for (index, document) in documents.into_iter().enumerate() {
                self.read_document(file, index + 1, document);
            }
        }
    }

    /// Reads a `kind: List` document written the way `kubectl get -o yaml` writes it one
    /// item at a time, each parsed, decoded and dropped before the next: a list of
    /// 100,000 Services never becomes one tree (which would also exceed the YAML
    /// parser's node budget). Returns false, having read nothing, when the document is
    /// not written that way or an item does not parse alone; the caller then parses the
    /// document whole.
    fn read_list_items(&mut self, file: &Path, index: usize, document: &str) -> bool {
        // The items and their keys as the prefetch found them, else found now.
        let items: Vec<(SpanKey, &str)> = match self.listed.remove(&text_id(document)) {
            Some(listed) => listed
                .into_iter()
                .map(|(key, (at, len))| {
                    let offset = at - document.as_ptr() as usize;
                    (key, &document[offset..offset + len])
                })
                .collect(),
            None => match list_item_spans(document) {
                Some(items) => items
                    .into_iter()
                    .map(|i| (SpanKey::of(file, i), i))
                    .collect(),
                None => return false,
            },
        };
        let errors_before = self.errors.len();
        let document_before = self.document.as_ref().map_or(0, |d| d.objects.len());
        for (span, item) in items {
            if self.reuse(file, span).is_some() {
                continue;
            }
            if !self.read_item(file, index, span, item) {
                // The whole document is parsed instead: the objects read so far are
                // read again (and replace themselves), their warnings with them.
                self.errors.truncate(errors_before);
                if let Some(document) = self.document.as_mut() {
                    document.objects.truncate(document_before);
                }
                return false;
            }
        }
        true
    }

    /// Reads one document span (after the `---` split): a `kubectl` list item by item,
    /// JSON, the block style kubectl writes directly, and everything else with the
    /// general parser, which also reports the errors. Returns how many documents it
    /// held.
    fn read_part(
        &mut self,
        file: &Path,
        index: usize,
        part: &str,
    ) -> Result<usize, serde_saphyr::Error> {
        if self.read_list_items(file, index + 1, part) || self.read_json(file, index + 1, part) {
            return Ok(1);
        }
        if let Some(document) = block_yaml::parse(part) {
            self.read_document(file, index + 1, document);
            return Ok(1);
        }
        let documents = serde_saphyr::from_multiple::<Value>(part)?;
        let count = documents.len();
        for (i, document) in documents.into_iter().enumerate() {
            self.read_document(file, index + 1 + i, document);
        }
        Ok(count)
    }

    /// Reads one item of a `kubectl` list: a one-element YAML sequence
    /// (`- apiVersion: ...`), decoded and dropped before the next is parsed. Returns
    /// false, having read nothing, when it does not parse alone.
    fn read_item(&mut self, file: &Path, index: usize, span: SpanKey, item: &str) -> bool {
        let parsed = match block_yaml::parse(item) {
            Some(Value::Array(values)) => Ok(values),
            _ => serde_saphyr::from_str::<Vec<Value>>(item),
        };
        let Ok(values) = parsed else {
            return false;
        };
        let errors_before = self.errors.len();
        self.item = Some(Decoded::default());
        for value in values {
            self.read_document(file, index, value);
        }
        if let Some(mut decoded) = self.item.take()
            && self.errors.len() == errors_before
        {
            decoded.objects.shrink_to_fit(); // kept until the next read: one object, mostly
            self.next.spans.insert(span, decoded);
        }
        true
    }

    /// Decodes the spans of `text` (documents, and the items of `kubectl` lists) that
    /// the last read did not have, on every CPU at once, into `previous`: the read that
    /// follows finds them there as if they were unchanged, and keeps them in order.
    /// Spans with a problem are left to that read, which reports them in order.
    fn prefetch(&mut self, file: &Path, text: &str) {
        let mut spans = Vec::new();
        for part in document_spans(text) {
            match list_item_spans(part) {
                Some(items) => {
                    let keyed: Vec<_> = items.iter().map(|i| (SpanKey::of(file, i), *i)).collect();
                    spans.extend(keyed.iter().map(|&(key, item)| (key, item, true)));
                    self.listed.insert(
                        text_id(part),
                        keyed
                            .iter()
                            .map(|(key, item)| (*key, text_id(item)))
                            .collect(),
                    );
                }
                None => spans.push((SpanKey::of(file, part), part, false)),
            }
        }
        let new: Vec<_> = spans
            .into_iter()
            .filter(|(key, _, _)| !self.previous.spans.contains_key(key))
            .collect();
        let readers = std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_READERS));
        if readers < 2 || new.len() < MIN_SPANS_PER_READER * 2 {
            return;
        }
        let chunk = new.len().div_ceil(readers);
        let decoded: Vec<SpanCache> = std::thread::scope(|scope| {
            let readers: Vec<_> = new
                .chunks(chunk)
                .map(|spans| {
                    scope.spawn(move || {
                        let mut reader = Loader {
                            decode_only: true,
                            ..Loader::default()
                        };
                        for &(key, span, item) in spans {
                            if item {
                                reader.read_item(file, 0, key, span);
                            } else {
                                let errors_before = reader.errors.len();
                                reader.document = Some(Decoded::default());
                                if let Ok(documents) = reader.read_part(file, 0, span) {
                                    reader.remember(key, errors_before, documents);
                                }
                                reader.document = None;
                            }
                        }
                        reader.next
                    })
                })
                .collect();
            readers.into_iter().filter_map(|r| r.join().ok()).collect()
        });
        for cache in decoded {
            self.previous.spans.extend(cache.spans);
        }
    }

    /// Reads a JSON document (`kubectl get -o json`) with the JSON parser, which has no
    /// node budget: a JSON list of 100,000 objects loads like its YAML twin. Returns
    /// false, having read nothing, when the text is not JSON (it may be YAML flow style).
    fn read_json(&mut self, file: &Path, index: usize, document: &str) -> bool {
        if !document.trim_start().starts_with('{') {
            return false;
        }
        let Ok(value) = serde_json::from_str::<Value>(document) else {
            return false;
        };
        self.read_document(file, index, value);
        true
    }

    fn read_document(&mut self, file: &Path, index: usize, document: Value) {
        if document.is_null() {
            return;
        }
        let Some(kind) = document.get("kind").and_then(Value::as_str) else {
            let message = format!("document {index} is not a Kubernetes object: it has no kind");
            self.error(file, message);
            return;
        };
        if kind == "List" || kind.ends_with("List") && document.get("items").is_some() {
            if let Value::Object(mut map) = document
                && let Some(Value::Array(items)) = map.remove("items")
            {
                for item in items {
                    self.read_document(file, index, item);
                }
            }
            return;
        }
        let api_version = document.get("apiVersion").and_then(Value::as_str);
        let group = api_version
            .and_then(|v| v.rsplit_once('/'))
            .map_or("", |(g, _)| g);
        // Every served version of a kind reads into the same tolerant type.
        match kind::find(group, kind) {
            Some(kind) => self.add(file, index, kind, document),
            None => {
                tracing::debug!(file = %file.display(), kind, "ignored: not a kind that publishes names");
            }
        }
    }

    /// Decodes and keeps one object of a known kind, naming the field when its shape
    /// is wrong.
    fn add(&mut self, file: &Path, index: usize, kind: &'static dyn Kind, mut document: Value) {
        let label = kind.label();
        let text = |pointer: &str| {
            document
                .pointer(pointer)
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let Some(name) = text("/metadata/name") else {
            let message = format!("document {index}: {label} has no metadata.name: skipped");
            self.error(file, message);
            return;
        };
        let namespace = text("/metadata/namespace").unwrap_or_else(|| "default".into());
        if let Some(meta) = document.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("namespace".into(), Value::String(namespace.clone()));
        }
        match kind.decode(document) {
            Ok(object) => self.keep(file, kind, object),
            Err(e) => {
                let message = format!(
                    "{label} {namespace}/{name} (document {index}): field {}: {}: skipped",
                    e.path(),
                    e.inner()
                );
                self.error(file, message);
            }
        }
    }

    /// Keeps one decoded object, and notes it in the spans being read.
    fn keep(&mut self, file: &Path, kind: &'static dyn Kind, object: Stored) {
        for decoded in [self.document.as_mut(), self.item.as_mut()]
            .into_iter()
            .flatten()
        {
            decoded.objects.push((kind, object.clone()));
        }
        if self.decode_only {
            return;
        }
        let location = self.location(file);
        self.read.push((kind, object, Some(location)));
    }

    /// Keeps again what a span unchanged since the last read decoded to; returns how
    /// many documents it held, or `None` when the span is new.
    fn reuse(&mut self, file: &Path, span: SpanKey) -> Option<usize> {
        let decoded = self.previous.spans.remove(&span)?;
        for (kind, object) in &decoded.objects {
            self.keep(file, *kind, object.clone());
        }
        let documents = decoded.documents;
        self.next.spans.insert(span, decoded);
        Some(documents)
    }

    /// Notes what the document span just read decoded to, unless it had a problem.
    fn remember(&mut self, span: SpanKey, errors_before: usize, documents: usize) {
        if let Some(mut decoded) = self.document.take()
            && self.errors.len() == errors_before
        {
            decoded.documents = documents;
            decoded.objects.shrink_to_fit();
            self.next.spans.insert(span, decoded);
        }
    }

    /// "file <path>", made once per file.
    fn location(&mut self, file: &Path) -> Arc<str> {
        match &self.location {
            Some((path, location)) if path == file => location.clone(),
            _ => {
                let location: Arc<str> = format!("file {}", file.display()).into();
                self.location = Some((file.to_path_buf(), location.clone()));
                location
            }
        }
    }

    fn error(&mut self, file: &Path, message: String) {
        self.errors.push(LoadError {
            file: file.to_path_buf(),
            message,
        });
    }
}

/// Splits a YAML stream on its `---` document markers, without copying; empty
/// documents are left out.
pub(super) fn document_spans(text: &str) -> Vec<&str> {
    let bytes = text.as_bytes();
    let mut spans = Vec::new();
    let mut start = 0;
    // Searched for rather than read line by line: every reload splits every file, and
    // 100,000 Services are two million lines.
    for at in memchr::memmem::find_iter(bytes, b"---") {
        if at < start || (at > 0 && bytes[at - 1] != b'\n') {
            continue;
        }
        let end = memchr::memchr(b'\n', &bytes[at..]).map_or(text.len(), |i| at + i + 1);
        if text[at + 3..end].trim().is_empty() {
            spans.push(&text[start..at]);
            start = end;
        }
    }
    spans.push(&text[start..]);
    spans.retain(|s| !s.trim().is_empty());
    spans
}

/// The items of a `kind: List` (or `*List`) document as `kubectl get -o yaml` prints
/// them: `items:` at the left margin, each item a `- ` line there followed by indented
/// lines. Each span is one item, still written as a one-element sequence. `None` when
/// the document is not a list written that way (the caller then parses it whole).
pub(super) fn list_item_spans(document: &str) -> Option<Vec<&str>> {
    // Most documents are single objects: one search says so without reading each line.
    if !document.starts_with("items:")
        && memchr::memmem::find(document.as_bytes(), b"\nitems:").is_none()
    {
        return None;
    }
    let mut items = Vec::new();
    let mut is_list = false;
    let mut in_items = false;
    let mut item_start = None;
    let mut at = 0;
    for line in document.split_inclusive('\n') {
        let bare = line.trim_end_matches(['\n', '\r']);
        let continues = bare.is_empty() || bare.starts_with([' ', '#']);
        if in_items && bare.starts_with('-') {
            if let Some(start) = item_start.replace(at) {
                items.push(&document[start..at]);
            }
        } else if in_items && !continues {
            in_items = false;
            if let Some(start) = item_start.take() {
                items.push(&document[start..at]);
            }
        } else if in_items && item_start.is_none() && !bare.trim().is_empty() {
            // Indented items (`items:` then `  - ...`): not the shape read here.
            return None;
        }
        if !in_items && !continues {
            if bare.trim_end() == "items:" {
                in_items = true;
            } else if let Some(kind) = bare.strip_prefix("kind:") {
                is_list = kind.trim().trim_matches(['"', '\'']).ends_with("List");
            }
        }
        at += line.len();
    }
    if let Some(start) = item_start {
        items.push(&document[start..]);
    }
    (is_list && !items.is_empty()).then_some(items)
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}

/// Loads, and reports what could not be read.
pub fn load_reporting(paths: &[PathBuf], metrics: &ZoneMetrics) -> ObjectSet {
    let (objects, errors) = load(paths);
    report(&errors, metrics);
    objects
}

fn report(errors: &[LoadError], metrics: &ZoneMetrics) {
    for error in errors {
        metrics.reload_errors.inc();
        tracing::warn!("{error}");
    }
}

/// How long the events of one save take to arrive after the first.
const EVENTS_OF_ONE_SAVE: std::time::Duration = std::time::Duration::from_millis(5);

/// File-change notifications for the manifest paths. Created before the first load, so
/// that a change made while loading is not missed.
pub struct ManifestWatch {
    reader: Reader,
    events: mpsc::Receiver<()>,
    /// Dropping the watcher stops the notifications: it lives as long as the loop.
    _watcher: notify::RecommendedWatcher,
}

impl ManifestWatch {
    /// Starts watching `paths` and the zone files (folders recursively; a file through
    /// its folder, so that an editor's write-to-temporary-then-rename is seen too).
    pub fn new(paths: &[PathBuf], zone_files: ZoneFiles) -> Result<Self, Error> {
        let (tx, events) = mpsc::channel::<()>(1);
        let watched: Vec<PathBuf> = paths
            .iter()
            .chain(&zone_files.paths)
            .map(|p| watched_path(p))
            .collect();
        // Whether each is a folder, looked at once: a write of a large file raises an
        // event per block written, each passed through `concerns`.
        let filter: Vec<(PathBuf, bool)> =
            watched.iter().map(|p| (p.clone(), p.is_dir())).collect();
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
                    Ok(event) => event.paths.iter().any(|p| concerns(p, &filter)),
                    Err(_) => true,
                };
                if relevant {
                    let _ = tx.try_send(()); // full means a reload is already due
                }
            })
            .map_err(|source| Error::WatchFailed {
                path: watched.first().cloned().unwrap_or_default(),
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
            reader: Reader::new(paths, zone_files),
            events,
            _watcher: watcher,
        })
    }

    /// The reader that reloads the paths (the first read goes through it too, so that
    /// the first change finds what the first read decoded).
    pub fn reader(&self) -> Reader {
        self.reader.clone()
    }

    /// Reloads the objects into `feed` whenever a file under the paths changes, until
    /// `shutdown`. The rebuild loop coalesces the changes of a burst.
    pub async fn run(mut self, feed: Arc<Feed>, metrics: ZoneMetrics, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                event = self.events.recv() => if event.is_none() { return },
            }
            // One save raises several events at once (a rename is seen from both of its
            // names): the read that follows covers them all, so they are taken now
            // rather than each reading 100,000 objects again.
            tokio::time::sleep(EVENTS_OF_ONE_SAVE).await;
            while self.events.try_recv().is_ok() {}
            let (reader, metrics) = (self.reader.clone(), metrics.clone());
            // Reading files blocks: keep it off the threads that answer queries.
            let loaded = tokio::task::spawn_blocking(move || reader.load_reporting(&metrics)).await;
            if let Ok(objects) = loaded {
                feed.replace(objects);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The documents a line-by-line reading finds: a line that is `---` and blanks.
    fn spans_by_lines(text: &str) -> Vec<&str> {
        let (mut spans, mut start, mut at) = (Vec::new(), 0, 0);
        for line in text.split_inclusive('\n') {
            let bare = line.trim_end_matches(['\n', '\r']);
            if bare.starts_with("---") && bare[3..].trim().is_empty() {
                spans.push(&text[start..at]);
                start = at + line.len();
            }
            at += line.len();
        }
        spans.push(&text[start..]);
        spans.retain(|s| !s.trim().is_empty());
        spans
    }

    #[test]
    fn documents_split_where_a_line_is_three_dashes() {
        for text in [
            "",
            "---",
            "---\n",
            "a: 1\n---\nb: 2\n",
            "---\na: 1\n---   \r\nb: 2\n---\n",
            "a: '---'\n--- # not a separator\nb: ----\n----\nc: 3",
            "a: 1\n  ---\nb: 2\n------\n---\n---\n\n---\nz: 9\n---",
            "x: |\n  text\n---\t\ny: 2\n---é: 3\n---",
        ] {
            assert_eq!(document_spans(text), spans_by_lines(text), "{text:?}");
        }
    }

    #[test]
    fn only_changes_to_manifests_or_a_configmap_swap_concern_the_watch() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir(root.join("apps")).unwrap();
        let folder = [(root.clone(), true)];
        let concerns_folder = |path: &str| concerns(&root.join(path), &folder);
        for path in [
            "apps.yaml",
            "apps/web.yml",
            "apps/web.json",
            "apps",
            "gone",
            "..data",
        ] {
            assert!(concerns_folder(path), "{path}");
        }
        assert!(concerns_folder("apps/..data"));
        for path in [
            ".apps.yaml.swp",
            "apps.yaml~",
            "apps.yaml.tmp",
            ".tmp-1234",
            ".git/index",
            "..2026_11_26_02_00_00.1234/apps.yaml",
            "apps/.hidden/web.yaml",
            "notes.txt",
        ] {
            assert!(!concerns_folder(path), "{path}");
        }
        // A file is watched through its folder: its siblings do not count.
        let file = [(root.join("apps.yaml"), false)];
        assert!(concerns(&root.join("apps.yaml"), &file));
        assert!(concerns(&root.join("..data"), &file));
        assert!(concerns(&root, &file));
        assert!(!concerns(&root.join("other.yaml"), &file));
        assert!(!concerns(&root.join("apps/..data"), &file));
    }
    use crate::sources::service::KeptService;
    use crate::zone::ObjectRef;
    use k8s_openapi::api::core::v1::Service;

    fn load_text(name: &str, text: &str) -> (ObjectSet, Vec<LoadError>) {
        let mut loader = Loader::default();
        loader.read_text(Path::new(name), text);
        (ObjectSet::from_read(loader.read), loader.errors)
    }

    fn services(objects: &ObjectSet) -> Vec<&KeptService> {
        objects.all::<Service>().collect()
    }

    /// `kubectl get services -A -o yaml` for `count` Services: `items:` at the margin.
    fn kubectl_list(count: usize, broken_item: Option<usize>) -> String {
        let mut text = String::from("apiVersion: v1\nitems:\n");
        for i in 0..count {
            let ip = if broken_item == Some(i) {
                "["
            } else {
                "10.0.0.1"
            };
            text.push_str(&format!(
                "- apiVersion: v1\n  kind: Service\n  metadata:\n    name: s{i}\n    namespace: apps\n  \
                 spec:\n    type: LoadBalancer\n  status:\n    loadBalancer:\n      ingress:\n      - ip: {ip}\n"
            ));
        }
        text.push_str("kind: List\nmetadata:\n  resourceVersion: \"\"\n");
        text
    }

    #[test]
    fn a_kubectl_list_too_big_to_parse_whole_is_read_item_by_item() {
        // 25,000 items are over 250,000 YAML nodes: more than the parser takes in one
        // tree, so this only loads because the items are parsed one at a time.
        let text = kubectl_list(25_000, None);
        assert!(serde_saphyr::from_multiple::<Value>(&text).is_err());
        let (objects, errors) = load_text("all.yaml", &text);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(services(&objects).len(), 25_000);
    }

    #[test]
    fn a_kubectl_json_list_too_big_for_the_yaml_parser_loads() {
        let items: Vec<Value> = (0..25_000)
            .map(|i| {
                serde_json::json!({"apiVersion": "v1", "kind": "Service",
                    "metadata": {"name": format!("s{i}"), "namespace": "apps"},
                    "spec": {"type": "LoadBalancer"},
                    "status": {"loadBalancer": {"ingress": [{"ip": "10.0.0.1"}]}}})
            })
            .collect();
        let text = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items});
        let (objects, errors) = load_text("all.json", &text.to_string());
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(services(&objects).len(), 25_000);
    }

    #[test]
    fn a_list_with_a_broken_item_is_reported_once_for_the_file() {
        let (objects, errors) = load_text("all.yaml", &kubectl_list(3, Some(1)));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].message.contains("not valid YAML"), "{errors:?}");
        assert!(services(&objects).len() < 3);
    }

    #[test]
    fn a_list_read_item_by_item_equals_the_list_read_whole() {
        let text = kubectl_list(50, None);
        let mut whole = Loader::default();
        for document in serde_saphyr::from_multiple::<Value>(&text).unwrap() {
            whole.read_document(Path::new("all.yaml"), 1, document);
        }
        let (objects, errors) = load_text("all.yaml", &text);
        assert!(errors.is_empty() && whole.errors.is_empty());
        let names = |set: &ObjectSet| {
            let mut names: Vec<String> = set.all::<Service>().map(|s| format!("{:?}", s)).collect();
            names.sort();
            names
        };
        assert_eq!(names(&objects), names(&ObjectSet::from_read(whole.read)));
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
        let names: Vec<_> = services(&objects)
            .iter()
            .map(|s| s.object.to_string())
            .collect();
        assert_eq!(names, ["Service apps/a", "Service default/b"]);
    }

    #[test]
    fn a_file_of_many_documents_reads_every_one_in_order() {
        // Read document by document: every Service, numbered as in the file (the
        // second definition of app0 replaces the first).
        let mut text: String = (0..300)
            .map(|i| format!("---\napiVersion: v1\nkind: Service\nmetadata: {{name: app{i}, namespace: apps}}\nspec: {{type: LoadBalancer}}\n"))
            .collect();
        text.push_str("---\napiVersion: v1\nkind: Service\nmetadata: {name: app0, namespace: apps}\nspec: {type: ClusterIP}\n---\nkind: Service\n");
        let (objects, errors) = load_text("many.yaml", &text);
        assert_eq!(services(&objects).len(), 300);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].message.contains("document 302"), "{}", errors[0]);
        let app0 = services(&objects)
            .into_iter()
            .find(|s| &*s.object.name == "app0")
            .unwrap();
        assert!(!app0.load_balancer);
    }

    #[test]
    fn a_broken_document_is_reported_and_the_others_still_load() {
        let text = "apiVersion: v1\nkind: Service\nmetadata: {name: good}\n---\nkind: [unclosed\n---\nfoo: bar\n";
        let (objects, errors) = load_text("mixed.yaml", text);
        assert_eq!(services(&objects).len(), 1);
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].message.contains("document 2"), "{}", errors[0]);
        assert!(errors[1].message.contains("no kind"), "{}", errors[1]);
    }

    #[test]
    fn a_malformed_object_names_itself_and_the_field() {
        let text = "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: apps}\nspec: {ports: [{port: eighty}]}\n";
        let (objects, errors) = load_text("bad.yaml", text);
        assert!(services(&objects).is_empty());
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
        assert_eq!(services(&objects).len(), 1);
        assert!(services(&objects)[0].load_balancer);
    }

    /// What `load` said about each file, by file name.
    fn load_dir(dir: &Path) -> (ObjectSet, Vec<(String, String)>) {
        let (objects, errors) = load(&[dir.to_path_buf()]);
        let errors = errors
            .into_iter()
            .map(|e| {
                let name = e.file.strip_prefix(dir).unwrap_or(&e.file);
                (name.display().to_string(), e.message)
            })
            .collect();
        (objects, errors)
    }

    const SERVICE: &str = "apiVersion: v1\nkind: Service\nmetadata: {name: web}\n";

    #[test]
    fn a_symlink_loop_is_read_once_and_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/a.yaml"), SERVICE).unwrap();
        std::os::unix::fs::symlink("..", dir.path().join("sub/up")).unwrap();
        std::os::unix::fs::symlink("self.yaml", dir.path().join("self.yaml")).unwrap();
        let (objects, errors) = load_dir(dir.path());
        assert_eq!(services(&objects).len(), 1);
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert_eq!(errors[0].0, "self.yaml");
        assert!(errors[0].1.contains("symbolic links"), "{errors:?}");
        assert_eq!(errors[1].0, "sub/up");
        assert!(errors[1].1.contains("symbolic link loop"), "{errors:?}");
    }

    #[test]
    fn a_fifo_is_skipped_without_waiting_for_a_writer() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.yaml"), SERVICE).unwrap();
        mkfifo(&dir.path().join("pipe.yaml"));
        let (objects, errors) = load_dir(dir.path());
        assert_eq!(services(&objects).len(), 1);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].0, "pipe.yaml");
        assert!(errors[0].1.contains("not a regular file"), "{errors:?}");
    }

    fn mkfifo(path: &Path) {
        let status = std::process::Command::new("mkfifo")
            .arg(path)
            .status()
            .expect("mkfifo runs");
        assert!(status.success(), "mkfifo {}", path.display());
    }

    #[test]
    fn a_file_over_the_limit_is_skipped_and_names_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.yaml"), SERVICE).unwrap();
        // 300 MB without writing them: a sparse file.
        let big = std::fs::File::create(dir.path().join("big.yaml")).unwrap();
        big.set_len(300 * 1000 * 1000).unwrap();
        let (objects, errors) = load_dir(dir.path());
        assert_eq!(services(&objects).len(), 1);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].0, "big.yaml");
        assert!(
            errors[0]
                .1
                .contains("300000000 bytes, over the limit of 268435456 bytes"),
            "{errors:?}"
        );
    }

    #[test]
    fn a_file_that_is_not_utf8_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("bin.yaml"), b"kind: \xff\xfe").unwrap();
        let (_, errors) = load_dir(dir.path());
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].0, "bin.yaml");
        assert!(errors[0].1.contains("not UTF-8"), "{errors:?}");
    }

    #[test]
    fn not_yaml_at_all_is_one_error_for_the_file() {
        let (objects, errors) = load_text("junk.yaml", "{{{ not yaml");
        assert!(services(&objects).is_empty());
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].message.starts_with("not valid YAML"),
            "{}",
            errors[0]
        );
    }

    /// Loads `dir` again with the cache of the previous load.
    fn reload(dir: &Path, cache: SpanCache) -> (ObjectSet, Vec<LoadError>, SpanCache) {
        load_with(&[dir.to_path_buf()], &ZoneFiles::default(), cache)
    }

    fn by_name<'a>(objects: &'a ObjectSet, name: &str) -> &'a KeptService {
        services(objects)
            .into_iter()
            .find(|s| &*s.object.name == name)
            .unwrap()
    }

    #[test]
    fn a_reload_decodes_only_the_spans_whose_text_changed() {
        let dir = tempfile::tempdir().unwrap();
        let list = dir.path().join("list.yaml");
        let documents = dir.path().join("documents.yaml");
        std::fs::write(&list, kubectl_list(50, None)).unwrap();
        let doc = |name: &str, ip: &str| {
            format!(
                "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}}}\nspec: {{type: LoadBalancer}}\nstatus: {{loadBalancer: {{ingress: [{{ip: {ip}}}]}}}}\n"
            )
        };
        std::fs::write(
            &documents,
            [doc("d1", "10.0.1.1"), doc("d2", "10.0.1.2")].join("---\n"),
        )
        .unwrap();
        let (first, errors, cache) = reload(dir.path(), SpanCache::default());
        assert_eq!(errors, Vec::new());
        assert_eq!(services(&first).len(), 52);

        // One list item and one document change.
        std::fs::write(
            &list,
            kubectl_list(50, None).replace("name: s7\n", "name: s7b\n"),
        )
        .unwrap();
        std::fs::write(
            &documents,
            [doc("d1", "10.0.1.1"), doc("d2", "10.0.1.99")].join("---\n"),
        )
        .unwrap();
        let (second, errors, _) = reload(dir.path(), cache);
        assert_eq!(errors, Vec::new());

        // The same objects as a read without the cache...
        let (fresh, _) = load(&[dir.path().to_path_buf()]);
        let all = |set: &ObjectSet| format!("{:?}", services(set));
        assert_eq!(all(&second), all(&fresh));
        assert!(services(&second).iter().all(|s| &*s.object.name != "s7"));
        // ...with the unchanged ones kept as they were, not decoded again.
        for name in ["s0", "s49", "d1"] {
            assert!(
                std::ptr::eq(by_name(&first, name), by_name(&second, name)),
                "{name}"
            );
        }
        assert!(!std::ptr::eq(by_name(&first, "d2"), by_name(&second, "d2")));
        assert_eq!(
            &*by_name(&second, "d2").ingress[0].ip.clone().unwrap(),
            "10.0.1.99"
        );
        assert_eq!(
            second.location(&by_name(&second, "s0").object),
            Some(format!("file {}", list.display()).as_str())
        );
    }

    #[test]
    fn a_block_style_document_read_by_the_fast_reader_is_kept_across_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let doc = |name: &str| {
            format!(
                "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\nspec:\n  type: LoadBalancer\n\
                 status:\n  loadBalancer:\n    ingress:\n    - ip: 10.0.1.1\n"
            )
        };
        let text = [doc("b1"), doc("b2")].join("---\n");
        assert!(
            document_spans(&text)
                .iter()
                .all(|d| block_yaml::parse(d).is_some())
        );
        std::fs::write(dir.path().join("block.yaml"), &text).unwrap();
        let (first, errors, cache) = reload(dir.path(), SpanCache::default());
        assert_eq!(errors, Vec::new());
        std::fs::write(dir.path().join("block.yaml"), text.replace("b2", "b3")).unwrap();
        let (second, errors, _) = reload(dir.path(), cache);
        assert_eq!(errors, Vec::new());
        assert!(std::ptr::eq(by_name(&first, "b1"), by_name(&second, "b1")));
        assert_eq!(by_name(&second, "b3").ingress.len(), 1);
    }

    #[test]
    fn a_span_with_a_problem_is_reported_again_on_every_read() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.yaml"), kubectl_list(3, Some(1))).unwrap();
        let text = "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {ports: [{port: eighty}]}\n";
        std::fs::write(dir.path().join("b.yaml"), text).unwrap();
        let (_, errors, cache) = reload(dir.path(), SpanCache::default());
        assert_eq!(errors.len(), 2, "{errors:?}");
        let (objects, again, _) = reload(dir.path(), cache);
        assert_eq!(again, errors);
        let (fresh, _) = load(&[dir.path().to_path_buf()]);
        assert_eq!(
            format!("{:?}", services(&objects)),
            format!("{:?}", services(&fresh))
        );
    }

    #[test]
    fn an_object_moved_to_another_file_is_located_there() {
        let dir = tempfile::tempdir().unwrap();
        let text = "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: apps}\n";
        std::fs::write(dir.path().join("a.yaml"), text).unwrap();
        let (_, _, cache) = reload(dir.path(), SpanCache::default());
        std::fs::remove_file(dir.path().join("a.yaml")).unwrap();
        std::fs::write(dir.path().join("b.yaml"), text).unwrap();
        let (objects, _, _) = reload(dir.path(), cache);
        let web = ObjectRef::new("Service", "apps", "web");
        let expected = format!("file {}", dir.path().join("b.yaml").display());
        assert_eq!(objects.location(&web), Some(expected.as_str()));
    }

    #[test]
    fn spans_decoded_on_several_threads_read_like_one_thread_reads_them() {
        let dir = tempfile::tempdir().unwrap();
        // A list, and many documents: the same name twice (the later wins), a document
        // that does not parse, one without a kind, one with a bad field.
        let list = kubectl_list(3 * MIN_SPANS_PER_READER, None);
        let mut documents: Vec<String> = (0..3 * MIN_SPANS_PER_READER)
            .map(|i| format!("apiVersion: v1\nkind: Service\nmetadata: {{name: d{}}}\nspec: {{type: LoadBalancer}}\nstatus: {{loadBalancer: {{ingress: [{{ip: 10.0.{}.{}}}]}}}}\n", i % 500, i / 256, i % 256))
            .collect();
        documents[7] = "kind: [unclosed\n".into();
        documents[9] = "foo: bar\n".into();
        documents[11] = "apiVersion: v1\nkind: Service\nmetadata: {name: bad}\nspec: {ports: [{port: eighty}]}\n".into();
        let documents = documents.join("---\n");
        std::fs::write(dir.path().join("a-list.yaml"), &list).unwrap();
        std::fs::write(dir.path().join("b-documents.yaml"), &documents).unwrap();

        let (threaded, threaded_errors) = load(&[dir.path().to_path_buf()]);
        let mut one = Loader::default();
        one.read_text(&dir.path().join("a-list.yaml"), &list);
        one.read_text(&dir.path().join("b-documents.yaml"), &documents);
        assert_eq!(threaded_errors, one.errors);
        assert_eq!(threaded_errors.len(), 3, "{threaded_errors:?}");
        assert_eq!(
            format!("{:?}", services(&threaded)),
            format!("{:?}", services(&ObjectSet::from_read(one.read)))
        );
        assert_eq!(services(&threaded).len(), 3 * MIN_SPANS_PER_READER + 500);
    }
}
