//! Sources: Kubernetes objects in, zone entries out, and the loop that rebuilds the zone.
//!
//! Each kind has a pure function from one object (and what it refers to) to entries.
//! Whatever brings the objects (a folder of manifests, or the API), they land in one
//! [`Objects`] snapshot, and [`Rebuilder::rebuild`] is the only place that stores a new
//! zone.

pub mod cluster;
pub mod dnsendpoint;
pub mod gateway_api;
pub mod ingress;
pub mod istio;
pub mod manifests;
pub mod names;
pub mod service;
pub mod slim;
#[cfg(test)]
pub(crate) mod testing;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwapOption;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::Ingress;

use dnsendpoint::DnsEndpoint;
use gateway_api::{Gateway, GrpcRoute, HttpRoute, RouteView, TlsRoute};
use istio::{IstioGateway, VirtualService};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::metrics::{SkipLabels, ZoneKindLabels, ZoneLabels, ZoneMetrics};
use crate::zone::{self, Entry, ObjectRef, Settings, Skipped, Zone};

/// The zone being served, shared by the rebuild loop (the only writer) and every query.
/// `None` until the first zone is built. Cloning the `Arc` is cheap.
pub type SharedZone = Arc<ArcSwapOption<Zone>>;

/// Objects carrying this label with the value `"true"` publish nothing.
pub const IGNORE_LABEL: &str = "k8s-gateway.dns/ignore";

/// Every object the zone is built from, whichever source read it.
#[derive(Clone, Debug, Default)]
pub struct Objects {
    pub services: Vec<Service>,
    pub ingresses: Vec<Ingress>,
    pub dns_endpoints: Vec<DnsEndpoint>,
    /// Gateway API Gateways: not published themselves, the parents routes attach to.
    pub gateways: Vec<Gateway>,
    pub http_routes: Vec<HttpRoute>,
    pub grpc_routes: Vec<GrpcRoute>,
    pub tls_routes: Vec<TlsRoute>,
    pub istio_gateways: Vec<IstioGateway>,
    pub virtual_services: Vec<VirtualService>,
    /// Where each object was read from ("file examples/apps.yaml"), for warnings.
    pub locations: HashMap<ObjectRef, Arc<str>>,
}

/// The `ObjectRef` of an object, from its metadata.
pub fn object_ref(kind: &str, meta: &ObjectMeta) -> ObjectRef {
    ObjectRef::new(
        kind,
        meta.namespace.as_deref().unwrap_or("default"),
        meta.name.as_deref().unwrap_or_default(),
    )
}

fn ignored(meta: &ObjectMeta) -> bool {
    meta.labels
        .as_ref()
        .and_then(|l| l.get(IGNORE_LABEL))
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// Which objects may publish, beyond their kind being enabled.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filters {
    /// `--ingress-class`: when set, only Ingresses of these classes.
    pub ingress_classes: Vec<String>,
    /// `--gateway-class`: when set, only routes through Gateways of these classes.
    pub gateway_classes: Vec<String>,
}

