//! The folder feeder: Kubernetes objects read from YAML/JSON files, reloaded on change.
//!
//! Reads what `kubectl get -A -o yaml` prints (multi-document files, `kind: List`),
//! status included. A file, document or object that cannot be read is reported with its
//! file and skipped; everything else still serves. The `--zone-file`s are read and
//! watched with the manifests ([`zone_file`] reads them), into the same object set.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use notify::{RecursiveMode, Watcher};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

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
            Ok(text) => loader.read_text(file, &text),
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
            spans = cache.len(),
            ms = started.elapsed().as_millis(),
            "manifests read"
        );
        report(&errors, metrics);
        objects
    }
}

/// What each span of text (a YAML document, or an item of a list) that read without a
/// problem decoded to, by a hash of its text. Only the spans of the last read are kept,
/// so it never outgrows the files. Parsing is most of a read's time: a span found here
/// is hashed, not parsed.
type SpanCache = HashMap<SpanKey, Decoded>;

/// A span's text, hashed. 128 bits, so that two texts of one folder never share a key
/// (at 64 bits, a million spans would still meet once in 10^7 reads); xxh3 rather than a
/// cryptographic hash, because every reload hashes every byte of the files (86 MB for
/// 100,000 Services) and nothing here is chosen by an attacker aiming at collisions
/// (the files are the operator's own).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct SpanKey(u128);

impl SpanKey {
    fn of(text: &str) -> Self {
        SpanKey(xxhash_rust::xxh3::xxh3_128(text.as_bytes()))
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
}

/// Where in its file an object is: its document, and its item when that is a list. For
/// the messages, which must let the reader find the object.
#[derive(Clone, Copy)]
struct Place {
    document: usize,
    item: Option<usize>,
}

impl Place {
    fn document(document: usize) -> Self {
        Place {
            document,
            item: None,
        }
    }

    fn item(document: usize, item: usize) -> Self {
        Place {
            document,
            item: Some(item),
        }
    }
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "document {}", self.document)?;
        match self.item {
            Some(item) => write!(f, ", item {item}"),
            None => Ok(()),
        }
    }
}

impl Loader {
    /// Reads a file document by document, each decoded and dropped before the next is
    /// parsed: a file of 100,000 Services never holds all their trees at once. A broken
    /// document is reported and the others are read. Should the split on `---` lines
    /// have cut the stream wrongly (a directive before a marker), the whole stream is
    /// parsed at once instead.
    fn read_text(&mut self, file: &Path, text: &str) {
        let errors_before = self.errors.len();
        let parts = document_spans(text);
        let mut index = 1;
        let mut broken = false;
        for (part_index, part) in parts.iter().enumerate() {
            match self.read_part(file, index, part) {
                Ok(documents) => index += documents,
                Err(e) => {
                    let message = if parts.len() == 1 {
                        format!("not valid YAML or JSON: {}", first_line(&e))
                    } else {
                        format!(
                            "document {}: not valid YAML: {}",
                            part_index + 1,
                            first_line(&e)
                        )
                    };
                    broken = true;
                    self.error(file, message);
                }
            }
        }
        if broken
            && parts.len() > 1
            && let Ok(documents) = serde_saphyr::from_multiple::<Value>(text)
        {
            // The stream is valid as a whole: read it so (objects read above are the
            // same objects again, and replace themselves).
            self.errors.truncate(errors_before);
            for (index, document) in documents.into_iter().enumerate() {
                self.read_document(file, Place::document(index + 1), document);
            }
        }
    }

    /// Reads one document span (after the `---` split), numbered `index`: JSON as a
    /// stream, a `kubectl` list item by item, anything else parsed whole. Returns how
    /// many documents it held, or why it is not valid (for a `.json` file, what the JSON
    /// parser says; else the YAML parser).
    fn read_part(&mut self, file: &Path, index: usize, part: &str) -> Result<usize, String> {
        let mut json_error = None;
        if part.trim_start().starts_with('{') {
            match self.read_json(file, index, part) {
                Ok(()) => return Ok(1),
                Err(e) => json_error = Some(e),
            }
        }
        if let Some(items) = list_item_spans(part)
            && self.read_list_items(file, index, &items)
        {
            return Ok(1);
        }
        let place = Place::document(index);
        self.read_span(file, place, part, serde_saphyr::from_multiple::<Value>)
            .map_err(|yaml| match json_error {
                Some(json) if file.extension() == Some(OsStr::new("json")) => json,
                _ => yaml.to_string(),
            })
    }

