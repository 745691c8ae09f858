//! The one rebuild loop: objects in, a new zone swapped in, for every feeder.
//!
//! It sits between the sources and the zone: the feeders (the manifests folder, the
//! cluster watches) only change the [`Feed`]'s object set and say so; the sources' kinds
//! turn a snapshot of it into entries, and [`zone`] builds the zone from them. The loop coalesces a burst of changes (a Flux reconcile
//! touching 200 objects rebuilds the zone a few times, not 200), builds the zone off the
//! async workers, and swaps it in. Metrics and logs of a rebuild are the [`Observer`]'s,
//! which reads its result.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::Filters;
use crate::metrics::{ClusterLabel, SkipLabels, ZoneKindLabels, ZoneLabels, ZoneMetrics};
use crate::sources::cluster::events::{Change, EventQueue};
use crate::sources::feed::{Layer, lock};
use crate::sources::{Feed, ObjectSet, kind};
use crate::zone::outcome::{self, Fingerprints};
use crate::zone::{self, ObjectRef, Settings, SharedZone, Zone};

/// How long the rebuild waits for the changes of a burst to stop arriving.
const QUIET: Duration = Duration::from_millis(100);
/// The longest a rebuild waits in a burst that does not stop: a change must reach the
/// answers within a second.
const MAX_WAIT: Duration = Duration::from_millis(500);

/// What gives the memory a rebuild freed back to the system. The allocator is the
/// binary's choice, and this library has no unsafe code: `main` sets it once.
static RELEASE_FREE_MEMORY: OnceLock<fn()> = OnceLock::new();

/// Sets what runs after each rebuild has dropped the zone it replaced (glibc's
/// `malloc_trim`: without it the allocator keeps a load's peak resident for reuse).
pub fn release_free_memory_with(release: fn()) {
    let _ = RELEASE_FREE_MEMORY.set(release);
}

/// Rebuilds the zone after changes, until `shutdown`. Before everything has settled the
/// zone stays empty and queries get SERVFAIL, never half a cluster; after that, a
/// source that goes away leaves the last good zone serving.
pub async fn run(feed: Arc<Feed>, rebuilder: Arc<Rebuilder>, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = feed.changed().notified() => {}
        }
        if !settle(&feed, &shutdown).await {
            return;
        }
        let first_zone = rebuilder.zone().load().is_none();
        if first_zone && !feed.all_settled() {
            continue;
        }
        if !feed.take_dirty() && !first_zone {
            continue;
        }
        let objects = feed.snapshot();
        let rebuilder = rebuilder.clone();
        // Thousands of objects take milliseconds: off the async workers.
        let built = tokio::task::spawn_blocking(move || rebuilder.rebuild_layers(&objects)).await;
        if first_zone && built.is_ok() {
            tracing::info!("every kind read: serving");
        }
    }
}

/// Waits until the changes have been quiet for [`QUIET`], or [`MAX_WAIT`] after the
/// first; not at all after a whole reload of the manifests, which took in the events of
/// its save while reading (at 100,000 Services the wait was a tenth of the change's
/// second). False when shutting down.
async fn settle(feed: &Feed, shutdown: &CancellationToken) -> bool {
    if feed.take_whole() {
        return !shutdown.is_cancelled();
    }
    let first = Instant::now();
    loop {
        let left = MAX_WAIT.saturating_sub(first.elapsed());
        if left.is_zero() {
            return true;
        }
        tokio::select! {
            () = shutdown.cancelled() => return false,
            () = tokio::time::sleep(QUIET.min(left)) => return true,
            () = feed.changed().notified() => {}
        }
    }
}

/// Builds zones and swaps them in. Shared by `Arc`.
pub struct Rebuilder {
    settings: Settings,
    filters: Filters,
    zone: SharedZone,
    observer: Observer,
    /// The serial of the zone last swapped in, for whoever follows it (NOTIFY, `render`).
    serials: watch::Sender<u32>,
    /// With `--events`: where the objects whose outcome changed go.
    events: OnceLock<Events>,
}

