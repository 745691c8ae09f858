//! Sources: Kubernetes objects in, zone entries out.
//!
//! Each kind is one file with a pure function from its objects (and what they refer
//! to) to entries, listed once in the registry ([`kind::KINDS`]). Whatever brings the
//! objects, a folder of manifests ([`manifests`], with the zone files of [`zone_file`])
//! or the API ([`cluster`]), only fills
//! the one [`ObjectSet`] of the [`Feed`]; [`crate::rebuild`] holds the one loop that
//! builds and stores a new zone from it.

pub mod cluster;
pub mod dnsendpoint;
pub mod feed;
pub mod gateway_api;
pub mod ingress;
pub mod istio;
pub mod kind;
pub mod manifests;
pub mod namespace;
pub mod objects;
pub mod service;
mod shared;
#[cfg(test)]
pub(crate) mod testing;
pub mod zone_file;

pub use feed::Feed;
pub use objects::ObjectSet;

/// Objects carrying this label with the value `"true"` publish nothing.
pub const IGNORE_LABEL: &str = "k8s-gateway.dns/ignore";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Filters;
    use crate::sources::testing::{service, yaml};
    use crate::zone::Skip;

    #[test]
    fn the_ignore_label_opts_an_object_out() {
        let mut objects = ObjectSet::default();
        objects.add(service("kept", "apps").lb_ip("10.0.0.1").build());
        objects.add(
            service("hidden", "apps")
                .lb_ip("10.0.0.2")
                .label(IGNORE_LABEL, "true")
                .build(),
        );
        objects.add(
            service("shown", "apps")
                .lb_ip("10.0.0.3")
                .label(IGNORE_LABEL, "false")
                .build(),
        );
        let found = kind::entries(&objects, &Filters::default());
        let names: Vec<String> = found
            .entries
            .iter()
            .map(|e| e.object.name.to_string())
            .collect();
        assert_eq!(names, ["kept", "shown"]);
        assert!(found.skipped.is_empty());
    }

    #[test]
    fn the_ignore_label_on_a_gateway_hides_its_routes() {
        let mut gateway: gateway_api::Gateway = yaml(
            "metadata: {name: gw, namespace: gateway, labels: {k8s-gateway.dns/ignore: \"true\"}}\nspec:\n  listeners: [{name: web, port: 80, protocol: HTTP, allowedRoutes: {namespaces: {from: All}}}]\nstatus:\n  addresses: [{value: 10.0.0.50}]\n",
        );
        let route: gateway_api::HttpRoute = yaml(
            "metadata: {name: app, namespace: apps}\nspec:\n  parentRefs: [{name: gw, namespace: gateway}]\n  hostnames: [app.home.example]\nstatus:\n  parents: [{parentRef: {name: gw, namespace: gateway}, conditions: [{type: Accepted, status: \"True\"}]}]\n",
        );
        let mut objects = ObjectSet::default();
        objects.add(gateway.clone());
        objects.add(route);
        let found = kind::entries(&objects, &Filters::default());
        assert!(found.entries.is_empty());
        assert_eq!(found.skipped[0].reason, Skip::GatewayNotFound);
        gateway.metadata.labels = None;
        objects.add(gateway);
        let found = kind::entries(&objects, &Filters::default());
        assert_eq!(found.entries.len(), 1);
    }
}
