//! Kubernetes Events on the objects we read (`--events`): `kubectl describe httproute
//! immich` says what the object publishes, or why it publishes nothing.
//!
//! The rebuild hands each object whose outcome changed ([`crate::zone::outcome`]) to
//! [`EventQueue::offer`], which never waits: a bounded channel, full means dropped and
//! counted. One task ([`run`]) writes them through the [`Recorder`], with a token bucket
//! per object, and logs a failing API once until a write succeeds again.
//!
//! Replicas agree through the Events API itself (a lease would need RBAC on
//! `coordination.k8s.io`): an Event's name is a hash of the object's uid and the
//! outcome, so every replica that sees the same change writes the same name, the first
//! create wins and the others get 409 AlreadyExists. The Event also says which outcome
//! came before ([`PREVIOUS_ANNOTATION`]): a 409 for an Event of the same previous
//! outcome, observed less than [`SAME_CHANGE`] ago, is another replica's write of this
//! change and dropped; otherwise the outcome came back (published, refused, published
//! again) and that Event's `series` is patched (count + 1, last observed now), as the
//! Events API aggregates a repeated event.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::metrics::{EventLabels, EventMetrics};
use crate::zone::ObjectRef;
use crate::zone::outcome::Outcome;

/// Who writes the Events, as `kubectl describe` shows it (`reportingController`).
pub const CONTROLLER: &str = "k8s-gateway.dns/k8s-gateway";
/// Changes waiting to be written; past this the rebuild drops them (counted).
const QUEUE: usize = 4096;
/// Token bucket per object, as client-go's event spam filter keeps one per object: a
/// burst of 25 Events, then one a second.
const BURST: f64 = 25.0;
const REFILL_PER_SECOND: f64 = 1.0;
/// A 409 for an Event observed this recently is another replica's write of the same
/// change, not the outcome coming back.
pub const SAME_CHANGE: Duration = Duration::from_secs(60);
/// On each Event: the fingerprint of the object's outcome before this one (`none` for
/// a new object), which tells a replica's write of the same change from a recurrence.
pub const PREVIOUS_ANNOTATION: &str = "k8s-gateway.dns/previous-outcome";
/// `note` is at most 1 KiB.
const NOTE_MAX: usize = 1024;

/// One object whose outcome changed.
#[derive(Clone, Debug)]
pub struct Change {
    pub object: ObjectRef,
    /// `apiVersion` of the object's kind.
    pub api_version: String,
    pub uid: String,
    pub outcome: Outcome,
    /// The fingerprint of the object's outcome in the zone before; `None` when it had
    /// none (new, or the first zone).
    pub previous: Option<u64>,
    /// Part of the first zone after start: an Event that already exists for this
    /// outcome stands as it is (a restart, or the other replicas, recorded it).
    pub at_start: bool,
}

/// Where the rebuild hands its changes. Cheap to clone.
#[derive(Clone)]
pub struct EventQueue {
    sender: mpsc::Sender<Change>,
    metrics: EventMetrics,
}

impl EventQueue {
    /// A queue, and the receiver for [`run`].
    pub fn new(metrics: EventMetrics) -> (EventQueue, mpsc::Receiver<Change>) {
        let (sender, receiver) = mpsc::channel(QUEUE);
        (EventQueue { sender, metrics }, receiver)
    }

    /// Queues a change without waiting: a slow API never holds the rebuild back. A
    /// change that does not fit is dropped and counted.
    pub fn offer(&self, change: Change) {
        if self.sender.try_send(change).is_err() {
            self.metrics.count("dropped");
        }
    }
}

/// What became of one Event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Written {
    Created,
    /// The outcome came back: the existing Event's series was patched.
    Series,
    /// Another replica (or this process before a restart) wrote it already.
    Duplicate,
}

/// Writes Events, each through the client of the cluster its object was read from.
pub struct Recorder {
    /// Each watched cluster's client, by its `--cluster` name (`None` for the one
    /// cluster without `--cluster`): an Event goes to its object's own API server.
    clients: Vec<(Option<Arc<str>>, Client)>,
    instance: String,
}

impl Recorder {
    /// `instance` is this replica (`reportingInstance`): the pod's name.
    pub fn new(clients: Vec<(Option<Arc<str>>, Client)>, instance: String) -> Self {
        Recorder { clients, instance }
    }

    fn client_for(&self, object: &ObjectRef) -> Option<&Client> {
        (self.clients.iter())
            .find(|(cluster, _)| *cluster == object.cluster)
            .map(|(_, client)| client)
    }