    /// Reads the items of a `kind: List` document written the way `kubectl get -o yaml`
    /// writes it (see [`list_item_spans`]) one at a time, each parsed, decoded and
    /// dropped before the next: a list of 100,000 Services never becomes one tree (which
    /// would also exceed the YAML parser's node budget). Returns false, having read
    /// nothing, when an item does not parse alone; the caller then parses the document
    /// whole.
    fn read_list_items(&mut self, file: &Path, index: usize, items: &[&str]) -> bool {
        let (read_before, errors_before) = (self.read.len(), self.errors.len());
        for (i, item) in items.iter().enumerate() {
            // Each item is still written as a sequence, of one element.
            let parse = serde_saphyr::from_str::<Vec<Value>>;
            if self
                .read_span(file, Place::item(index, i + 1), item, parse)
                .is_err()
            {
                self.read.truncate(read_before);
                self.errors.truncate(errors_before);
                return false;
            }
        }
        true
    }

    /// Reads a JSON document (`kubectl get -o json`) as a stream: a list's items one at a
    /// time, each parsed, decoded and dropped before the next is read, so that a dump of
    /// 100,000 objects never becomes one tree. Having read nothing, returns why the text
    /// is not JSON (it may still be YAML's flow style).
    fn read_json(&mut self, file: &Path, index: usize, document: &str) -> Result<(), String> {
        let (read_before, errors_before) = (self.read.len(), self.errors.len());
        let mut stream = JsonStream {
            loader: self,
            file,
            document: index,
            item: None,
        };
        let mut parser = serde_json::Deserializer::from_str(document);
        let read = JsonDocument(&mut stream)
            .deserialize(&mut parser)
            .and_then(|read| parser.end().map(|()| read));
        let item = stream.item;
        let fields = match read {
            Ok(JsonRead::List) => return Ok(()),
            Ok(JsonRead::Object(fields)) => Value::Object(fields),
            Err(e) => {
                self.read.truncate(read_before);
                self.errors.truncate(errors_before);
                if e.is_syntax() || e.is_eof() {
                    return Err(match item {
                        Some(item) => format!("item {item}: {e}"),
                        None => e.to_string(),
                    });
                }
                // Valid JSON of a shape the stream does not take (`items` that is not a
                // list, or twice): read as one tree, as any other document.
                serde_json::from_str(document).map_err(|e| e.to_string())?
            }
        };
        let whole = |_: &str| Ok::<_, std::convert::Infallible>(vec![fields]);
        let Ok(_) = self.read_span(file, Place::document(index), document, whole);
        Ok(())
    }

    /// Reads one span of a file (a document, or an item of a list) with `parse`, which
    /// turns its text into the documents it holds; or, when the text is as it was at
    /// the last read, keeps again what it decoded to then. Returns how many documents
    /// it held.
    fn read_span<'t, E>(
        &mut self,
        file: &Path,
        place: Place,
        text: &'t str,
        parse: impl FnOnce(&'t str) -> Result<Vec<Value>, E>,
    ) -> Result<usize, E> {
        let key = SpanKey::of(text);
        if let Some(decoded) = self.previous.remove(&key) {
            let location = self.location(file);
            let objects = decoded.objects.iter();
            self.read.extend(
                objects.map(|(kind, object)| (*kind, object.clone(), Some(location.clone()))),
            );
            let documents = decoded.documents;
            self.next.insert(key, decoded);
            return Ok(documents);
        }
        let documents = parse(text)?;
        let count = documents.len();
        let (read_before, errors_before) = (self.read.len(), self.errors.len());
        for (i, document) in documents.into_iter().enumerate() {
            let place = Place {
                document: place.document + i,
                ..place
            };
            self.read_document(file, place, document);
        }
        // A span with a problem is read again next time, so that it is reported again.
        if self.errors.len() == errors_before {
            let objects = self.read[read_before..].iter();
            let objects = objects
                .map(|(kind, object, _)| (*kind, object.clone()))
                .collect();
            self.next.insert(
                key,
                Decoded {
                    objects,
                    documents: count,
                },
            );
        }
        Ok(count)
    }

