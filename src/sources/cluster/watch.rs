//! One watch per kind and scope: list, then follow events, into the feed's object set.
//!
//! A relist is buffered from `Init` to `InitDone` and swapped in whole, so the zone never
//! sees half a list (as kube-runtime's reflector store does). The watcher resumes with
//! backoff after errors and relists after 410 Gone. The task is supervised: after a
//! panic it starts again with a fresh watcher, which relists.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::StreamExt;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use tokio::task::JoinHandle;
use tracing::Instrument;

use super::listed::ListedObject;
use super::{Shared, SyncState};
use crate::metrics::TaskLabels;
use crate::sources::kind::Kind;
use crate::sources::objects::{Key, Stored};
use crate::supervise::supervise;

/// Why a watch failed, as the `reason` label of the watch-error metric says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Failure {
    Forbidden,
    NotFound,
    /// 410 Gone: the API server's normal way of saying "relist".
    Expired,
    Unauthorized,
    ApiError,
    Protocol,
    Connection,
    /// An object that does not decode into our type (named in the warning), an object of
    /// another kind, or a watch line that is no event.
    InvalidObject,
}

impl Failure {
    pub fn as_str(self) -> &'static str {
        match self {
            Failure::Forbidden => "forbidden",
            Failure::NotFound => "not_found",
            Failure::Expired => "expired",
            Failure::Unauthorized => "unauthorized",
            Failure::ApiError => "api_error",
            Failure::Protocol => "protocol",
            Failure::Connection => "connection",
            Failure::InvalidObject => "invalid_object",
        }
    }

    /// Classifies a watcher error by its HTTP status, when it has one.
    pub fn of(error: &watcher::Error) -> Failure {
        let status = match error {
            watcher::Error::InitialListFailed(kube::Error::Api(s))
            | watcher::Error::WatchStartFailed(kube::Error::Api(s))
            | watcher::Error::WatchFailed(kube::Error::Api(s)) => Some(s.code),
            watcher::Error::WatchError(s) => Some(s.code),
            _ => None,
        };
        match (status, error) {
            // An event line that is not a watch event with an object (kube reports it
            // and the watch goes on).
            (None, watcher::Error::WatchFailed(kube::Error::SerdeError(_))) => {
                Failure::InvalidObject
            }
            // kube reads a JSON line that is not a watch event as a Status when it can;
            // any object can, with code 0, which no API error has.
            (Some(0), watcher::Error::WatchFailed(_)) => Failure::InvalidObject,
            (Some(403), _) => Failure::Forbidden,
            (Some(404), _) => Failure::NotFound,
            (Some(410), _) => Failure::Expired,
            (Some(401), _) => Failure::Unauthorized,
            (Some(_), _) => Failure::ApiError,
            (None, watcher::Error::NoResourceVersion) => Failure::Protocol,
            (None, _) => Failure::Connection,
        }
    }
}

/// Starts watching `kind` in `scope` (one namespace, or all), restarting the watch if
/// it panics.
pub(super) fn spawn(
    shared: Arc<Shared>,
    kind: &'static dyn Kind,
    api: Api<ListedObject>,
    scope: Option<String>,
    config: watcher::Config,
) -> JoinHandle<()> {
    let restarts = (shared.metrics.task_restarts)
        .get_or_create(&TaskLabels { task: "watch" })
        .clone();
    let task = format!("watch {}", kind.label());
    // In the span of the cluster, with `--cluster`: its log lines name it.
    tokio::spawn(
        async move {
            supervise(&task, restarts, || {
                watch(
                    shared.clone(),
                    kind,
                    api.clone(),
                    scope.clone(),
                    config.clone(),
                )
            })
            .await;
        }
        .in_current_span(),
    )
}

/// Lists and follows `kind` in `scope` until the watcher gives up (it does not).
async fn watch(
    shared: Arc<Shared>,
    kind: &'static dyn Kind,
    api: Api<ListedObject>,
    scope: Option<String>,
    config: watcher::Config,
) {
    {
        let stream = watcher(api, config).default_backoff();
        futures::pin_mut!(stream);
        // A list's objects in arrival order, laid out once it is complete.
        let mut listing: Vec<(Key, Stored)> = Vec::new();
        while let Some(event) = stream.next().await {
            match event {
                Ok(watcher::Event::Init) => listing.clear(),
                Ok(watcher::Event::InitApply(object)) => {
                    listing.extend(decode(&shared, kind, object));
                }
                Ok(watcher::Event::InitDone) => {
                    // Sorted, the last of equal keys kept.
                    let listed = std::mem::take(&mut listing).into_iter().collect();
                    listed_in_full(&shared, kind, scope.as_deref(), listed);
                }
                Ok(watcher::Event::Apply(object)) => {
                    if let Some((key, object)) = decode(&shared, kind, object) {
                        shared.change(kind, |set| set.apply(kind, key, object));
                    }
                }
                Ok(watcher::Event::Delete(object)) => {
                    let key = key_of(&object);
                    shared.change(kind, |set| set.delete(kind, &key));
                }
                Err(error) => report(&shared, kind, &error),
            }
        }
    }
}