/// What `--events` keeps between rebuilds.
struct Events {
    queue: EventQueue,
    /// The outcomes of the last zone; `None` before the first.
    seen: Mutex<Option<Fingerprints>>,
}

impl Rebuilder {
    pub fn new(
        settings: Settings,
        filters: Filters,
        zone: SharedZone,
        metrics: ZoneMetrics,
    ) -> Self {
        Rebuilder {
            settings,
            filters,
            zone,
            observer: Observer::new(metrics),
            serials: watch::Sender::new(0),
            events: OnceLock::new(),
        }
    }

    /// From now on, hands every object whose outcome changes (what it publishes, or
    /// why not) to `queue`, to be recorded as an Event on it. Set once.
    pub fn record_events(&self, queue: EventQueue) {
        let _ = self.events.set(Events {
            queue,
            seen: Mutex::new(None),
        });
    }

    pub fn zone(&self) -> &SharedZone {
        &self.zone
    }

    /// Follows the serial of every zone swapped in from now on; only a new serial
    /// wakes the receiver.
    pub fn subscribe(&self) -> watch::Receiver<u32> {
        self.serials.subscribe()
    }

    /// Builds a zone from `objects` (of no named cluster) and swaps it in whole.
    pub fn rebuild(&self, objects: &ObjectSet) -> Arc<Zone> {
        self.rebuild_layers(&[Layer::unnamed(objects.clone())])
    }

    /// Builds a zone from the objects of every layer (see [`Feed::snapshot`]) and swaps
    /// it in whole.
    pub fn rebuild_layers(&self, objects: &[Layer]) -> Arc<Zone> {
        let started = Instant::now();
        let found = kind::entries_of(objects, &self.filters);
        let entries_done = Instant::now();
        let previous = self.zone.load_full();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let zone = Arc::new(zone::build_with(
            found.entries,
            found.skipped,
            &self.settings,
            previous.as_deref(),
            u32::try_from(now).unwrap_or(u32::MAX),
        ));
        let built = Instant::now();
        // Observed first, then swapped: whoever sees the new answers also sees them
        // counted (a test, or an operator comparing a dig with a scrape).
        self.observer.observe(&Rebuilt {
            zone: &zone,
            previous: previous.as_deref(),
            started,
            objects,
        });
        self.zone.store(Some(zone.clone()));
        let swapped = Instant::now();
        log_change(previous.as_deref(), &zone);
        if let Some(events) = self.events.get() {
            events.offer_changes(&zone, objects);
        }
        let millis = |from: Instant, to: Instant| to.duration_since(from).as_millis();
        tracing::debug!(
            entries_ms = millis(started, entries_done),
            build_ms = millis(entries_done, built),
            observe_ms = millis(built, swapped),
            log_ms = millis(swapped, Instant::now()),
            "zone rebuilt"
        );
        self.serials
            .send_if_modified(|serial| std::mem::replace(serial, zone.serial()) != zone.serial());
        drop(previous);
        if let Some(release) = RELEASE_FREE_MEMORY.get() {
            release();
        }
        zone
    }
}

impl Events {
    /// Compares each object's outcome in `zone` with the last zone's, after the swap
    /// (the answers do not wait for it), and queues the changes of objects read from
    /// the API; the queue never blocks.
    fn offer_changes(&self, zone: &Zone, layers: &[Layer]) {
        let mut seen = lock(&self.seen);
        let at_start = seen.is_none();
        let previous = seen.take().unwrap_or_default();
        let (changed, fingerprints) = outcome::changes(&previous, outcome::outcomes(zone));
        *seen = Some(fingerprints);
        drop(seen);
        for (object, outcome) in changed {
            // The object's own cluster's layer: the files' objects (in no named
            // layer beside `--cluster`s) have no API identity and are passed over.
            let identity = (layers.iter())
                .filter(|layer| layer.cluster == object.cluster)
                .find_map(|layer| layer.objects.api_identity(&object));
            let Some((api_version, uid)) = identity else {
                continue;
            };
            self.queue.offer(Change {
                previous: previous.get(&object).copied(),
                api_version: api_version.into_owned(),
                uid: uid.to_string(),
                object,
                outcome,
                at_start,
            });
        }
    }
}

