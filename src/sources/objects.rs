//! The object set: every object the zone is built from, whichever feeder read it.
//!
//! Objects are kept reduced to what the zone reads ([`Source::Kept`]), by kind and
//! `(namespace, name)`, behind `Arc`s: a snapshot for a rebuild copies a few pointers,
//! and a change to one kind copies only that kind's index, and only while a rebuild
//! still holds the old one.

use std::any::{Any, TypeId};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::IGNORE_LABEL;
use super::kind::{self, Kept, Kind, Source};
use crate::zone::ObjectRef;

/// `(namespace, name)`: the identity of an object within its kind. Shared strings: a
/// kept Service's key is its `ObjectRef`'s own namespace and name, not a third copy.
pub type Key = (Arc<str>, Arc<str>);

/// One kept object of some kind. Cheap to clone.
pub type Stored = Arc<dyn Object>;

/// An object of any kind, as the set holds it.
pub trait Object: Any + Debug + Send + Sync {
    /// Whether `other` is the same object with the same content (a watch event that
    /// changes nothing the zone reads does not rebuild it).
    fn same(&self, other: &dyn Object) -> bool;
    /// Its namespace and name.
    fn key(&self) -> Key;
    /// See [`Kept::uid`].
    fn uid(&self) -> Option<&str>;
}

impl<T: Kept> Object for T {
    fn same(&self, other: &dyn Object) -> bool {
        (other as &dyn Any).downcast_ref::<T>() == Some(self)
    }

    fn key(&self) -> Key {
        Kept::key(self)
    }

    fn uid(&self) -> Option<&str> {
        Kept::uid(self)
    }
}

/// One object, and where it was read from when that is a file ("file apps.yaml",
/// shared by every object of the file), for warnings.
#[derive(Clone, Debug)]
struct Held {
    object: Stored,
    location: Option<Arc<str>>,
}

/// The objects of one kind, as a feeder lists them.
pub type Objects = BTreeMap<Key, Stored>;

/// Every object, by kind. Cloning is cheap (see the module comment).
#[derive(Clone, Debug, Default)]
pub struct ObjectSet {
    kinds: HashMap<TypeId, Arc<BTreeMap<Key, Held>>>,
}

impl ObjectSet {
    /// What is kept of every object of type `T`, by namespace and name.
    pub fn all<T: Source>(&self) -> impl Iterator<Item = &T::Kept> {
        self.kinds
            .get(&TypeId::of::<T>())
            .into_iter()
            .flat_map(|objects| objects.values())
            .filter_map(|held| (&*held.object as &dyn Any).downcast_ref::<T::Kept>())
    }

    /// The objects of type `T` that may publish: all but those with the ignore label.
    pub fn published<T: Source>(&self) -> impl Iterator<Item = &T::Kept> {
        self.all::<T>().filter(|o| !o.ignored())
    }

    /// Adds (or replaces) one object, keyed by its metadata. For tests and benchmarks;
    /// the feeders decode through [`Kind::decode`].
    pub fn add<T: Source>(&mut self, object: T) {
        let object = Arc::new(object.keep()) as Stored;
        let key = object.key();
        self.slot(TypeId::of::<T>()).insert(
            key,
            Held {
                object,
                location: None,
            },
        );
    }

    /// The objects read from files, in reading order (a later definition of an object
    /// replaces an earlier one), each with where it was read. Laid out at once, sorted:
    /// a third of the time of inserting 100,000 objects one by one.
    pub fn from_read(read: Vec<(&dyn Kind, Stored, Option<Arc<str>>)>) -> ObjectSet {
        let mut by_kind: HashMap<TypeId, Vec<(Key, Held)>> = HashMap::new();
        for (kind, object, location) in read {
            let held = Held { object, location };
            by_kind
                .entry(kind.id())
                .or_default()
                .push((held.object.key(), held));
        }
        // `collect` sorts stably and keeps the last of equal keys.
        let kinds = by_kind
            .into_iter()
            .map(|(id, objects)| (id, Arc::new(objects.into_iter().collect())))
            .collect();
        ObjectSet { kinds }
    }

    /// Inserts or replaces one object; returns whether anything changed.
    pub fn apply(&mut self, kind: &dyn Kind, key: Key, object: Stored) -> bool {
        let old = self.of(kind).and_then(|objects| objects.get(&key));
        let same = old.is_some_and(|old| same_object(&old.object, &object));
        if !same {
            let held = Held {
                object,
                location: None,
            };
            self.slot(kind.id()).insert(key, held);
        }
        !same
    }

    /// Where an object was read from, when a file ("file apps.yaml").
    pub fn location(&self, object: &ObjectRef) -> Option<&str> {
        let kind = kind::KINDS.iter().find(|k| *k.label() == *object.kind)?;
        let key = (object.namespace.clone(), object.name.clone());
        self.of(*kind)?.get(&key)?.location.as_deref()
    }

