//! What a watch receives of one object: its identity, and the fields a kind can read,
//! without the metadata no kind reads.
//!
//! kube's `DynamicObject` reads an object into a buffered copy (its flattened fields),
//! then a typed `ObjectMeta` (managed fields and all) and a `serde_json::Value`, and
//! handing that to the kind's decode took one more `Value`. In a large cluster those
//! short-lived trees were most of the start-up's allocations, and left the heap full of
//! small holes between the objects we keep. Here an object is read once, into the
//! `Value` its kind decodes from; of its metadata only what some kind reads is kept, and
//! the rest (managed fields, owner references, ...) is skipped as it is read. The
//! README's Performance section has the figures.

use std::borrow::Cow;
use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::TypeMeta;
use kube::core::{DynamicResourceScope, Resource};
use kube::discovery::ApiResource;
use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::{Map, Value};

/// The metadata fields some kind reads (`shared::slim_meta` keeps the same; the uid is
/// what an Event names the object by), and the resource version the watcher resumes
/// from.
const KEPT_METADATA: [&str; 6] = [
    "name",
    "namespace",
    "uid",
    "labels",
    "annotations",
    "resourceVersion",
];

/// One object of a list or a watch event.
#[derive(Clone, Debug)]
pub struct ListedObject {
    /// `apiVersion` and `kind`, when the object carries them (a list's items may not).
    pub types: Option<TypeMeta>,
    /// Name, namespace and resource version: what keys the object, and what the watcher
    /// resumes from. Each is `None` where the object's is missing or not a string (the
    /// kind's decode then names the field).
    pub metadata: ObjectMeta,
    /// The object's fields, its `metadata` cut to [`KEPT_METADATA`], for the kind's
    /// decode.
    pub fields: Map<String, Value>,
}

impl<'de> Deserialize<'de> for ListedObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ObjectVisitor)
    }
}

struct ObjectVisitor;

impl<'de> Visitor<'de> for ObjectVisitor {
    type Value = ListedObject;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Kubernetes object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ListedObject, A::Error> {
        let mut fields = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = if key == "metadata" {
                map.next_value::<Option<Metadata>>()?
                    .map_or(Value::Null, |m| Value::Object(m.0))
            } else {
                map.next_value::<Value>()?
            };
            fields.insert(key, value);
        }
        let text = |value: Option<&Value>| value.and_then(Value::as_str).map(str::to_string);
        let types = match (text(fields.get("apiVersion")), text(fields.get("kind"))) {
            (Some(api_version), Some(kind)) => Some(TypeMeta { api_version, kind }),
            _ => None,
        };
        let meta = fields.get("metadata");
        let metadata = ObjectMeta {
            name: text(meta.and_then(|m| m.get("name"))),
            namespace: text(meta.and_then(|m| m.get("namespace"))),
            resource_version: text(meta.and_then(|m| m.get("resourceVersion"))),
            ..ObjectMeta::default()
        };
        Ok(ListedObject {
            types,
            metadata,
            fields,
        })
    }
}

/// An object's `metadata`, cut to [`KEPT_METADATA`] as it is read.
struct Metadata(Map<String, Value>);

impl<'de> Deserialize<'de> for Metadata {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MetadataVisitor;
        impl<'de> Visitor<'de> for MetadataVisitor {
            type Value = Metadata;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("object metadata")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Metadata, A::Error> {
                let mut kept = Map::new();
                while let Some(key) = map.next_key::<String>()? {
                    if KEPT_METADATA.contains(&key.as_str()) {
                        kept.insert(key, map.next_value::<Value>()?);
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(Metadata(kept))
            }
        }
        deserializer.deserialize_map(MetadataVisitor)
    }
}

/// As kube's `DynamicObject`: the resource is told at run time, from discovery.
impl Resource for ListedObject {
    type DynamicType = ApiResource;
    type Scope = DynamicResourceScope;

    fn group(resource: &ApiResource) -> Cow<'_, str> {
        resource.group.as_str().into()
    }

    fn version(resource: &ApiResource) -> Cow<'_, str> {
        resource.version.as_str().into()
    }

    fn kind(resource: &ApiResource) -> Cow<'_, str> {
        resource.kind.as_str().into()
    }

    fn api_version(resource: &ApiResource) -> Cow<'_, str> {
        resource.api_version.as_str().into()
    }

    fn plural(resource: &ApiResource) -> Cow<'_, str> {
        resource.plural.as_str().into()
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reads_identity_and_the_fields_a_kind_reads() {
        let json = r#"{"apiVersion":"v1","kind":"Service",
            "metadata":{"name":"web","namespace":"apps","resourceVersion":"42","uid":"u",
                        "managedFields":[{"manager":"helm"}],"labels":{"a":"b"},
                        "annotations":{"c":"d"}},
            "spec":{"type":"LoadBalancer"}}"#;
        let object: ListedObject = serde_json::from_str(json).expect("an object");
        let types = object.types.as_ref().expect("types");
        assert_eq!(
            (types.api_version.as_str(), types.kind.as_str()),
            ("v1", "Service")
        );
        assert_eq!(object.metadata.name.as_deref(), Some("web"));
        assert_eq!(object.metadata.namespace.as_deref(), Some("apps"));
        assert_eq!(object.metadata.resource_version.as_deref(), Some("42"));
        assert_eq!(
            Value::Object(object.fields),
            json!({"apiVersion": "v1", "kind": "Service",
                   "metadata": {"name": "web", "namespace": "apps", "resourceVersion": "42",
                                "uid": "u", "labels": {"a": "b"}, "annotations": {"c": "d"}},
                   "spec": {"type": "LoadBalancer"}}),
            "no managed fields"
        );
    }

    /// A list's items carry no `apiVersion` and `kind`; an object may lack metadata.
    #[test]
    fn an_object_without_types_or_metadata_still_reads() {
        let object: ListedObject = serde_json::from_str(r#"{"spec":{}}"#).expect("an object");
        assert!(object.types.is_none());
        assert_eq!(object.metadata, ObjectMeta::default());
        let object: ListedObject = serde_json::from_str(r#"{"metadata":null}"#).expect("an object");
        assert_eq!(object.metadata, ObjectMeta::default());
    }

    /// Metadata of the wrong shape is kept for the kind's decode to name the field, and
    /// the rest of the list still reads (through `DynamicObject` it failed the list).
    #[test]
    fn a_name_that_is_not_a_string_is_left_to_the_kind() {
        let object: ListedObject =
            serde_json::from_str(r#"{"metadata":{"name":7,"labels":[1]}}"#).expect("an object");
        assert_eq!(object.metadata.name, None);
        assert_eq!(object.fields["metadata"], json!({"name": 7, "labels": [1]}));
    }

    /// Read through a buffering deserializer too (a watch event whose `object` comes
    /// before its `type` is buffered by serde before it is read).
    #[test]
    fn reads_from_a_value_as_from_text() {
        let value = json!({"kind": "Service", "apiVersion": "v1", "metadata": {"name": "a"}});
        let object = ListedObject::deserialize(value).expect("an object");
        assert_eq!(object.metadata.name.as_deref(), Some("a"));
        let event: kube::api::WatchEvent<ListedObject> = serde_json::from_str(
            r#"{"object":{"metadata":{"name":"b","managedFields":[{}]}},"type":"ADDED"}"#,
        )
        .expect("an event");
        let kube::api::WatchEvent::Added(object) = event else {
            panic!("an ADDED event");
        };
        assert_eq!(object.metadata.name.as_deref(), Some("b"));
        assert_eq!(object.fields["metadata"], json!({"name": "b"}));
    }
}