    /// The pod name (`POD_NAME`, which the chart sets from the downward API), else the
    /// host name.
    pub fn instance_name() -> String {
        std::env::var("POD_NAME")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "k8s-gateway".into())
    }

    /// Writes the Event of one change.
    pub async fn record(&self, change: &Change) -> Result<Written, kube::Error> {
        let event = event_for(change, &self.instance, Timestamp::now());
        let name = event.metadata.name.clone().unwrap_or_default();
        // Only the clusters' objects are queued, so every one has its client.
        let Some(client) = self.client_for(&change.object) else {
            return Ok(Written::Duplicate);
        };
        let api: Api<Event> = Api::namespaced(client.clone(), &change.object.namespace);
        let exists = match api.create(&PostParams::default(), &event).await {
            Ok(_) => return Ok(Written::Created),
            Err(kube::Error::Api(status)) if status.is_already_exists() || status.code == 409 => {
                status
            }
            Err(e) => return Err(e),
        };
        drop(exists);
        if change.at_start {
            return Ok(Written::Duplicate);
        }
        let existing = api.get(&name).await?;
        let now = Timestamp::now();
        let last = (existing.series.as_ref().map(|s| s.last_observed_time.0))
            .or(existing.event_time.as_ref().map(|t| t.0));
        let recent = last.is_some_and(|at| {
            now.duration_since(at)
                .try_into()
                .is_ok_and(|d: Duration| d < SAME_CHANGE)
        });
        let previous = previous_label(change.previous);
        let same_previous = (existing.metadata.annotations.as_ref())
            .and_then(|a| a.get(PREVIOUS_ANNOTATION))
            .is_some_and(|p| *p == previous);
        if recent && same_previous {
            return Ok(Written::Duplicate);
        }
        let series = EventSeries {
            count: existing.series.as_ref().map_or(2, |s| s.count + 1),
            last_observed_time: MicroTime(now),
        };
        let patch = serde_json::json!({
            "metadata": {"annotations": {PREVIOUS_ANNOTATION: previous}},
            "series": series,
        });
        api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        Ok(Written::Series)
    }
}

/// The Event for `change`, named by the object's uid and the outcome (module comment).
pub fn event_for(change: &Change, instance: &str, now: Timestamp) -> Event {
    let object = &change.object;
    let (reason, type_) = match &change.outcome {
        Outcome::Published(_) => ("Published", "Normal"),
        Outcome::NotPublished { .. } if change.outcome.is_mistake() => ("NotPublished", "Warning"),
        Outcome::NotPublished { .. } => ("NotPublished", "Normal"),
        Outcome::Superseded { .. } => ("Superseded", "Normal"),
    };
    let name: String = object.name.chars().take(200).collect();
    let id = change.outcome.fingerprint() ^ fnv(change.uid.as_bytes());
    Event {
        metadata: ObjectMeta {
            name: Some(format!("{name}.{id:016x}")),
            namespace: Some(object.namespace.to_string()),
            annotations: Some(
                [(PREVIOUS_ANNOTATION.into(), previous_label(change.previous))].into(),
            ),
            ..ObjectMeta::default()
        },
        action: Some("Publish".into()),
        reason: Some(reason.into()),
        type_: Some(type_.into()),
        note: Some(note(&change.object, &change.outcome)),
        event_time: Some(MicroTime(now)),
        regarding: Some(ObjectReference {
            api_version: Some(change.api_version.clone()),
            kind: Some(api_kind(&object.kind).to_string()),
            namespace: Some(object.namespace.to_string()),
            name: Some(object.name.to_string()),
            uid: Some(change.uid.clone()),
            ..ObjectReference::default()
        }),
        reporting_controller: Some(CONTROLLER.into()),
        reporting_instance: Some(instance.chars().take(128).collect()),
        ..Event::default()
    }
}

fn previous_label(previous: Option<u64>) -> String {
    previous.map_or_else(|| "none".into(), |p| format!("{p:016x}"))
}

/// The kind as the API spells it: our label of an Istio Gateway carries its group.
fn api_kind(label: &str) -> &str {
    label.split('.').next().unwrap_or(label)
}

/// FNV-1a: a hash of the uid that every process computes alike.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The outcome in words, at most [`NOTE_MAX`] bytes.
pub fn note(object: &ObjectRef, outcome: &Outcome) -> String {
    let text = match outcome {
        Outcome::Published(lines) => format!("Publishes {}", lines.join(", ")),
        Outcome::NotPublished { reasons, detail } => {
            let why: Vec<&str> = reasons.iter().map(|r| r.in_words()).collect();
            format!("Publishes nothing: {}. {detail}", why.join("; "))
        }
        Outcome::Superseded { names, by } => {
            // A winner from another cluster won on the order of --cluster, whatever
            // the kinds.
            let order = if by.iter().any(|w| w.cluster != object.cluster) {
                "whose cluster comes first in --cluster"
            } else {
                "whose kind comes first in --resources"
            };
            let by: Vec<String> = by.iter().map(ToString::to_string).collect();
            format!(
                "Publishes nothing: {} {} published by {} instead, {order}",
                names.join(", "),
                if names.len() == 1 { "is" } else { "are" },
                by.join(", ")
            )
        }
    };
    shorten(text, NOTE_MAX)
}

/// Cuts `text` to `max` bytes at a character boundary, ending in "…".
fn shorten(mut text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let mut cut = max - '…'.len_utf8();
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text.truncate(cut);
    text.push('…');
    text
}