/// One rebuild's result, as the observer sees it.
pub struct Rebuilt<'a> {
    pub zone: &'a Zone,
    pub previous: Option<&'a Zone>,
    pub started: Instant,
    pub objects: &'a [Layer],
}

/// Metrics and logs of each rebuild: one line when the records change, a warning for
/// each newly skipped object.
pub struct Observer {
    metrics: ZoneMetrics,
    /// Skips already reported, so a reload does not repeat every warning.
    warned: Mutex<HashSet<(ObjectRef, String)>>,
}

impl Observer {
    pub fn new(metrics: ZoneMetrics) -> Self {
        Observer {
            metrics,
            warned: Mutex::default(),
        }
    }

    pub fn observe(&self, rebuilt: &Rebuilt<'_>) {
        let (m, zone) = (&self.metrics, rebuilt.zone);
        m.builds.inc();
        m.build_seconds
            .observe(rebuilt.started.elapsed().as_secs_f64());
        m.serial.set(i64::from(zone.serial()));
        if rebuilt.previous.is_none_or(|p| p.serial() != zone.serial()) {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            m.last_change.set(now);
        }
        self.count_records(zone);
        self.report_skips(rebuilt);
    }

    fn count_records(&self, zone: &Zone) {
        let m = &self.metrics;
        m.records.clear();
        m.names.clear();
        for authority in zone.authorities() {
            let domain = authority.origin().to_string();
            let mut names = 0;
            // Counted here first: one metric update per kind, not one per record. A few
            // kinds, their labels shared strings: a short list, no hashing (this runs
            // before the zone is swapped in).
            // With several `--cluster`s, per cluster and kind.
            let mut by_kind: Vec<(&str, Option<&str>, i64)> = Vec::new();
            for node in authority.nodes() {
                if !node.is_empty_non_terminal() {
                    names += 1;
                }
                for origins in node.origins() {
                    let first = origins.first();
                    let kind = first.map_or("zone", |o| &*o.kind);
                    let cluster = first.and_then(|o| o.cluster.as_deref());
                    match by_kind
                        .iter_mut()
                        .find(|(k, c, _)| (std::ptr::eq(*k, kind) || *k == kind) && *c == cluster)
                    {
                        Some((_, _, count)) => *count += 1,
                        None => by_kind.push((kind, cluster, 1)),
                    }
                }
            }
            for (kind, cluster, count) in by_kind {
                let labels = ZoneKindLabels {
                    cluster: ClusterLabel(cluster.map(str::to_owned)),
                    zone: domain.clone(),
                    kind: kind.to_string(),
                };
                m.records.get_or_create(&labels).inc_by(count);
            }
            m.names
                .get_or_create(&ZoneLabels { zone: domain })
                .set(names);
        }
    }

    fn report_skips(&self, rebuilt: &Rebuilt<'_>) {
        let m = &self.metrics;
        m.skipped.clear();
        let mut warned = lock(&self.warned);
        let mut still = HashSet::new();
        for skip in &rebuilt.zone.claims().dropped {
            let labels = SkipLabels {
                cluster: ClusterLabel(skip.object.cluster.as_deref().map(str::to_owned)),
                kind: skip.object.kind.to_string(),
                reason: skip.reason.to_string(),
            };
            m.skipped.get_or_create(&labels).inc();
            let key = (skip.object.clone(), skip.detail.clone());
            if !warned.contains(&key) {
                let location = (rebuilt.objects.iter())
                    .filter(|layer| layer.cluster == skip.object.cluster)
                    .find_map(|layer| layer.objects.location(&skip.object))
                    .unwrap_or("");
                if skip.reason.is_mistake() {
                    tracing::warn!(object = %skip.object, location, "skipped: {}", skip.detail);
                } else {
                    tracing::debug!(object = %skip.object, location, reason = %skip.reason, "not published: {}", skip.detail);
                }
            }
            still.insert(key);
        }
        *warned = still;
    }
}