    /// What an Event on an object read from the API names it by: its kind's
    /// `apiVersion` and its uid. `None` for an object read from a file (no API to
    /// record on), or without a uid.
    pub fn api_identity(&self, object: &ObjectRef) -> Option<(Cow<'static, str>, &str)> {
        let kind = kind::KINDS.iter().find(|k| *k.label() == *object.kind)?;
        let key = (object.namespace.clone(), object.name.clone());
        let held = self.of(*kind)?.get(&key)?;
        if held.location.is_some() {
            return None;
        }
        Some((kind.api_version(), held.object.uid()?))
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
        let in_scope = |key: &Key| scope.is_none_or(|ns| *key.0 == *ns);
        let unchanged = self.of(kind).is_some_and(|old| {
            old.keys().filter(|k| in_scope(k)).count() == objects.len()
                && objects
                    .iter()
                    .all(|(k, v)| old.get(k).is_some_and(|o| same_object(&o.object, v)))
        }) || (objects.is_empty() && self.len(kind) == 0);
        if !unchanged {
            // Laid out anew, at once: inserted one by one, the tree's nodes are spread
            // over the heap with holes between them, and a complete list kept as a
            // vector until then is laid out densely. Copying the old tree first (when a
            // rebuild still holds it) is for nothing.
            let others = self.of(kind).into_iter().flatten();
            let layout: BTreeMap<Key, Held> = others
                .filter(|(k, _)| !in_scope(k))
                .map(|(k, held)| (k.clone(), held.clone()))
                .chain(objects.into_iter().map(|(key, object)| {
                    let held = Held {
                        object,
                        location: None,
                    };
                    (key, held)
                }))
                .collect();
            self.kinds.insert(kind.id(), Arc::new(layout));
        }
        !unchanged
    }

    /// Whether `other` holds the same objects with the same content (where they were
    /// read from aside): a reload of unchanged files must not rebuild the zone.
    pub fn same_objects(&self, other: &ObjectSet) -> bool {
        let kinds = |set: &ObjectSet| set.kinds.values().filter(|o| !o.is_empty()).count();
        kinds(self) == kinds(other)
            && self.kinds.iter().all(|(id, mine)| {
                let theirs = other.kinds.get(id);
                theirs.is_some_and(|theirs| Arc::ptr_eq(mine, theirs))
                    || (mine.is_empty() && theirs.is_none_or(|theirs| theirs.is_empty()))
                    || theirs.is_some_and(|theirs| {
                        mine.len() == theirs.len()
                            && mine
                                .iter()
                                .zip(theirs.iter())
                                .all(|((k, a), (l, b))| k == l && same_object(&a.object, &b.object))
                    })
            })
    }

    /// `under` with `over` laid on top: an object of the same kind, namespace and name
    /// in both is `over`'s. A kind only one holds is shared, not copied.
    pub fn layered(under: ObjectSet, over: ObjectSet) -> ObjectSet {
        if over.kinds.values().all(|o| o.is_empty()) {
            return under;
        }
        let mut kinds = under.kinds;
        for (id, theirs) in over.kinds {
            match kinds.get_mut(&id) {
                Some(mine) if !mine.is_empty() => {
                    let merged = Arc::make_mut(mine);
                    for (key, held) in theirs.iter() {
                        merged.insert(key.clone(), held.clone());
                    }
                }
                _ => {
                    kinds.insert(id, theirs);
                }
            }
        }
        ObjectSet { kinds }
    }

    /// Forgets every object of a kind; returns whether there were any.
    pub fn clear(&mut self, kind: &dyn Kind) -> bool {
        self.kinds.remove(&kind.id()).is_some_and(|o| !o.is_empty())
    }

    /// How many objects of a kind are held.
    pub fn len(&self, kind: &dyn Kind) -> usize {
        self.of(kind).map_or(0, |objects| objects.len())
    }

    fn of(&self, kind: &dyn Kind) -> Option<&BTreeMap<Key, Held>> {
        self.kinds.get(&kind.id()).map(|o| &**o)
    }

    /// The objects of a kind, to change: copied first only if a snapshot shares them.
    fn slot(&mut self, id: TypeId) -> &mut BTreeMap<Key, Held> {
        Arc::make_mut(self.kinds.entry(id).or_default())
    }
}

/// Whether two stored objects have the same content; the same allocation has, without
/// a look (a reload reuses the objects of unchanged text: 100,000 comparisons of
/// nothing).
fn same_object(a: &Stored, b: &Stored) -> bool {
    Arc::ptr_eq(a, b) || a.same(&**b)
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
    use crate::sources::kind::{Of, Source};
    use crate::sources::testing::service;
    use k8s_openapi::api::core::v1::Service;

    const SERVICES: Of<Service> = Of::KIND;

    fn stored(name: &str, namespace: &str, ip: &str) -> (Key, Stored) {
        let object: Stored = Arc::new(service(name, namespace).lb_ip(ip).build().keep());
        (object.key(), object)
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
            .map(|s| s.object.name.to_string())
            .collect();
        assert_eq!(names, ["c", "b"]);
        // The snapshot taken before is untouched.
        assert_eq!(snapshot.len(&SERVICES), 2);
        assert_eq!(snapshot.all::<Service>().count(), 2);
    }

    #[test]
    fn the_same_objects_read_again_are_the_same() {
        let read = |ips: &[&str]| {
            let mut set = ObjectSet::default();
            for (i, ip) in ips.iter().enumerate() {
                let (key, object) = stored(&format!("s{i}"), "apps", ip);
                set.apply(&SERVICES, key, object);
            }
            set
        };
        let first = read(&["10.0.0.1", "10.0.0.2"]);
        assert!(first.same_objects(&read(&["10.0.0.1", "10.0.0.2"])));
        assert!(first.same_objects(&first.clone()));
        assert!(!first.same_objects(&read(&["10.0.0.1", "10.0.0.3"])));
        assert!(!first.same_objects(&read(&["10.0.0.1"])));
        assert!(!first.same_objects(&ObjectSet::default()));
        let mut emptied = first.clone();
        emptied.clear(&SERVICES);
        assert!(emptied.same_objects(&ObjectSet::default()));
        assert!(ObjectSet::default().same_objects(&emptied));
    }
}
