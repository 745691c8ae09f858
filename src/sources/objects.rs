//! The object set: every object the zone is built from, whichever feeder read it.
//!
//! Objects are kept slimmed, by kind and `(namespace, name)`, behind `Arc`s: a snapshot
//! for a rebuild copies a few pointers, and a change to one kind copies only that kind's
//! index, and only while a rebuild still holds the old one.

use std::any::{Any, TypeId};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::IGNORE_LABEL;
use super::kind::{Kind, Source};
use crate::zone::ObjectRef;

/// `(namespace, name)`: the identity of an object within its kind.
pub type Key = (String, String);

/// One slimmed object of some kind. Cheap to clone.
pub type Stored = Arc<dyn Object>;

/// An object of any kind, as the set holds it.
pub trait Object: Any + Debug + Send + Sync {
    /// Whether `other` is the same object with the same content (a watch event that
    /// changes nothing the zone reads does not rebuild it).
    fn same(&self, other: &dyn Object) -> bool;
}

impl<T: Source> Object for T {
    fn same(&self, other: &dyn Object) -> bool {
        (other as &dyn Any).downcast_ref::<T>() == Some(self)
    }
}

/// The objects of one kind.
type Objects = BTreeMap<Key, Stored>;

/// Every object, by kind. Cloning is cheap (see the module comment).
#[derive(Clone, Debug, Default)]
pub struct ObjectSet {
    kinds: HashMap<TypeId, Arc<Objects>>,
    /// Where each object was read from ("file examples/apps.yaml"), for warnings.
    pub locations: HashMap<ObjectRef, Arc<str>>,
}

impl ObjectSet {
    /// Every object of type `T`, by namespace and name.
    pub fn all<T: Source>(&self) -> impl Iterator<Item = &T> {
        self.kinds
            .get(&TypeId::of::<T>())
            .into_iter()
            .flat_map(|objects| objects.values())
            .filter_map(|object| (&**object as &dyn Any).downcast_ref::<T>())
    }

    /// The objects of type `T` that may publish: all but those with the ignore label.
    pub fn published<T: Source>(&self) -> impl Iterator<Item = &T> {
        self.all::<T>().filter(|o| !ignored(o.meta()))
    }

    /// Adds (or replaces) one object as it is, keyed by its metadata. For tests and
    /// benchmarks; the feeders decode through [`Kind::decode`].
    pub fn add<T: Source>(&mut self, object: T) {
        let meta = object.meta();
        let key = (
            meta.namespace.clone().unwrap_or_default(),
            meta.name.clone().unwrap_or_default(),
        );
        self.slot(TypeId::of::<T>()).insert(key, Arc::new(object));
    }

    /// Inserts or replaces one object; returns whether anything changed.
    pub fn apply(&mut self, kind: &dyn Kind, key: Key, object: Stored) -> bool {
        let same = self
            .of(kind)
            .and_then(|objects| objects.get(&key))
            .is_some_and(|old| old.same(&*object));
        if !same {
            self.slot(kind.id()).insert(key, object);
        }
        !same
    }

    /// Removes one object; returns whether it was there.
    pub fn delete(&mut self, kind: &dyn Kind, key: &Key) -> bool {
        if self
            .of(kind)
            .is_some_and(|objects| objects.contains_key(key))
        {
            self.slot(kind.id()).remove(key);
            true
        } else {
            false
        }
    }

    /// Replaces the objects of one kind in `scope` (one namespace, or all when `None`)
    /// with a complete list; returns whether anything changed.
    pub fn replace(&mut self, kind: &dyn Kind, scope: Option<&str>, objects: Objects) -> bool {
        let in_scope = |key: &Key| scope.is_none_or(|ns| key.0 == ns);
        let unchanged = self.of(kind).is_some_and(|old| {
            old.keys().filter(|k| in_scope(k)).count() == objects.len()
                && objects
                    .iter()
                    .all(|(k, v)| old.get(k).is_some_and(|o| o.same(&**v)))
        }) || (objects.is_empty() && self.len(kind) == 0);
        if !unchanged {
            let slot = self.slot(kind.id());
            slot.retain(|k, _| !in_scope(k));
            slot.extend(objects);
        }
        !unchanged
    }

    /// Forgets every object of a kind; returns whether there were any.
    pub fn clear(&mut self, kind: &dyn Kind) -> bool {
        self.kinds.remove(&kind.id()).is_some_and(|o| !o.is_empty())
    }

    /// How many objects of a kind are held.
    pub fn len(&self, kind: &dyn Kind) -> usize {
        self.of(kind).map_or(0, |objects| objects.len())
    }

    fn of(&self, kind: &dyn Kind) -> Option<&Objects> {
        self.kinds.get(&kind.id()).map(|o| &**o)
    }

    /// The objects of a kind, to change: copied first only if a snapshot shares them.
    fn slot(&mut self, id: TypeId) -> &mut Objects {
        Arc::make_mut(self.kinds.entry(id).or_default())
    }
}

/// Objects carrying [`IGNORE_LABEL`] with the value `"true"` publish nothing.
pub fn ignored(meta: &ObjectMeta) -> bool {
    meta.labels
        .as_ref()
        .and_then(|l| l.get(IGNORE_LABEL))
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::kind::Of;
    use crate::sources::testing::service;
    use k8s_openapi::api::core::v1::Service;

    const SERVICES: Of<Service> = Of::KIND;

    fn stored(name: &str, namespace: &str, ip: &str) -> (Key, Stored) {
        let key = (namespace.to_string(), name.to_string());
        (key, Arc::new(service(name, namespace).lb_ip(ip).build()))
    }

    #[test]
    fn an_event_that_changes_nothing_is_not_a_change() {
        let mut set = ObjectSet::default();
        let (key, web) = stored("web", "apps", "10.0.0.1");
        assert!(set.apply(&SERVICES, key.clone(), web.clone()));
        assert!(!set.apply(&SERVICES, key.clone(), web));
        let (_, moved) = stored("web", "apps", "10.0.0.2");
        assert!(set.apply(&SERVICES, key.clone(), moved));
        assert!(set.delete(&SERVICES, &key));
        assert!(!set.delete(&SERVICES, &key));
    }

    #[test]
    fn a_relist_replaces_only_its_namespace() {
        let mut set = ObjectSet::default();
        for (key, object) in [
            stored("a", "apps", "10.0.0.1"),
            stored("b", "media", "10.0.0.2"),
        ] {
            set.apply(&SERVICES, key, object);
        }
        let snapshot = set.clone();
        let relist: Objects = [stored("c", "apps", "10.0.0.3")].into_iter().collect();
        assert!(set.replace(&SERVICES, Some("apps"), relist.clone()));
        assert!(!set.replace(&SERVICES, Some("apps"), relist));
        let names: Vec<_> = set
            .all::<Service>()
            .map(|s| s.metadata.name.clone())
            .collect();
        assert_eq!(names, [Some("c".into()), Some("b".into())]);
        // The snapshot taken before is untouched.
        assert_eq!(snapshot.len(&SERVICES), 2);
        assert_eq!(snapshot.all::<Service>().count(), 2);
    }
}
