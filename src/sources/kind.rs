//! The kind registry: every kind of object the zone is built from, in one list.
//!
//! A kind is one file (its slim fields, its decoding, its entries function) that
//! implements [`Source`] for its object type, plus one line in [`KINDS`]. Both feeders
//! (the manifests folder and the cluster watches) and the rebuild go through this list;
//! nothing else names a kind.

use std::any::{Any, TypeId};
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::Debug;
use std::marker::PhantomData;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::Resource;
use serde::de::DeserializeOwned;

use super::dnsendpoint::DnsEndpoint;
use super::feed::Layer;
use super::gateway_api::{Gateway, GrpcRoute, HttpRoute, TlsRoute};
use super::istio::{IstioGateway, VirtualService};
use super::objects::{Key, ObjectSet, Stored};
use super::zone_file::ZoneFile;
use crate::config::Filters;
use crate::zone::{self, Entry, Skipped};

/// Every kind, in the order their entries are made. Adding a kind is one line here.
pub static KINDS: &[&dyn Kind] = &[
    &Of::<Service>::KIND,
    &Of::<Ingress>::KIND,
    &Of::<DnsEndpoint>::KIND,
    &Of::<Gateway>::KIND,
    &Of::<HttpRoute>::KIND,
    &Of::<GrpcRoute>::KIND,
    &Of::<TlsRoute>::KIND,
    &Of::<IstioGateway>::KIND,
    &Of::<VirtualService>::KIND,
    &Of::<Namespace>::KIND,
    &Of::<ZoneFile>::KIND,
];

/// What a kind's file implements for its object type. Identity (group, kind, plural)
/// comes from the type's [`Resource`] implementation, never from a literal.
pub trait Source:
    Resource<DynamicType = ()> + DeserializeOwned + Clone + Debug + Send + Sync + 'static
{
    /// The `--resources` kinds that read objects of this kind: it is watched only when
    /// one of them is enabled (Gateways are read for the routes attached to them).
    const NEEDED_BY: &'static [zone::Kind];

    /// Whether the cluster source reads it per `--namespace` and with
    /// `--label-selector`, as what publishes; false for what is only looked up
    /// (Namespaces, which are not namespaced).
    const SCOPED: bool = true;

    /// How logs, metric labels, `/explain` and zone-file comments name the kind. Must
    /// differ between kinds (the two Gateways do).
    fn label() -> Cow<'static, str> {
        Self::kind(&())
    }

    /// What the object set keeps of each object: only what [`Source::entries`] (and the
    /// kinds that refer to this one) read. With 100,000 Services, the rest of a Service
    /// (managed fields, cluster IPs, node ports, labels) would be most of the memory.
    type Kept: Kept;

    /// Reduces a decoded object to what is kept.
    fn keep(self) -> Self::Kept;

    /// Decodes one object (a manifest's document, an API object) and keeps what the
    /// zone reads; the error names the field. Through the full type by default; a kind
    /// read by the 100,000 may decode only the fields it keeps.
    fn decode_kept(value: serde_json::Value) -> Result<Self::Kept, DecodeError> {
        serde_path_to_error::deserialize::<_, Self>(value).map(Self::keep)
    }

    /// The entries of this kind's objects in `objects`, and what was skipped and why.
    /// Kinds that are only referred to (Gateway API Gateways) make none.
    fn entries(objects: &ObjectSet, filters: &Filters, out: &mut Output);
}

/// An object as the set keeps it.
pub trait Kept: Any + PartialEq + Debug + Send + Sync {
    /// Whether the object carries [`IGNORE_LABEL`](super::IGNORE_LABEL) set to `"true"`,
    /// and so publishes nothing.
    fn ignored(&self) -> bool;
    /// Its namespace and name, as the object set keys it.
    fn key(&self) -> Key;
    /// `metadata.uid`: what an Event on the object names it by (`--events`).
    fn uid(&self) -> Option<&str>;
}

/// Kinds that keep their own (already slim) type, with its metadata.
impl<T: Resource<DynamicType = ()> + PartialEq + Debug + Send + Sync + 'static> Kept for T {
    fn ignored(&self) -> bool {
        super::objects::ignored(self.meta())
    }

    fn key(&self) -> Key {
        super::shared::key(self.meta())
    }

    fn uid(&self) -> Option<&str> {
        self.meta().uid.as_deref()
    }
}

/// What the entries functions produce: the records, and what was left out.
#[derive(Debug, Default)]
pub struct Output {
    pub entries: Vec<Entry>,
    pub skipped: Vec<Skipped>,
}

impl Output {
    /// Keeps the entries of an object that publishes whole or not at all.
    pub fn keep(&mut self, result: Result<Vec<Entry>, Skipped>) {
        match result {
            Ok(found) => self.entries.extend(found),
            Err(skip) => self.skipped.push(skip),
        }
    }

    /// Keeps the entries and the skips of an object that can publish in part.
    pub fn extend(&mut self, (entries, skipped): (Vec<Entry>, Vec<Skipped>)) {
        self.entries.extend(entries);
        self.skipped.extend(skipped);
    }
}