/// Turns every object into entries; objects that cannot be turned are listed with why.
pub fn entries(objects: &Objects, filters: &Filters) -> (Vec<Entry>, Vec<Skipped>) {
    let mut entries = Vec::new();
    let mut skipped = Vec::new();
    let mut keep = |result: Result<Vec<Entry>, Skipped>| match result {
        Ok(found) => entries.extend(found),
        Err(skip) => skipped.push(skip),
    };
    for service in objects.services.iter().filter(|s| !ignored(&s.metadata)) {
        keep(service::service_entries(service));
    }
    for ingress in objects.ingresses.iter().filter(|i| !ignored(&i.metadata)) {
        keep(ingress::ingress_entries(ingress, &filters.ingress_classes));
    }
    for endpoint in objects
        .dns_endpoints
        .iter()
        .filter(|e| !ignored(&e.metadata))
    {
        let (found, skips) = dnsendpoint::dns_endpoint_entries(endpoint);
        entries.extend(found);
        skipped.extend(skips);
    }

    // An ignored Gateway publishes no route through it: the label opts out the entry
    // point, not only its own object.
    let gateways: Vec<Gateway> = objects
        .gateways
        .iter()
        .filter(|g| !ignored(&g.metadata))
        .cloned()
        .collect();
    let gateway_index = gateway_api::index_gateways(&gateways);
    let routes = (objects.http_routes.iter().map(RouteView::from))
        .chain(objects.grpc_routes.iter().map(RouteView::from))
        .chain(objects.tls_routes.iter().map(RouteView::from));
    for route in routes.filter(|r| !ignored(r.metadata)) {
        let (found, skips) =
            gateway_api::route_entries(route, &gateway_index, &filters.gateway_classes);
        entries.extend(found);
        skipped.extend(skips);
    }

    let istio_gateways: Vec<IstioGateway> = objects
        .istio_gateways
        .iter()
        .filter(|g| !ignored(&g.metadata))
        .cloned()
        .collect();
    let istio_index = istio::index_gateways(&istio_gateways, &objects.services);
    for gateway in istio_index.values() {
        let (found, skips) = istio::gateway_entries(gateway);
        entries.extend(found);
        skipped.extend(skips);
    }
    for service in objects
        .virtual_services
        .iter()
        .filter(|v| !ignored(&v.metadata))
    {
        let (found, skips) = istio::virtual_service_entries(service, &istio_index);
        entries.extend(found);
        skipped.extend(skips);
    }
    (entries, skipped)
}

/// Rebuilds and swaps in the zone whenever the objects change. Cheap to share by `Arc`.
pub struct Rebuilder {
    settings: Settings,
    filters: Filters,
    zone: SharedZone,
    metrics: ZoneMetrics,
    /// Skips already warned about, so a reload does not repeat every warning.
    warned: Mutex<HashSet<(ObjectRef, String)>>,
    /// Told the serial of each zone swapped in (NOTIFY listens), when set.
    serials: Option<tokio::sync::watch::Sender<u32>>,
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
            metrics,
            warned: Mutex::default(),
            serials: None,
        }
    }

    /// Publishes the serial of every zone swapped in on `serials` (only changes wake the
    /// receivers).
    pub fn with_serial_watch(mut self, serials: tokio::sync::watch::Sender<u32>) -> Self {
        self.serials = Some(serials);
        self
    }

    pub fn zone(&self) -> &SharedZone {
        &self.zone
    }

    /// Builds a zone from `objects` and swaps it in whole. Logs one line when the
    /// records change, and a warning for each newly skipped object.
    pub fn rebuild(&self, objects: &Objects) -> Arc<Zone> {
        let started = Instant::now();
        let (entries, mut skipped) = entries(objects, &self.filters);
        let previous = self.zone.load_full();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut zone = zone::build(
            entries,
            &self.settings,
            previous.as_deref(),
            u32::try_from(now).unwrap_or(u32::MAX),
        );
        skipped.append(&mut zone.claims_mut().dropped);
        zone.claims_mut().dropped = skipped;
        let zone = Arc::new(zone);
        // Metrics first, then the swap: whoever sees the new answers also sees them
        // counted (a test, or an operator comparing a dig with a scrape).
        self.report(objects, &zone, previous.as_deref(), started);
        self.zone.store(Some(zone.clone()));
        if let Some(serials) = &self.serials {
            serials.send_if_modified(|serial| {
                std::mem::replace(serial, zone.serial()) != zone.serial()
            });
        }
        zone
    }

    fn report(&self, objects: &Objects, zone: &Zone, previous: Option<&Zone>, started: Instant) {
        let m = &self.metrics;
        m.builds.inc();
        m.build_seconds.observe(started.elapsed().as_secs_f64());
        m.serial.set(i64::from(zone.serial()));
        if previous.is_none_or(|p| p.serial() != zone.serial()) {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            m.last_change.set(now);
            let (added, removed) = previous.map_or((zone.name_count(), 0), |p| name_diff(p, zone));
            tracing::info!(
                serial = zone.serial(),
                names = zone.name_count(),
                added,
                removed,
                "zone changed"
            );
        }
        m.records.clear();
        m.names.clear();
        for authority in zone.authorities() {
            let domain = authority.origin().to_string();
            let mut names = 0;
            for (_, node) in authority.nodes() {
                if !node.is_empty_non_terminal() {
                    names += 1;
                }
                for set in node.rrsets() {
                    for origins in &set.origins {
                        let kind = origins.first().map_or("zone", |o| &*o.kind).to_string();
                        m.records
                            .get_or_create(&ZoneKindLabels {
                                zone: domain.clone(),
                                kind,
                            })
                            .inc();
                    }
                }
            }
            m.names
                .get_or_create(&ZoneLabels { zone: domain })
                .set(names);
        }
        m.skipped.clear();
        let mut warned = self.warned.lock().unwrap_or_else(|e| e.into_inner());
        let mut still = HashSet::new();
        for skip in &zone.claims().dropped {
            m.skipped
                .get_or_create(&SkipLabels {
                    kind: skip.object.kind.to_string(),
                    reason: skip.reason.to_string(),
                })
                .inc();
            let key = (skip.object.clone(), skip.detail.clone());
            if !warned.contains(&key) {
                let location = objects.locations.get(&skip.object).map_or("", |l| l);
                if matches!(skip.reason, "invalid_field" | "unknown_record_type") {
                    tracing::warn!(object = %skip.object, location, "skipped: {}", skip.detail);
                } else {
                    tracing::debug!(object = %skip.object, location, reason = skip.reason, "not published: {}", skip.detail);
                }
            }
            still.insert(key);
        }
        *warned = still;
    }
}

