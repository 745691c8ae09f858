//! Namespaces: not published, read for their labels, which a Gateway API listener's
//! `allowedRoutes.namespaces.from: Selector` selects routes' namespaces by.
//!
//! Watched whole in cluster mode (not per `--namespace`, not filtered by
//! `--label-selector`: a route's namespace is looked up, not published), and accepted in
//! manifests. A namespace with no object still has the label
//! `kubernetes.io/metadata.name` (the API server sets it on every Namespace), so a
//! selector on it works without one.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::kind::{Output, Source};
use super::objects::ObjectSet;
use crate::config::Filters;
use crate::zone::Kind;

/// The label the API server sets on every Namespace to its name.
pub const NAME_LABEL: &str = "kubernetes.io/metadata.name";

impl Source for Namespace {
    const NEEDED_BY: &'static [Kind] = &[Kind::HttpRoute, Kind::GrpcRoute, Kind::TlsRoute];
    const SCOPED: bool = false;

    /// The name and the labels, nothing else.
    type Kept = Self;

    fn keep(self) -> Self {
        Namespace {
            metadata: ObjectMeta {
                name: self.metadata.name,
                labels: self.metadata.labels,
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        }
    }

    fn entries(_: &ObjectSet, _: &Filters, _: &mut Output) {}
}

/// The labels of each namespace, by name.
pub struct NamespaceLabels<'a> {
    by_name: HashMap<&'a str, &'a BTreeMap<String, String>>,
}

impl<'a> NamespaceLabels<'a> {
    pub fn of(objects: &'a ObjectSet) -> Self {
        let by_name = objects
            .all::<Namespace>()
            .filter_map(|ns| Some((ns.metadata.name.as_deref()?, ns.metadata.labels.as_ref()?)))
            .collect();
        NamespaceLabels { by_name }
    }

    /// The labels of `namespace`, with `kubernetes.io/metadata.name` always among them.
    pub fn get(&self, namespace: &str) -> BTreeMap<String, String> {
        let mut labels = self
            .by_name
            .get(namespace)
            .copied()
            .cloned()
            .unwrap_or_default();
        labels.insert(NAME_LABEL.into(), namespace.into());
        labels
    }
}
