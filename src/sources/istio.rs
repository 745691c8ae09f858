//! Istio (networking.istio.io): VirtualService hosts at the addresses of the ingress
//! Gateways they bind to.
//!
//! A VirtualService names hosts and gateways; the Gateway names a workload selector;
//! the LoadBalancer Service in front of that workload has the address the LAN uses.
//! k8s_gateway never read Istio objects, so users kept a Service annotation per app.
//!
//! The types are our own and read only what the zone needs: v1, v1beta1 and v1alpha3
//! decode into them, and unknown fields are ignored.

use std::borrow::Cow;
use std::collections::BTreeMap;

use hickory_proto::rr::Name;
use k8s_openapi::api::core::v1::Service;
use kube::{CustomResource, Resource};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::kind::{Output, Source};
use super::objects::ObjectSet;
use super::service::{KeptService, service_addresses};
use super::shared::{
    ByName, Resolved, Why, add_new, by_name, claimed, entries_for, object_ref, slim_meta,
};
use crate::config::Filters;
use crate::zone::names::{intersect, is_ip, parse_absolute};
use crate::zone::{Entry, EntryName, Kind, ObjectRef, RecordData, Skip, Skipped};

/// The annotation that overrides a Gateway's addresses, as external-dns reads it.
pub const TARGET_ANNOTATION: &str = "external-dns.kubernetes.io/target";

/// An Istio Gateway: which ingress workload it configures and which hosts it admits.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "networking.istio.io",
    version = "v1",
    kind = "Gateway",
    root = "IstioGateway",
    derive = "PartialEq",
    namespaced
)]
#[serde(rename_all = "camelCase")]
pub struct IstioGatewaySpec {
    #[serde(default)]
    pub selector: BTreeMap<String, String>,
    #[serde(default)]
    pub servers: Vec<Server>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct Server {
    /// `[namespace/]host`; the namespace part limits which VirtualServices may bind.
    #[serde(default)]
    pub hosts: Vec<String>,
}

#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "networking.istio.io",
    version = "v1",
    kind = "VirtualService",
    root = "VirtualService",
    derive = "PartialEq",
    namespaced
)]
#[serde(rename_all = "camelCase")]
pub struct VirtualServiceSpec {
    #[serde(default)]
    pub hosts: Vec<String>,
    #[serde(default)]
    pub gateways: Vec<String>,
    #[serde(default)]
    pub export_to: Vec<String>,
}

impl Source for IstioGateway {
    const NEEDED_BY: &'static [Kind] = &[Kind::VirtualService];

    /// Not plain `Gateway`, which is the Gateway API's.
    fn label() -> Cow<'static, str> {
        format!("{}.{}", Self::kind(&()), Self::group(&())).into()
    }

    type Kept = Self;

    fn keep(mut self) -> Self {
        self.metadata = slim_meta(self.metadata, &[TARGET_ANNOTATION]);
        self
    }

    /// A Gateway's own plain server hosts publish too.
    fn entries(objects: &ObjectSet, _: &Filters, out: &mut Output) {
        for gateway in index_gateways(objects).values() {
            out.extend(gateway_entries(gateway));
        }
    }
}

impl Source for VirtualService {
    const NEEDED_BY: &'static [Kind] = &[Kind::VirtualService];

    type Kept = Self;

    fn keep(mut self) -> Self {
        self.metadata = slim_meta(self.metadata, &[]);
        self
    }

    fn entries(objects: &ObjectSet, _: &Filters, out: &mut Output) {
        let gateways = index_gateways(objects);
        for service in objects.published::<VirtualService>() {
            out.extend(virtual_service_entries(service, &gateways));
        }
    }
}

/// Every Istio Gateway without the ignore label by namespace and name, with its
/// addresses.
pub type GatewayIndex<'a> = ByName<'a, Resolved<'a, IstioGateway>>;

/// Indexes the Gateways; every Service (ignored or not) may be an ingress Service.
pub fn index_gateways(objects: &ObjectSet) -> GatewayIndex<'_> {
    by_name(objects.published::<IstioGateway>(), |gateway| Resolved {
        gateway,
        addresses: gateway_addresses(gateway, objects.all::<Service>()),
    })
}

/// The `ObjectRef` of an Istio Gateway.
fn gateway_ref(gateway: &IstioGateway) -> ObjectRef {
    object_ref(&IstioGateway::label(), &gateway.metadata)
}