/// Names (with records) added and removed between two zones.
fn name_diff(old: &Zone, new: &Zone) -> (usize, usize) {
    let names = |z: &Zone| -> HashSet<String> {
        z.authorities()
            .iter()
            .flat_map(|a| {
                a.nodes()
                    .filter(|(_, n)| !n.is_empty_non_terminal())
                    .map(|(k, _)| k.to_string())
            })
            .collect()
    };
    let (old, new) = (names(old), names(new));
    (new.difference(&old).count(), old.difference(&new).count())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::testing::service;

    #[test]
    fn the_ignore_label_opts_an_object_out() {
        let objects = Objects {
            services: vec![
                service("kept", "apps").lb_ip("10.0.0.1").build(),
                service("hidden", "apps")
                    .lb_ip("10.0.0.2")
                    .label(IGNORE_LABEL, "true")
                    .build(),
                service("shown", "apps")
                    .lb_ip("10.0.0.3")
                    .label(IGNORE_LABEL, "false")
                    .build(),
            ],
            ..Objects::default()
        };
        let (entries, skipped) = entries(&objects, &Filters::default());
        let names: Vec<String> = entries.iter().map(|e| e.object.name.to_string()).collect();
        assert_eq!(names, ["kept", "shown"]);
        assert!(skipped.is_empty());
    }

    #[test]
    fn the_ignore_label_on_a_gateway_hides_its_routes() {
        let gateway: gateway_api::Gateway = serde_saphyr::from_str(
            "metadata: {name: gw, namespace: gateway, labels: {k8s-gateway.dns/ignore: \"true\"}}\nspec:\n  listeners: [{name: web, port: 80}]\nstatus:\n  addresses: [{value: 10.0.0.50}]\n",
        )
        .unwrap();
        let route: gateway_api::HttpRoute = serde_saphyr::from_str(
            "metadata: {name: app, namespace: apps}\nspec:\n  parentRefs: [{name: gw, namespace: gateway}]\n  hostnames: [app.home.example]\nstatus:\n  parents: [{parentRef: {name: gw, namespace: gateway}, conditions: [{type: Accepted, status: \"True\"}]}]\n",
        )
        .unwrap();
        let mut objects = Objects {
            gateways: vec![gateway],
            http_routes: vec![route],
            ..Objects::default()
        };
        let (found, skipped) = entries(&objects, &Filters::default());
        assert!(found.is_empty());
        assert_eq!(skipped[0].reason, "gateway_not_found");
        objects.gateways[0].metadata.labels = None;
        let (found, _) = entries(&objects, &Filters::default());
        assert_eq!(found.len(), 1);
    }
}