    fn read_document(&mut self, file: &Path, place: Place, document: Value) {
        if document.is_null() {
            return;
        }
        let Some(kind) = document.get("kind").and_then(Value::as_str) else {
            let message = format!("{place} is not a Kubernetes object: it has no kind");
            self.error(file, message);
            return;
        };
        if kind == "List" || kind.ends_with("List") && document.get("items").is_some() {
            if let Value::Object(mut map) = document
                && let Some(Value::Array(items)) = map.remove("items")
            {
                for (i, item) in items.into_iter().enumerate() {
                    self.read_document(file, Place::item(place.document, i + 1), item);
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
            Some(kind) => self.add(file, place, kind, document),
            None => {
                tracing::debug!(file = %file.display(), kind, "ignored: not a kind that publishes names");
            }
        }
    }

    /// Decodes and keeps one object of a known kind, naming the field when its shape
    /// is wrong.
    fn add(&mut self, file: &Path, place: Place, kind: &'static dyn Kind, mut document: Value) {
        let label = kind.label();
        let text = |pointer: &str| {
            document
                .pointer(pointer)
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let Some(name) = text("/metadata/name") else {
            let message = format!("{place}: {label} has no metadata.name: skipped");
            self.error(file, message);
            return;
        };
        let namespace = text("/metadata/namespace").unwrap_or_else(|| "default".into());
        if let Some(meta) = document.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("namespace".into(), Value::String(namespace.clone()));
        }
        match kind.decode(document) {
            Ok(object) => {
                let location = self.location(file);
                self.read.push((kind, object, Some(location)));
            }
            Err(e) => {
                let message = format!(
                    "{label} {namespace}/{name} ({place}): field {}: {}: skipped",
                    e.path(),
                    e.inner()
                );
                self.error(file, message);
            }
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

/// A JSON document being streamed into a loader: where it is, and the item being read
/// (for the message when the text breaks off).
struct JsonStream<'a> {
    loader: &'a mut Loader,
    file: &'a Path,
    document: usize,
    item: Option<usize>,
}

/// What streaming a JSON document found: a list, whose items are read already, or one
/// object's fields.
enum JsonRead {
    List,
    Object(serde_json::Map<String, Value>),
}

/// The top-level map of a JSON document: every field kept but `items`, which is read
/// item by item ([`JsonItems`]). `kubectl` writes `kind` after `items`, so whether the
/// items were a list's is known only at the end.
struct JsonDocument<'s, 'a>(&'s mut JsonStream<'a>);

impl<'de> DeserializeSeed<'de> for JsonDocument<'_, '_> {
    type Value = JsonRead;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<JsonRead, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for JsonDocument<'_, '_> {
    type Value = JsonRead;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a Kubernetes object or list")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<JsonRead, A::Error> {
        let mut fields = serde_json::Map::new();
        let mut listed = false;
        while let Some(key) = map.next_key::<String>()? {
            if key == "items" {
                if listed {
                    return Err(de::Error::duplicate_field("items"));
                }
                map.next_value_seed(JsonItems(&mut *self.0))?;
                listed = true;
            } else {
                fields.insert(key, map.next_value()?);
            }
        }
        let kind = fields.get("kind").and_then(Value::as_str);
        if !listed {
            return Ok(JsonRead::Object(fields));
        }
        if kind.is_some_and(|kind| kind.ends_with("List")) {
            return Ok(JsonRead::List);
        }
        // Not a list after all: the object is read again whole, `items` with it.
        Err(de::Error::custom("items outside a list"))
    }
}

/// A list's `items`, each read alone as a span of the file's text (so that the span
/// cache knows it) and dropped before the next.
struct JsonItems<'s, 'a>(&'s mut JsonStream<'a>);

impl<'de> DeserializeSeed<'de> for JsonItems<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for JsonItems<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a list of objects")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<(), A::Error> {
        let stream = self.0;
        for number in 1.. {
            stream.item = Some(number);
            let Some(item) = items.next_element::<&'de RawValue>()? else {
                break;
            };
            let place = Place::item(stream.document, number);
            let parse = |text: &str| serde_json::from_str(text).map(|value| vec![value]);
            stream
                .loader
                .read_span(stream.file, place, item.get(), parse)
                .map_err(de::Error::custom)?;
        }
        stream.item = None;
        Ok(())
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

    /// A Service as `kubectl get -o json` holds it.
    fn json_service(i: usize) -> Value {
        serde_json::json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": format!("s{i}"), "namespace": "apps"},
            "spec": {"type": "LoadBalancer"},
            "status": {"loadBalancer": {"ingress": [{"ip": format!("10.0.{}.{}", i / 256, i % 256)}]}}})
    }

    /// `kubectl get services -A -o json` for these items: `kind` after `items`, as
    /// kubectl writes the fields (in order).
    fn kubectl_json_list(items: &[Value]) -> String {
        let items: Vec<String> = items.iter().map(|i| format!("        {i}")).collect();
        format!(
            "{{\n    \"apiVersion\": \"v1\",\n    \"items\": [\n{}\n    ],\n    \"kind\": \"List\",\n    \"metadata\": {{\"resourceVersion\": \"\"}}\n}}\n",
            items.join(",\n")
        )
    }

    #[test]
    fn a_kubectl_json_list_too_big_for_the_yaml_parser_loads() {
        let items: Vec<Value> = (0..25_000).map(json_service).collect();
        let (objects, errors) = load_text("all.json", &kubectl_json_list(&items));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(services(&objects).len(), 25_000);
    }