/// The addresses of an Istio Gateway: the target annotation when set, else every
/// LoadBalancer Service (any namespace) whose selector contains all of the Gateway's
/// selector, at its external IPs or load-balancer addresses.
fn gateway_addresses<'a>(
    gateway: &IstioGateway,
    services: impl Iterator<Item = &'a KeptService>,
) -> Result<Vec<RecordData>, Why> {
    let annotation = gateway
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(TARGET_ANNOTATION));
    if let Some(targets) = annotation {
        return annotated_targets(targets);
    }
    let wanted = &gateway.spec.selector;
    if wanted.is_empty() {
        // Istio applies such a Gateway to every gateway workload; taking the addresses of
        // every LoadBalancer Service would publish the apps at the Pi-hole's, the NAS's,
        // whatever else has one. Nothing, with the way out named.
        return Err((
            Skip::NoSelector,
            format!(
                "spec.selector is empty (Istio applies the Gateway to every workload): set spec.selector to the ingress gateway's pod labels, or the {TARGET_ANNOTATION} annotation to its address"
            ),
        ));
    }
    let mut found = Vec::new();
    let mut selected = Vec::new();
    for service in services.filter(|s| selects(wanted, s)) {
        let service_ref = &service.object;
        selected.push(service_ref.to_string());
        let addresses = service_addresses(service)
            .map_err(|(field, e)| (Skip::InvalidField, format!("{service_ref}: {field}: {e}")))?;
        for data in addresses {
            if !found.contains(&data) {
                found.push(data);
            }
        }
    }
    if found.is_empty() {
        let selector = wanted
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        let detail = if selected.is_empty() {
            format!("no LoadBalancer Service selects {selector}")
        } else {
            format!(
                "{} (selecting {selector}) has no load-balancer address yet",
                selected.join(", ")
            )
        };
        return Err((Skip::NoAddress, detail));
    }
    Ok(found)
}

/// Whether `service` is a LoadBalancer Service whose selector contains all of `wanted`.
fn selects(wanted: &BTreeMap<String, String>, service: &KeptService) -> bool {
    service.load_balancer
        && wanted.iter().all(|(k, v)| {
            (service.selector.iter()).any(|(key, value)| **key == **k && **value == **v)
        })
}

/// The addresses in the target annotation (comma-separated addresses or host names).
fn annotated_targets(targets: &str) -> Result<Vec<RecordData>, Why> {
    let invalid = |e: String| {
        let detail = format!("metadata.annotations[{TARGET_ANNOTATION}]: {e}");
        (Skip::InvalidField, detail)
    };
    let mut found = Vec::new();
    for target in targets.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let data = if is_ip(target) {
            RecordData::Address(target.parse().map_err(|e| invalid(format!("{e}")))?)
        } else {
            RecordData::Cname(parse_absolute(target, false).map_err(invalid)?)
        };
        if !found.contains(&data) {
            found.push(data);
        }
    }
    Ok(found)
}

/// A host as a VirtualService or a Gateway server writes it, if it can be a DNS name:
/// not `*`, not an address, not a short name (`reviews` is mesh-internal).
fn publishable_host(host: &str) -> Option<Result<Name, String>> {
    let host = host.trim();
    if host == "*" || is_ip(host) || !host.trim_end_matches('.').contains('.') {
        return None;
    }
    Some(parse_absolute(host, true))
}

/// The records a VirtualService publishes through the ingress Gateways it binds to, and
/// for each binding that does not publish, why.
pub fn virtual_service_entries(
    service: &VirtualService,
    gateways: &GatewayIndex<'_>,
) -> (Vec<Entry>, Vec<Skipped>) {
    let object = object_ref(&VirtualService::label(), &service.metadata);
    let skip = |(reason, detail): Why| Skipped {
        object: object.clone(),
        reason,
        detail,
    };
    let namespace = service.metadata.namespace.as_deref().unwrap_or("default");
    let mut entries = Vec::new();
    let mut skipped = Vec::new();
    let hosts = match hosts(service) {
        Ok(hosts) => hosts,
        Err(why) => return (entries, vec![skip(why)]),
    };
    if hosts.is_empty() {
        return (entries, skipped);
    }
    let claimed = claimed(&hosts);
    for reference in service.spec.gateways.iter().filter(|r| *r != "mesh") {
        let (gw_namespace, gw_name) = reference
            .split_once('/')
            .unwrap_or((namespace, reference.as_str()));
        let (gateway, addresses) = match bind(service, gateways, (gw_namespace, gw_name)) {
            Ok(found) => found,
            Err((reason, detail)) => {
                skipped.push(skip((
                    reason,
                    format!("{detail} (would publish {claimed})"),
                )));
                continue;
            }
        };
        for host in &hosts {
            let Some(name) = admitted(gateway, namespace, host) else {
                let detail = format!(
                    "no server of {} admits {host} from namespace {namespace}",
                    gateway_ref(gateway.gateway)
                );
                skipped.push(skip((Skip::NotAdmitted, detail)));
                continue;
            };
            let found = entries_for(
                &[name],
                EntryName::Absolute,
                addresses,
                Kind::VirtualService,
                &object,
            );
            add_new(&mut entries, found);
        }
    }
    (entries, skipped)
}

