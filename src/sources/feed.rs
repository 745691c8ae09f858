//! The one object set every feeder fills: the manifests folder reloads its layer whole,
//! the cluster watches change theirs object by object, and the rebuild loop
//! ([`crate::rebuild`]) reads a snapshot of them when they say something changed.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

use super::objects::ObjectSet;

/// Locks a mutex; a panic elsewhere while holding it leaves data that is still whole.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// What the feeders fill and the rebuild loop reads. Shared by `Arc`.
///
/// Layers: what each cluster's watches change ([`Feed::update_cluster`]) and what the
/// manifests folder reloads whole ([`Feed::replace`]). With one cluster and files, an
/// object in both (same kind, namespace and name) is the cluster's: the live object
/// carries the status (the addresses) that a file copy of the same manifest lacks.
/// With several `--cluster`s, each cluster's objects and the files' are sets of their
/// own (see [`Feed::snapshot`]).
#[derive(Default)]
pub struct Feed {
    /// Each cluster's objects, in `--cluster` order (one, unnamed, without `--cluster`).
    clusters: Mutex<Vec<Layer>>,
    /// The manifests' objects, under the cluster's.
    files: Mutex<ObjectSet>,
    /// Set when the objects changed since the last rebuild.
    dirty: AtomicBool,
    /// Set when the last change was a whole reload ([`Feed::replace`]): the reload
    /// already took in every event of its save, so the rebuild need not wait for more.
    whole: AtomicBool,
    changed: Notify,
    /// What has not been read in full yet (a kind's first list): no zone before.
    pending: Mutex<BTreeSet<String>>,
}

impl Feed {
    /// A feed holding the objects the first zone was built from: the first reload that
    /// reads them again rebuilds nothing.
    pub fn built_from(objects: ObjectSet) -> Self {
        Feed {
            files: Mutex::new(objects),
            ..Feed::default()
        }
    }

    /// Adds the layer of one cluster (`None`: the one cluster, without `--cluster`), in
    /// precedence order; returns the index its watches change it by.
    pub fn add_cluster(&self, name: Option<Arc<str>>) -> usize {
        let mut clusters = lock(&self.clusters);
        clusters.push(Layer {
            cluster: name,
            objects: ObjectSet::default(),
        });
        clusters.len() - 1
    }

    /// Changes the objects of the first cluster (added if there is none yet).
    pub fn update(&self, change: impl FnOnce(&mut ObjectSet) -> bool) {
        if lock(&self.clusters).is_empty() {
            self.add_cluster(None);
        }
        self.update_cluster(0, change);
    }

    /// Changes the objects of the cluster added as `index`; `change` returns whether
    /// anything changed.
    pub fn update_cluster(&self, index: usize, change: impl FnOnce(&mut ObjectSet) -> bool) {
        let changed = lock(&self.clusters)
            .get_mut(index)
            .is_some_and(|layer| change(&mut layer.objects));
        if changed {
            self.dirty.store(true, Ordering::Release);
            self.changed.notify_one();
        }
    }

    /// Replaces every object of the manifests at once (a reload). A reload that read
    /// the same objects (a file touched, an editor's temporary file) rebuilds nothing.
    pub fn replace(&self, objects: ObjectSet) {
        let mut files = lock(&self.files);
        if !files.same_objects(&objects) {
            *files = objects;
            drop(files);
            self.whole.store(true, Ordering::Release);
            self.dirty.store(true, Ordering::Release);
            self.changed.notify_one();
        }
    }

    /// `what` must be read in full before the first zone is built.
    pub fn wait_for(&self, what: &str) {
        lock(&self.pending).insert(what.to_string());
    }

    /// `what` has been read in full (or will never be: not served, forbidden).
    pub fn settled(&self, what: &str) {
        if lock(&self.pending).remove(what) {
            self.changed.notify_one();
        }
    }

    /// Whether everything waited for has been read in full.
    pub(crate) fn all_settled(&self) -> bool {
        lock(&self.pending).is_empty()
    }

    /// The objects as the next zone is built from them, as sets whose objects refer only
    /// to each other (a route to its own cluster's Gateway): without `--cluster`, one set,
    /// the files under the cluster; with several, each cluster's in `--cluster` order,
    /// then the files' alone.
    pub(crate) fn snapshot(&self) -> Vec<Layer> {
        let files = lock(&self.files).clone();
        let clusters = lock(&self.clusters);
        match clusters.as_slice() {
            [] => vec![Layer {
                cluster: None,
                objects: files,
            }],
            [one] if one.cluster.is_none() => vec![Layer {
                cluster: None,
                objects: ObjectSet::layered(files, one.objects.clone()),
            }],
            several => several
                .iter()
                .cloned()
                .chain([Layer {
                    cluster: None,
                    objects: files,
                }])
                .collect(),
        }
    }

    /// Wakes the rebuild loop on every change, and when something waited for settles.
    pub(crate) fn changed(&self) -> &Notify {
        &self.changed
    }

    /// Whether the objects changed since the last call.
    pub(crate) fn take_dirty(&self) -> bool {
        self.dirty.swap(false, Ordering::AcqRel)
    }

    /// Whether the last change was a whole reload, since the last call.
    pub(crate) fn take_whole(&self) -> bool {
        self.whole.swap(false, Ordering::AcqRel)
    }
}

/// One source's objects: a cluster's (named with `--cluster`), or the files and the one
/// cluster (`None`). Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Layer {
    pub cluster: Option<Arc<str>>,
    pub objects: ObjectSet,
}

impl Layer {
    /// The objects of no named cluster: the files and the one cluster.
    pub fn unnamed(objects: ObjectSet) -> Self {
        Layer {
            cluster: None,
            objects,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::testing::service;

    #[test]
    fn a_reload_of_the_same_objects_is_not_a_change() {
        let read = |ip| {
            let mut set = ObjectSet::default();
            set.add(service("web", "apps").lb_ip(ip).build());
            set
        };
        let feed = Feed::built_from(read("10.0.0.1"));
        feed.replace(read("10.0.0.1"));
        assert!(!feed.take_dirty());
        feed.replace(read("10.0.0.2"));
        assert!(feed.take_dirty());
    }
}