/// Logs how the names changed, after the new zone is swapped in: comparing every name
/// of two zones of 100,000 Services takes a tenth of a second that the answers need not
/// wait for.
fn log_change(previous: Option<&Zone>, zone: &Zone) {
    if previous.is_some_and(|p| p.serial() == zone.serial()) {
        return;
    }
    let (added, removed) = previous.map_or((zone.name_count(), 0), |p| name_diff(p, zone));
    tracing::info!(
        serial = zone.serial(),
        names = zone.name_count(),
        added,
        removed,
        "zone changed"
    );
}

/// Names (with records) added and removed between two zones.
fn name_diff(old: &Zone, new: &Zone) -> (usize, usize) {
    (names_missing(new, old), names_missing(old, new))
}

/// How many names with records `zone` has that `other` has not (looked up one by one:
/// no copy of either zone's names).
fn names_missing(zone: &Zone, other: &Zone) -> usize {
    let mut missing = 0;
    for authority in zone.authorities() {
        missing += match (other.authorities().iter()).find(|a| a.origin() == authority.origin()) {
            Some(theirs) => authority.names_not_in(theirs),
            None => (authority.nodes())
                .filter(|n| !n.is_empty_non_terminal())
                .count(),
        };
    }
    missing
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::testing::service;
    use arc_swap::ArcSwapOption;
    use hickory_proto::rr::{LowerName, Name};
    use prometheus_client::registry::Registry;

    #[test]
    fn the_names_added_and_removed_are_counted_without_empty_non_terminals() {
        let settings = Settings::with_defaults(vec![Name::from_ascii("home.example.").unwrap()]);
        let zone = |names: &[&str]| {
            let entries = names.iter().map(|n| zone::Entry {
                name: zone::EntryName::Absolute(Name::from_ascii(n).unwrap()),
                data: zone::RecordData::Address("10.0.0.1".parse().unwrap()),
                ttl: None,
                kind: zone::Kind::Service,
                object: ObjectRef::new("Service", "apps", n),
            });
            zone::build(entries, &settings, None, 1)
        };
        let old = zone(&["a.home.example.", "b.home.example.", "x.deep.home.example."]);
        let new = zone(&[
            "b.home.example.",
            "c.home.example.",
            "d.home.example.",
            "deep.home.example.",
        ]);
        // Added c, d and deep (an empty non-terminal before); removed a and x.deep.
        assert_eq!(name_diff(&old, &new), (3, 2));
        assert_eq!(name_diff(&new, &new), (0, 0));
    }

    /// The loop builds the first zone once what it waits for has settled, with the
    /// objects fed before, and follows later changes.
    #[tokio::test]
    async fn the_loop_builds_once_settled_and_follows_changes() {
        let domains = vec![Name::from_ascii("home.example.").unwrap()];
        let metrics = crate::metrics::Metrics::new(&domains, &mut Registry::default());
        let zone: SharedZone = Arc::new(ArcSwapOption::empty());
        let rebuilder = Arc::new(Rebuilder::new(
            Settings::with_defaults(domains),
            Filters::default(),
            zone.clone(),
            metrics.zone.clone(),
        ));
        let mut serials = rebuilder.subscribe();
        let feed = Arc::new(Feed::default());
        feed.wait_for("Service");
        let stop = CancellationToken::new();
        let task = tokio::spawn(run(feed.clone(), rebuilder, stop.clone()));
        let web = |ip| service("web", "apps").lb_ip(ip).build();
        feed.update(|set| {
            set.add(web("10.0.0.1"));
            true
        });
        feed.settled("Service");
        let name = LowerName::from(Name::from_ascii("web.apps.home.example.").unwrap());
        let first = serials
            .wait_for(|_| zone.load().is_some())
            .await
            .map(|s| *s);
        assert!(first.is_ok());
        let answer =
            |zone: &Zone| format!("{:?}", zone.lookup(&name, hickory_proto::rr::RecordType::A));
        assert!(answer(&zone.load_full().unwrap()).contains("10.0.0.1"));

        feed.update(|set| {
            set.add(web("10.0.0.2"));
            true
        });
        serials.changed().await.unwrap();
        assert!(answer(&zone.load_full().unwrap()).contains("10.0.0.2"));
        stop.cancel();
        task.await.unwrap();
    }
}
