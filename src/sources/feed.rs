//! The one object set every feeder fills: the manifests folder reloads its layer whole,
//! the cluster watches change theirs object by object, and the rebuild loop
//! ([`crate::rebuild`]) reads a snapshot of both when they say something changed.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use tokio::sync::Notify;

use super::objects::ObjectSet;

/// Locks a mutex; a panic elsewhere while holding it leaves data that is still whole.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// What the feeders fill and the rebuild loop reads. Shared by `Arc`.
///
/// Two layers: what the cluster watches change ([`Feed::update`]) and what the
/// manifests folder reloads whole ([`Feed::replace`]). With both sources, an object in
/// both (same kind, namespace and name) is the cluster's: the live object carries the
/// status (the addresses) that a file copy of the same manifest lacks.
#[derive(Default)]
pub struct Feed {
    objects: Mutex<ObjectSet>,
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

    /// Changes the cluster's objects; `change` returns whether anything changed.
    pub fn update(&self, change: impl FnOnce(&mut ObjectSet) -> bool) {
        if change(&mut lock(&self.objects)) {
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

    /// The objects as the next zone is built from them: the files under the cluster.
    pub(crate) fn snapshot(&self) -> ObjectSet {
        let files = lock(&self.files).clone();
        ObjectSet::layered(files, lock(&self.objects).clone())
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