/// A Gateway a VirtualService binds to, and its addresses.
type Bound<'p> = (&'p Resolved<'p, IstioGateway>, &'p [RecordData]);

/// The hosts of a VirtualService that can be DNS names.
fn hosts(service: &VirtualService) -> Result<Vec<Name>, Why> {
    let mut hosts = Vec::new();
    for (i, host) in service.spec.hosts.iter().enumerate() {
        match publishable_host(host) {
            None => {}
            Some(Ok(name)) => hosts.push(name),
            Some(Err(e)) => return Err((Skip::InvalidField, format!("spec.hosts[{i}]: {e}"))),
        }
    }
    Ok(hosts)
}

/// The Gateway a VirtualService binds to and its addresses, or why it does not.
fn bind<'p>(
    service: &VirtualService,
    gateways: &'p GatewayIndex<'_>,
    (gw_namespace, gw_name): (&'p str, &'p str),
) -> Result<Bound<'p>, Why> {
    let namespace = service.metadata.namespace.as_deref().unwrap_or("default");
    let Some(gateway) = gateways.get(&(gw_namespace, gw_name)) else {
        let detail = format!("spec.gateways: Gateway {gw_namespace}/{gw_name} does not exist");
        return Err((Skip::GatewayNotFound, detail));
    };
    if !exported_to(&service.spec.export_to, namespace, gw_namespace) {
        let detail = format!(
            "spec.exportTo [{}] does not include the Gateway's namespace {gw_namespace}",
            service.spec.export_to.join(", ")
        );
        return Err((Skip::NotExported, detail));
    }
    match &gateway.addresses {
        Ok(addresses) => Ok((gateway, addresses)),
        Err((reason, detail)) => Err((
            *reason,
            format!("{}: {detail}", gateway_ref(gateway.gateway)),
        )),
    }
}

/// Whether a VirtualService in `own` with this `exportTo` is visible in `target`.
fn exported_to(export_to: &[String], own: &str, target: &str) -> bool {
    export_to.is_empty()
        || export_to
            .iter()
            .any(|e| e == "*" || e == target || (e == "." && own == target))
}

/// The name a Gateway's servers admit `host` under when bound from `namespace`: the
/// more specific of the host and the server's host, or `None`.
fn admitted(gateway: &Resolved<'_, IstioGateway>, namespace: &str, host: &Name) -> Option<Name> {
    let own_namespace = gateway
        .gateway
        .metadata
        .namespace
        .as_deref()
        .unwrap_or("default");
    for server in &gateway.gateway.spec.servers {
        for entry in &server.hosts {
            let (scope, server_host) = entry.split_once('/').unwrap_or(("*", entry.as_str()));
            let scope_ok = match scope {
                "*" => true,
                "." => namespace == own_namespace,
                "~" => false,
                other => other == namespace,
            };
            if !scope_ok {
                continue;
            }
            if server_host.trim() == "*" {
                return Some(host.clone());
            }
            let Ok(server_name) = parse_absolute(server_host, true) else {
                continue;
            };
            if let Some(name) = intersect(host, &server_name) {
                return Some(name);
            }
        }
    }
    None
}