/// A complete list is in: it replaces the scope's objects in one step.
fn listed_in_full(
    shared: &Shared,
    kind: &'static dyn Kind,
    scope: Option<&str>,
    listed: BTreeMap<Key, Stored>,
) {
    shared.change(kind, |set| set.replace(kind, scope, listed));
    let every_scope = shared.listed_in(kind, scope);
    if shared.state(kind) != Some(SyncState::Synced) {
        tracing::info!(
            kind = %kind.label(),
            namespace = scope.unwrap_or("(all)"),
            "listed"
        );
    }
    if every_scope {
        shared.forget_warnings(kind);
        shared.set_state(kind, SyncState::Synced);
    }
}

fn key_of(object: &ListedObject) -> Key {
    crate::sources::shared::key(&object.metadata)
}

/// Turns an object into our slimmed type; one that does not fit is reported with the
/// field, and skipped.
fn decode(shared: &Shared, kind: &dyn Kind, object: ListedObject) -> Option<(Key, Stored)> {
    let key = key_of(&object);
    let name = format!("{}/{}", key.0, key.1);
    // A watch of Services carries Services; an object that says it is of another kind
    // would be read as one only by the fields the two happen to share.
    if let Some(types) = &object.types
        && types.kind != kind.api_kind()
    {
        shared.count_failure(kind, Failure::InvalidObject);
        tracing::warn!(
            kind = %kind.label(),
            object = %name,
            "skipped: the API sent an object of kind {:?} ({}) on the watch of {}",
            types.kind,
            types.api_version,
            kind.label()
        );
        return None;
    }
    match kind.decode(serde_json::Value::Object(object.fields)) {
        // The object's own key: a kept Service's shares its reference's strings.
        Ok(object) => Some((object.key(), object)),
        Err(e) => {
            shared.count_failure(kind, Failure::InvalidObject);
            tracing::warn!(
                kind = %kind.label(),
                object = %name,
                "skipped: field {}: {}",
                e.path(),
                e.inner()
            );
            None
        }
    }
}

/// Counts a watch error and says what it means, once per kind and reason.
fn report(shared: &Shared, kind: &dyn Kind, error: &watcher::Error) {
    let failure = Failure::of(error);
    shared.count_failure(kind, failure);
    shared.note_error(kind, failure, error);
    let state = shared.state(kind);
    let label = kind.label();
    match failure {
        Failure::Expired => tracing::debug!(kind = %label, "watch expired (410 Gone): relisting"),
        Failure::Forbidden => {
            if shared.warn_once(kind, failure) {
                tracing::warn!(
                    kind = %label,
                    group = %kind.group(),
                    "not allowed to list or watch {label}: the service account needs get, list and watch on it (RBAC); skipped until allowed: {error}",
                );
            }
            if state != Some(SyncState::Synced) {
                shared.set_state(kind, SyncState::Forbidden);
            }
        }
        Failure::NotFound => {
            if shared.warn_once(kind, failure) {
                tracing::warn!(
                    kind = %label,
                    "the API no longer serves {label} (CRD removed?): keeping the last objects until discovery confirms",
                );
            }
            if state != Some(SyncState::Synced) {
                shared.set_state(kind, SyncState::NotServed);
            }
        }
        Failure::InvalidObject => {
            // Every such event is counted; the warning is said once until the next list.
            if shared.warn_once(kind, failure) {
                tracing::warn!(
                    kind = %label,
                    "skipped a watch event that does not decode (the rest of the watch goes on): {error}"
                );
            }
        }
        _ => {
            if shared.warn_once(kind, failure) {
                tracing::warn!(
                    kind = %label,
                    reason = failure.as_str(),
                    "watch failed, serving the last zone and retrying with backoff: {error}"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_get_a_reason() {
        let status = |code| {
            Box::new(kube::core::Status {
                code,
                ..kube::core::Status::default()
            })
        };
        let api = |code| kube::Error::Api(status(code));
        // (error, reason)
        let cases = [
            (watcher::Error::InitialListFailed(api(403)), "forbidden"),
            (watcher::Error::WatchStartFailed(api(404)), "not_found"),
            (watcher::Error::WatchError(status(410)), "expired"),
            (watcher::Error::NoResourceVersion, "protocol"),
            (
                watcher::Error::WatchFailed(kube::Error::SerdeError(
                    serde_json::from_str::<u8>("{").unwrap_err(),
                )),
                "invalid_object",
            ),
            (watcher::Error::WatchFailed(api(0)), "invalid_object"),
            (watcher::Error::WatchFailed(api(500)), "api_error"),
        ];
        for (error, reason) in cases {
            assert_eq!(Failure::of(&error).as_str(), reason, "{error}");
        }
    }
}
