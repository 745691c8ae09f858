//! What several kinds do the same way: naming an object, slimming its metadata, reading
//! load-balancer status, indexing Gateways, and turning names × targets into entries.

use std::collections::{BTreeMap, HashMap};

use hickory_proto::rr::Name;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;

use super::IGNORE_LABEL;
use super::objects::Key;
use crate::zone::names::{parse_absolute, parse_ip};
use crate::zone::{Entry, EntryName, Kind, ObjectRef, RecordData, Skip};

/// The object set's key of an object, from its metadata: its namespace (`default` when
/// unset, as for its `ObjectRef`) and name.
pub fn key(meta: &ObjectMeta) -> Key {
    (
        meta.namespace.as_deref().unwrap_or("default").into(),
        meta.name.as_deref().unwrap_or_default().into(),
    )
}

/// The `ObjectRef` of an object, from its metadata.
pub fn object_ref(kind: &str, meta: &ObjectMeta) -> ObjectRef {
    ObjectRef::new(
        kind,
        meta.namespace.as_deref().unwrap_or("default"),
        meta.name.as_deref().unwrap_or_default(),
    )
}

/// Name, namespace, uid (what an Event names the object by), the ignore label and the
/// `annotations` the kind reads; nothing else (no managedFields, no last-applied
/// configuration, no owner references).
pub fn slim_meta(meta: ObjectMeta, annotations: &[&str]) -> ObjectMeta {
    let keep = |map: Option<BTreeMap<String, String>>, keys: &[&str]| {
        map.map(|m| {
            m.into_iter()
                .filter(|(k, _)| keys.contains(&k.as_str()))
                .collect::<BTreeMap<_, _>>()
        })
        .filter(|m| !m.is_empty())
    };
    ObjectMeta {
        name: meta.name,
        namespace: meta.namespace,
        uid: meta.uid,
        labels: keep(meta.labels, &[IGNORE_LABEL]),
        annotations: keep(meta.annotations, annotations),
        ..ObjectMeta::default()
    }
}

/// Objects by namespace and name, for what refers to them (a route to its Gateway, a
/// VirtualService to its Istio Gateway).
pub type ByName<'a, V> = HashMap<(&'a str, &'a str), V>;

/// Indexes `objects` by namespace and name, keeping `value(object)` for each.
pub fn by_name<'a, T: Resource + 'a, V>(
    objects: impl Iterator<Item = &'a T>,
    value: impl Fn(&'a T) -> V,
) -> ByName<'a, V> {
    objects
        .map(|o| {
            let meta = o.meta();
            let key = (
                meta.namespace.as_deref().unwrap_or("default"),
                meta.name.as_deref().unwrap_or_default(),
            );
            (key, value(o))
        })
        .collect()
}

/// The addresses in a `status.loadBalancer.ingress` list, given as `(ip, hostname)` per
/// point (Services and Ingresses spell the type differently): an `ip`, or a `hostname`
/// that becomes a CNAME (never looked up at query time). An error names the field.
pub fn load_balancer_targets<'a>(
    points: impl Iterator<Item = (Option<&'a str>, Option<&'a str>)>,
) -> Result<Vec<RecordData>, (String, String)> {
    let mut targets = Vec::new();
    for (i, (ip, hostname)) in points.enumerate() {
        let field = |name: &str| format!("status.loadBalancer.ingress[{i}].{name}");
        if let Some(ip) = ip {
            targets.push(RecordData::Address(
                parse_ip(ip).map_err(|e| (field("ip"), e))?,
            ));
        } else if let Some(host) = hostname {
            targets.push(RecordData::Cname(
                parse_absolute(host, false).map_err(|e| (field("hostname"), e))?,
            ));
        }
    }
    Ok(targets)
}

/// The names an object would publish, for messages that must let `/explain` of one of
/// those names find the object.
pub fn claimed(names: &[Name]) -> String {
    names
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// One entry per name and target, all claimed by `object` for `kind`.
pub fn entries_for(
    names: &[Name],
    as_entry_name: fn(Name) -> EntryName,
    targets: &[RecordData],
    kind: Kind,
    object: &ObjectRef,
) -> Vec<Entry> {
    let mut entries = Vec::with_capacity(names.len() * targets.len());
    push_entries_for(&mut entries, names, as_entry_name, targets, kind, object);
    entries
}

/// [`entries_for`], pushed onto `entries`.
pub fn push_entries_for(
    entries: &mut Vec<Entry>,
    names: &[Name],
    as_entry_name: fn(Name) -> EntryName,
    targets: &[RecordData],
    kind: Kind,
    object: &ObjectRef,
) {
    for name in names {
        entries.extend(targets.iter().map(|data| Entry {
            name: as_entry_name(name.clone()),
            data: data.clone(),
            ttl: None,
            kind,
            object: object.clone(),
        }));
    }
}

/// Adds the entries not already there: an object that reaches one name through two
/// parents claims each record once.
pub fn add_new(entries: &mut Vec<Entry>, more: Vec<Entry>) {
    for entry in more {
        if !entries.contains(&entry) {
            entries.push(entry);
        }
    }
}

/// Why something does not publish: the reason, and the detail for people.
pub type Why = (Skip, String);

/// A Gateway (of either API) with the addresses it is reached at, worked out once per
/// rebuild, or why it has none.
pub struct Resolved<'a, T> {
    pub gateway: &'a T,
    pub addresses: Result<Vec<RecordData>, Why>,
}