/// The records an Istio Gateway publishes for its own hosts: every server host that is
/// a plain name (not a wildcard), at the Gateway's addresses.
pub fn gateway_entries(gateway: &Resolved<'_, IstioGateway>) -> (Vec<Entry>, Vec<Skipped>) {
    let object = gateway_ref(gateway.gateway);
    let mut names = Vec::new();
    let mut skipped = Vec::new();
    for (i, server) in gateway.gateway.spec.servers.iter().enumerate() {
        for (j, entry) in server.hosts.iter().enumerate() {
            let host = entry.split_once('/').map_or(entry.as_str(), |(_, h)| h);
            match publishable_host(host) {
                Some(Ok(name)) if !name.is_wildcard() && !names.contains(&name) => {
                    names.push(name);
                }
                Some(Err(e)) => skipped.push(Skipped {
                    object: object.clone(),
                    reason: Skip::InvalidField,
                    detail: format!("spec.servers[{i}].hosts[{j}]: {e}"),
                }),
                _ => {}
            }
        }
    }
    if names.is_empty() {
        return (Vec::new(), skipped);
    }
    match &gateway.addresses {
        Ok(addresses) => {
            let entries = entries_for(
                &names,
                EntryName::Absolute,
                addresses,
                Kind::VirtualService,
                &object,
            );
            (entries, skipped)
        }
        Err((reason, detail)) => {
            skipped.push(Skipped {
                object,
                reason: *reason,
                detail: format!("{detail} (would publish {})", claimed(&names)),
            });
            (Vec::new(), skipped)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::testing::{service, yaml};

    /// The reference cluster's ingress: Gateway istio-ingress/external-gateway.
    const GATEWAY: &str = r#"
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: external-gateway, namespace: istio-ingress}
spec:
  selector: {istio: ingress}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: ["*.home.example"]
    tls: {mode: SIMPLE, credentialName: home-example-tls}
"#;

    fn ingress_service() -> Service {
        let mut svc = service("istio-ingress", "istio-ingress")
            .lb_ip("192.168.10.40")
            .build();
        svc.spec.as_mut().unwrap().selector = Some(
            [
                ("app".to_string(), "istio-ingress".to_string()),
                ("istio".into(), "ingress".into()),
            ]
            .into(),
        );
        svc
    }

    fn vs(namespace: &str, spec: &str) -> VirtualService {
        yaml(&format!(
            "apiVersion: networking.istio.io/v1beta1\nkind: VirtualService\nmetadata: {{name: app, namespace: {namespace}}}\nspec:\n{spec}"
        ))
    }

    fn set(gateways: &[IstioGateway], services: &[Service]) -> ObjectSet {
        let mut objects = ObjectSet::default();
        for gateway in gateways {
            objects.add(gateway.clone());
        }
        for service in services {
            objects.add(service.clone());
        }
        objects
    }

    fn publish(
        vs: &VirtualService,
        gateways: &[IstioGateway],
        services: &[Service],
    ) -> (Vec<String>, Vec<Skipped>) {
        let objects = set(gateways, services);
        let index = index_gateways(&objects);
        let (entries, skipped) = virtual_service_entries(vs, &index);
        (render(&entries), skipped)
    }

    fn render(entries: &[Entry]) -> Vec<String> {
        let mut found: Vec<String> = entries
            .iter()
            .map(|e| {
                let EntryName::Absolute(n) = &e.name else {
                    panic!("absolute")
                };
                assert_eq!(e.kind, Kind::VirtualService);
                match &e.data {
                    RecordData::Address(ip) => format!("{n} {ip}"),
                    RecordData::Cname(c) => format!("{n} CNAME {c}"),
                    RecordData::Txt(t) => format!("{n} TXT {t}"),
                    srv @ RecordData::Srv { .. } => format!("{srv:?}"),
                }
            })
            .collect();
        found.sort();
        found
    }

    #[test]
    fn a_virtual_service_publishes_at_the_gateway_services_address() {
        let gateway: IstioGateway = yaml(GATEWAY);
        let app = vs(
            "media",
            "  hosts: [jellyfin.home.example]\n  gateways: [istio-ingress/external-gateway]\n  http: [{route: [{destination: {host: jellyfin}}]}]\n",
        );
        let (found, skipped) = publish(&app, &[gateway], &[ingress_service()]);
        assert_eq!(found, ["jellyfin.home.example. 192.168.10.40"]);
        assert!(skipped.is_empty(), "{skipped:?}");
    }

    #[test]
    fn a_gateway_without_namespace_is_in_the_virtual_services_namespace() {
        let mut gateway: IstioGateway = yaml(GATEWAY);
        gateway.metadata.namespace = Some("media".into());
        let app = vs(
            "media",
            "  hosts: [a.home.example]\n  gateways: [external-gateway]\n",
        );
        let (found, _) = publish(&app, std::slice::from_ref(&gateway), &[ingress_service()]);
        assert_eq!(found, ["a.home.example. 192.168.10.40"]);
        let other = vs(
            "photos",
            "  hosts: [a.home.example]\n  gateways: [external-gateway]\n",
        );
        let (found, skipped) = publish(&other, &[gateway], &[ingress_service()]);
        assert!(found.is_empty());
        assert_eq!(skipped[0].reason, Skip::GatewayNotFound);
    }

    #[test]
    fn mesh_only_short_names_stars_and_addresses_publish_nothing() {
        let gateway: IstioGateway = yaml(GATEWAY);
        for spec in [
            "  hosts: [backend]\n  gateways: [mesh]\n",
            "  hosts: [a.home.example]\n  gateways: [mesh]\n",
            "  hosts: [a.home.example]\n",
            "  hosts: [\"*\", backend, 10.0.0.1]\n  gateways: [istio-ingress/external-gateway]\n",
        ] {
            let (found, skipped) = publish(
                &vs("media", spec),
                std::slice::from_ref(&gateway),
                &[ingress_service()],
            );
            assert!(found.is_empty(), "{spec}: {found:?}");
            assert!(skipped.is_empty(), "{spec}: {skipped:?}");
        }
    }

    #[test]
    fn export_to_decides_whether_the_gateway_sees_it() {
        let gateway: IstioGateway = yaml(GATEWAY);
        let cases = [
            ("[]", true),
            ("[\"*\"]", true),
            ("[\".\"]", false),
            ("[istio-ingress]", true),
            ("[media, other]", false),
        ];
        for (export_to, published) in cases {
            let app = vs(
                "media",
                &format!(
                    "  hosts: [a.home.example]\n  gateways: [istio-ingress/external-gateway]\n  exportTo: {export_to}\n"
                ),
            );
            let (found, skipped) =
                publish(&app, std::slice::from_ref(&gateway), &[ingress_service()]);
            assert_eq!(!found.is_empty(), published, "exportTo {export_to}");
            if !published {
                assert_eq!(skipped[0].reason, Skip::NotExported);
            }
        }
        // "." is fine when the Gateway lives in the same namespace.
        let app = vs(
            "istio-ingress",
            "  hosts: [a.home.example]\n  gateways: [external-gateway]\n  exportTo: [\".\"]\n",
        );
        let (found, _) = publish(&app, &[gateway], &[ingress_service()]);
        assert_eq!(found.len(), 1);
    }

    #[test]
    fn server_hosts_admit_by_name_and_namespace() {
        let cases = [
            // (server hosts, VirtualService namespace, host, published as)
            (
                "[\"*.home.example\"]",
                "media",
                "a.home.example",
                Some("a.home.example."),
            ),
            ("[\"*.home.example\"]", "media", "a.other.example", None),
            (
                "[\"media/*\"]",
                "media",
                "a.home.example",
                Some("a.home.example."),
            ),
            ("[\"media/*\"]", "photos", "a.home.example", None),
            ("[\"./*\"]", "media", "a.home.example", None),
            (
                "[\"*/a.home.example\"]",
                "media",
                "a.home.example",
                Some("a.home.example."),
            ),
            ("[\"a.home.example\"]", "media", "b.home.example", None),
            (
                "[\"a.home.example\"]",
                "media",
                "*.home.example",
                Some("a.home.example."),
            ),
        ];
        for (hosts, namespace, host, expected) in cases {
            let gateway: IstioGateway = yaml(&format!(
                "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {{name: gw, namespace: istio-ingress}}\nspec:\n  selector: {{istio: ingress}}\n  servers: [{{port: {{number: 80}}, hosts: {hosts}}}]\n"
            ));
            let app = vs(
                namespace,
                &format!("  hosts: [\"{host}\"]\n  gateways: [istio-ingress/gw]\n"),
            );
            let (found, skipped) = publish(&app, &[gateway], &[ingress_service()]);
            let expected: Vec<String> = expected
                .map(|e| format!("{e} 192.168.10.40"))
                .into_iter()
                .collect();
            assert_eq!(found, expected, "{hosts} from {namespace} for {host}");
            if found.is_empty() {
                assert_eq!(skipped[0].reason, Skip::NotAdmitted);
            }
        }
    }

    #[test]
    fn the_selector_picks_load_balancer_services_in_any_namespace() {
        let gateway: IstioGateway = yaml(GATEWAY);
        let app = vs(
            "media",
            "  hosts: [a.home.example]\n  gateways: [istio-ingress/external-gateway]\n",
        );
        let mut second = ingress_service();
        second.metadata.namespace = Some("other".into());
        second.status = None;
        second.spec.as_mut().unwrap().external_ips = Some(vec!["fd00::40".into()]);
        // Distinct names: one namespace holds one Service of a name.
        let mut cluster_ip = ingress_service();
        cluster_ip.metadata.name = Some("internal".into());
        cluster_ip.spec.as_mut().unwrap().type_ = Some("ClusterIP".into());
        cluster_ip.status = None;
        cluster_ip.spec.as_mut().unwrap().external_ips = Some(vec!["10.9.9.9".into()]);
        let mut unrelated = ingress_service();
        unrelated.metadata.name = Some("egress".into());
        unrelated.spec.as_mut().unwrap().selector =
            Some([("istio".to_string(), "egress".to_string())].into());
        unrelated.status = None;
        unrelated.spec.as_mut().unwrap().external_ips = Some(vec!["10.8.8.8".into()]);
        let (found, _) = publish(
            &app,
            std::slice::from_ref(&gateway),
            &[ingress_service(), second, cluster_ip, unrelated],
        );
        assert_eq!(
            found,
            ["a.home.example. 192.168.10.40", "a.home.example. fd00::40"]
        );

        // No Service selected: not published, and the reason names the selector.
        let (found, skipped) = publish(&app, &[gateway], &[]);
        assert!(found.is_empty());
        assert_eq!(skipped[0].reason, Skip::NoAddress);
        assert!(
            skipped[0].detail.contains("istio=ingress"),
            "{}",
            skipped[0].detail
        );
    }

    /// Istio applies a Gateway without a selector to every workload; we publish nothing
    /// through it (not every LoadBalancer Service's address), and say how to fix it.
    #[test]
    fn a_gateway_without_a_selector_publishes_nothing_and_says_so() {
        let gateway: IstioGateway = yaml(&GATEWAY.replace("  selector: {istio: ingress}\n", ""));
        assert!(gateway.spec.selector.is_empty());
        let app = vs(
            "media",
            "  hosts: [a.home.example]\n  gateways: [istio-ingress/external-gateway]\n",
        );
        let (found, skipped) = publish(&app, &[gateway], &[ingress_service()]);
        assert!(found.is_empty(), "{found:?}");
        assert_eq!(skipped[0].reason, Skip::NoSelector);
        assert!(
            skipped[0].detail.contains("spec.selector"),
            "{}",
            skipped[0].detail
        );
    }

    #[test]
    fn the_target_annotation_overrides_the_services() {
        let mut gateway: IstioGateway = yaml(GATEWAY);
        gateway.metadata.annotations = Some(
            [(
                TARGET_ANNOTATION.to_string(),
                "192.168.10.99, ingress.example.net".to_string(),
            )]
            .into(),
        );
        let app = vs(
            "media",
            "  hosts: [a.home.example]\n  gateways: [istio-ingress/external-gateway]\n",
        );
        let (found, _) = publish(&app, &[gateway], &[ingress_service()]);
        assert_eq!(
            found,
            [
                "a.home.example. 192.168.10.99",
                "a.home.example. CNAME ingress.example.net."
            ]
        );
    }

    #[test]
    fn the_gateways_own_plain_hosts_are_published() {
        let gateway: IstioGateway = yaml(
            "apiVersion: networking.istio.io/v1alpha3\nkind: Gateway\nmetadata: {name: gw, namespace: istio-ingress}\nspec:\n  selector: {istio: ingress}\n  servers:\n  - {port: {number: 443}, hosts: [\"*.home.example\", \"istio-ingress/auth.home.example\", \"*\"]}\n",
        );
        let objects = set(std::slice::from_ref(&gateway), &[ingress_service()]);
        let index = index_gateways(&objects);
        let (entries, skipped) = gateway_entries(&index[&("istio-ingress", "gw")]);
        assert_eq!(render(&entries), ["auth.home.example. 192.168.10.40"]);
        assert_eq!(&*entries[0].object.kind, "Gateway.networking.istio.io");
        assert!(skipped.is_empty());
    }
}