/// A token bucket.
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn take(&mut self, now: Instant) -> bool {
        let refill = now.duration_since(self.at).as_secs_f64() * REFILL_PER_SECOND;
        self.tokens = (self.tokens + refill).min(BURST);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Writes the queued changes until `shutdown`. A change over its object's rate is
/// dropped (counted); a write that fails is counted and logged once, until one
/// succeeds again. Nothing here can hold the zone back.
pub async fn run(
    mut changes: mpsc::Receiver<Change>,
    recorder: Recorder,
    metrics: EventMetrics,
    shutdown: CancellationToken,
) {
    let mut buckets: HashMap<String, Bucket> = HashMap::new();
    let mut failing = false;
    loop {
        let change = tokio::select! {
            () = shutdown.cancelled() => return,
            change = changes.recv() => match change {
                Some(change) => change,
                None => return,
            },
        };
        let now = Instant::now();
        // A full bucket is as good as none: forget those, or the map grows with every
        // object ever seen.
        if buckets.len() > 4 * QUEUE {
            buckets.retain(|_, b| {
                b.tokens + now.duration_since(b.at).as_secs_f64() * REFILL_PER_SECOND < BURST
            });
        }
        let bucket = buckets.entry(change.uid.clone()).or_insert(Bucket {
            tokens: BURST,
            at: now,
        });
        if !bucket.take(now) {
            metrics.count("dropped");
            continue;
        }
        let written = tokio::select! {
            () = shutdown.cancelled() => return,
            written = recorder.record(&change) => written,
        };
        match written {
            Ok(written) => {
                if failing {
                    tracing::info!("Events are written again");
                    failing = false;
                }
                metrics.count(match written {
                    Written::Created => "written",
                    Written::Series => "series",
                    Written::Duplicate => "duplicate",
                });
            }
            Err(error) => {
                metrics.count("failed");
                if !failing {
                    tracing::warn!(object = %change.object, %error, "cannot write an Event (the names still serve; logged once until a write succeeds)");
                    failing = true;
                }
            }
        }
    }
}

impl EventMetrics {
    fn count(&self, result: &'static str) {
        self.events.get_or_create(&EventLabels { result }).inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::Skip;

    fn change(outcome: Outcome) -> Change {
        Change {
            object: ObjectRef::new("HTTPRoute", "media", "immich"),
            api_version: "gateway.networking.k8s.io/v1".into(),
            uid: "0b7e1a2c-5d4f-4e1b-9a8c-3f2d1e0c9b8a".into(),
            outcome,
            previous: None,
            at_start: false,
        }
    }

    #[test]
    fn the_event_names_the_object_and_says_what_it_publishes() {
        let published = change(Outcome::Published(vec![
            "immich.home.example A 192.168.10.50".into(),
        ]));
        let event = event_for(&published, "k8s-gateway-0", Timestamp::UNIX_EPOCH);
        let regarding = event.regarding.as_ref().unwrap();
        assert_eq!(regarding.kind.as_deref(), Some("HTTPRoute"));
        assert_eq!(regarding.uid.as_deref(), Some(published.uid.as_str()));
        assert_eq!(event.metadata.namespace.as_deref(), Some("media"));
        assert_eq!(event.reason.as_deref(), Some("Published"));
        assert_eq!(event.type_.as_deref(), Some("Normal"));
        assert_eq!(
            event.note.as_deref(),
            Some("Publishes immich.home.example A 192.168.10.50")
        );
        // The same change is the same name in every replica; another outcome is not.
        let again = event_for(&published, "k8s-gateway-1", Timestamp::now());
        assert_eq!(event.metadata.name, again.metadata.name);
        let refused = change(Outcome::NotPublished {
            reasons: vec![Skip::NotAccepted],
            detail: "parent gateway/gw: not accepted".into(),
        });
        let other = event_for(&refused, "k8s-gateway-0", Timestamp::UNIX_EPOCH);
        assert_ne!(event.metadata.name, other.metadata.name);
        assert_eq!(other.reason.as_deref(), Some("NotPublished"));
    }

    #[test]
    fn a_mistake_is_a_warning_and_the_note_is_at_most_1_kib() {
        let invalid = change(Outcome::NotPublished {
            reasons: vec![Skip::InvalidField],
            detail: "x".repeat(5000),
        });
        let event = event_for(&invalid, "a", Timestamp::UNIX_EPOCH);
        assert_eq!(event.type_.as_deref(), Some("Warning"));
        let note = event.note.unwrap();
        assert!(
            note.len() <= NOTE_MAX && note.ends_with('…'),
            "{}",
            note.len()
        );
    }

    #[test]
    fn the_bucket_allows_a_burst_then_one_a_second() {
        let start = Instant::now();
        let mut bucket = Bucket {
            tokens: BURST,
            at: start,
        };
        let allowed = (0..100).filter(|_| bucket.take(start)).count();
        assert_eq!(allowed, 25);
        assert!(bucket.take(start + Duration::from_secs(1)));
        assert!(!bucket.take(start + Duration::from_secs(1)));
    }
}