/// A kind, as the feeders and the rebuild use it without knowing its type.
pub trait Kind: Send + Sync {
    /// See [`Source::label`].
    fn label(&self) -> Cow<'static, str>;
    /// The API group (empty for the core group).
    fn group(&self) -> Cow<'static, str>;
    /// The kind as the API and manifests spell it (`HTTPRoute`).
    fn api_kind(&self) -> Cow<'static, str>;
    /// `group/version` (`v1` for the core group) of the type we read it as, for the
    /// Events recorded on its objects.
    fn api_version(&self) -> Cow<'static, str>;
    /// See [`Source::NEEDED_BY`].
    fn needed_by(&self) -> &'static [zone::Kind];
    /// See [`Source::SCOPED`].
    fn scoped(&self) -> bool;
    /// The object type's identity, under which [`ObjectSet`] keeps its objects.
    fn id(&self) -> TypeId;
    /// Decodes one object as a file or the API spells it (any served version reads into
    /// the same tolerant type) and keeps what the zone reads. The error names the field.
    fn decode(&self, value: serde_json::Value) -> Result<Stored, DecodeError>;
    /// See [`Source::entries`].
    fn entries(&self, objects: &ObjectSet, filters: &Filters, out: &mut Output);
}

/// Why an object could not be decoded: the field's path and what is wrong with it.
pub type DecodeError = serde_path_to_error::Error<serde_json::Error>;

/// The [`Kind`] of the object type `T`.
pub struct Of<T>(PhantomData<fn() -> T>);

impl<T> Of<T> {
    pub const KIND: Of<T> = Of(PhantomData);
}

impl<T: Source> Kind for Of<T> {
    fn label(&self) -> Cow<'static, str> {
        T::label()
    }

    fn group(&self) -> Cow<'static, str> {
        T::group(&())
    }

    fn api_kind(&self) -> Cow<'static, str> {
        T::kind(&())
    }

    fn api_version(&self) -> Cow<'static, str> {
        T::api_version(&())
    }

    fn needed_by(&self) -> &'static [zone::Kind] {
        T::NEEDED_BY
    }

    fn scoped(&self) -> bool {
        T::SCOPED
    }

    fn id(&self) -> TypeId {
        TypeId::of::<T>()
    }

    fn decode(&self, value: serde_json::Value) -> Result<Stored, DecodeError> {
        T::decode_kept(value).map(|kept| Arc::new(kept) as Stored)
    }

    fn entries(&self, objects: &ObjectSet, filters: &Filters, out: &mut Output) {
        T::entries(objects, filters, out);
    }
}

/// The kinds to read for the kinds `--resources` enables, in registry order.
pub fn needed(enabled: &[zone::Kind]) -> Vec<&'static dyn Kind> {
    KINDS
        .iter()
        .copied()
        .filter(|k| k.needed_by().iter().any(|n| enabled.contains(n)))
        .collect()
}

/// The kind a manifest's `apiVersion` group and `kind` name, if we read it. A kind no
/// `--resources` kind needs is internal (zone-file records): never read from manifests.
pub fn find(group: &str, api_kind: &str) -> Option<&'static dyn Kind> {
    KINDS
        .iter()
        .copied()
        .filter(|k| !k.needed_by().is_empty())
        .find(|k| k.group() == group && k.api_kind() == api_kind)
}

/// Every entry of every kind, in registry order.
pub fn entries(objects: &ObjectSet, filters: &Filters) -> Output {
    let mut out = Output::default();
    for kind in KINDS {
        kind.entries(objects, filters, &mut out);
    }
    out
}

/// Every entry of every layer. Each layer's kinds are made on their own: a route of one
/// cluster attaches to its own cluster's Gateway, never to another's of the same name.
/// A named cluster's objects say so in their references (one new reference per object,
/// shared by its entries, as its kept reference is).
pub fn entries_of(layers: &[Layer], filters: &Filters) -> Output {
    let mut out = Output::default();
    for layer in layers {
        let found = entries(&layer.objects, filters);
        let Some(cluster) = &layer.cluster else {
            if out.entries.is_empty() && out.skipped.is_empty() {
                out = found;
            } else {
                out.entries.extend(found.entries);
                out.skipped.extend(found.skipped);
            }
            continue;
        };
        let mut tagged: HashMap<usize, zone::ObjectRef> = HashMap::new();
        let mut tag = |object: &zone::ObjectRef| {
            tagged
                .entry(object.identity())
                .or_insert_with(|| object.in_cluster(cluster))
                .clone()
        };
        out.entries
            .extend(found.entries.into_iter().map(|mut entry| {
                entry.object = tag(&entry.object);
                entry
            }));
        out.skipped
            .extend(found.skipped.into_iter().map(|mut skipped| {
                skipped.object = tag(&skipped.object);
                skipped
            }));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(kinds: &[&dyn Kind]) -> Vec<String> {
        kinds.iter().map(|k| k.label().into_owned()).collect()
    }

    #[test]
    fn the_enabled_kinds_decide_what_is_read() {
        assert_eq!(labels(&needed(&[zone::Kind::Service])), ["Service"]);
        assert_eq!(
            labels(&needed(&[zone::Kind::VirtualService])),
            ["Service", "Gateway.networking.istio.io", "VirtualService"]
        );
        assert_eq!(
            labels(&needed(&[zone::Kind::TlsRoute, zone::Kind::HttpRoute])),
            ["Gateway", "HTTPRoute", "TLSRoute", "Namespace"]
        );
        // All but the internal zone-file kind.
        assert_eq!(needed(&zone::Kind::DEFAULT_ORDER).len(), KINDS.len() - 1);
    }

    #[test]
    fn every_kind_has_its_own_label_and_api_name() {
        let mut seen = std::collections::HashSet::new();
        for kind in KINDS.iter().filter(|k| !k.needed_by().is_empty()) {
            assert!(seen.insert(kind.label()), "{} twice", kind.label());
            let found = find(&kind.group(), &kind.api_kind()).map(|k| k.id());
            assert_eq!(found, Some(kind.id()), "{}", kind.label());
        }
        assert!(find("networking.istio.io", "Gateway").is_some());
        assert!(find("apps", "Deployment").is_none());
        assert!(find("k8s-gateway.internal", "ZoneFile").is_none());
    }
}