    #[test]
    fn a_json_list_read_item_by_item_equals_the_list_read_whole() {
        let items: Vec<Value> = (0..2_000).map(json_service).collect();
        let text = kubectl_json_list(&items);
        let mut whole = Loader::default();
        let tree = serde_json::from_str(&text).unwrap();
        whole.read_document(Path::new("all.json"), Place::document(1), tree);
        let (objects, errors) = load_text("all.json", &text);
        assert!(errors.is_empty() && whole.errors.is_empty());
        assert_eq!(services(&objects).len(), 2_000);
        assert_eq!(
            format!("{:?}", services(&objects)),
            format!("{:?}", services(&ObjectSet::from_read(whole.read)))
        );
    }

    #[test]
    fn a_json_list_with_broken_items_names_them_and_the_others_load() {
        let mut items: Vec<Value> = (0..5).map(json_service).collect();
        items[1]["spec"]["ports"] = serde_json::json!([{"port": "eighty"}]);
        items[3].as_object_mut().unwrap().remove("kind");
        let (objects, errors) = load_text("all.json", &kubectl_json_list(&items));
        let names: Vec<_> = services(&objects)
            .iter()
            .map(|s| s.object.name.to_string())
            .collect();
        assert_eq!(names, ["s0", "s2", "s4"]);
        let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(messages.len(), 2, "{messages:?}");
        assert!(
            messages[0].starts_with(
                "all.json: Service apps/s1 (document 1, item 2): field spec.ports[0].port"
            ),
            "{messages:?}"
        );
        assert_eq!(
            messages[1],
            "all.json: document 1, item 4 is not a Kubernetes object: it has no kind"
        );
    }

    #[test]
    fn json_that_breaks_off_in_an_item_is_one_error_naming_the_item() {
        let items: Vec<Value> = (0..5).map(json_service).collect();
        let text = kubectl_json_list(&items);
        // The third item loses its closing brace.
        let third = items[2].to_string();
        let text = text.replace(&third, &third[..third.len() - 1]);
        let (objects, errors) = load_text("all.json", &text);
        assert!(services(&objects).is_empty());
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0]
                .message
                .starts_with("not valid YAML or JSON: item 3: "),
            "{errors:?}"
        );
        // Noticed where the fourth item would start, inside the third.
        assert!(errors[0].message.contains("line 7"), "{errors:?}");
    }

    #[test]
    fn a_json_object_with_items_that_is_not_a_list_is_read_whole() {
        // `items` before `kind`, and `kind` not a list's: one object, `items` ignored.
        let text = r#"{"apiVersion": "v1", "items": [{"kind": "Service", "metadata": {"name": "inner"}}],
            "kind": "Service", "metadata": {"name": "outer"}}"#;
        let (objects, errors) = load_text("one.json", text);
        assert_eq!(errors, Vec::new());
        let names: Vec<_> = services(&objects)
            .iter()
            .map(|s| s.object.name.to_string())
            .collect();
        assert_eq!(names, ["outer"]);
        // A list whose items are not a list reads as an empty list, as before.
        let (objects, errors) = load_text("empty.json", r#"{"kind": "List", "items": null}"#);
        assert_eq!(errors, Vec::new());
        assert!(services(&objects).is_empty());
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
            whole.read_document(Path::new("all.yaml"), Place::document(1), document);
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
    fn a_reload_decodes_only_the_json_items_whose_text_changed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("all.json");
        let mut items: Vec<Value> = (0..20).map(json_service).collect();
        std::fs::write(&file, kubectl_json_list(&items)).unwrap();
        let (first, errors, cache) = reload(dir.path(), SpanCache::default());
        assert_eq!(errors, Vec::new());
        items[7]["status"]["loadBalancer"]["ingress"][0]["ip"] = "192.0.2.1".into();
        std::fs::write(&file, kubectl_json_list(&items)).unwrap();
        let (second, errors, _) = reload(dir.path(), cache);
        assert_eq!(errors, Vec::new());
        let (fresh, _) = load(&[dir.path().to_path_buf()]);
        assert_eq!(
            format!("{:?}", services(&second)),
            format!("{:?}", services(&fresh))
        );
        assert!(std::ptr::eq(by_name(&first, "s0"), by_name(&second, "s0")));
        assert!(std::ptr::eq(
            by_name(&first, "s19"),
            by_name(&second, "s19")
        ));
        assert!(!std::ptr::eq(by_name(&first, "s7"), by_name(&second, "s7")));
        assert_eq!(
            &*by_name(&second, "s7").ingress[0].ip.clone().unwrap(),
            "192.0.2.1"
        );
    }

    #[test]
    fn a_block_style_document_is_kept_across_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let doc = |name: &str| {
            format!(
                "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\nspec:\n  type: LoadBalancer\n\
                 status:\n  loadBalancer:\n    ingress:\n    - ip: 10.0.1.1\n"
            )
        };
        let text = [doc("b1"), doc("b2")].join("---\n");
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
}
