//! Istio (networking.istio.io): VirtualService hosts at the addresses of the ingress
//! Gateways they bind to.
//!
//! A VirtualService names hosts and gateways; the Gateway names a workload selector;
//! the LoadBalancer Service in front of that workload has the address the LAN uses.
//! k8s_gateway never read Istio objects, so users kept a Service annotation per app.
//!
//! The types are our own and read only what the zone needs: v1, v1beta1 and v1alpha3
//! decode into them, and unknown fields are ignored.

use std::collections::{BTreeMap, HashMap};

use hickory_proto::rr::Name;
use k8s_openapi::api::core::v1::Service;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::names::{intersect, is_ip, parse_hostname};
use super::object_ref;
use super::service::service_addresses;
use crate::zone::{Entry, EntryName, Kind, ObjectRef, RecordData, Skipped};

pub const GROUP: &str = "networking.istio.io";

/// How an Istio Gateway is named in warnings, zone-file comments and `/explain`: not
/// plain `Gateway`, which is the Gateway API's.
pub const GATEWAY_KIND: &str = "Gateway.networking.istio.io";

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

/// An Istio Gateway with the addresses it is reached at, worked out once per rebuild.
pub struct ResolvedGateway<'a> {
    pub gateway: &'a IstioGateway,
    pub object: ObjectRef,
    pub namespace: &'a str,
    /// The addresses, or why there are none.
    pub addresses: Result<Vec<RecordData>, (&'static str, String)>,
}

/// Every Istio Gateway by namespace and name, with its addresses.
pub type GatewayIndex<'a> = HashMap<(&'a str, &'a str), ResolvedGateway<'a>>;

pub fn index_gateways<'a>(gateways: &'a [IstioGateway], services: &[Service]) -> GatewayIndex<'a> {
    gateways
        .iter()
        .map(|gateway| {
            let namespace = gateway.metadata.namespace.as_deref().unwrap_or("default");
            let name = gateway.metadata.name.as_deref().unwrap_or_default();
            let resolved = ResolvedGateway {
                gateway,
                object: object_ref(GATEWAY_KIND, &gateway.metadata),
                namespace,
                addresses: gateway_addresses(gateway, services),
            };
            ((namespace, name), resolved)
        })
        .collect()
}

/// The addresses of an Istio Gateway: the target annotation when set, else every
/// LoadBalancer Service (any namespace) whose selector contains all of the Gateway's
/// selector, at its external IPs or load-balancer addresses.
fn gateway_addresses(
    gateway: &IstioGateway,
    services: &[Service],
) -> Result<Vec<RecordData>, (&'static str, String)> {
    let mut found = Vec::new();
    let annotation = gateway
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(TARGET_ANNOTATION));
    if let Some(targets) = annotation {
        for target in targets.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let data = if is_ip(target) {
                RecordData::Address(target.parse().map_err(|e| {
                    (
                        "invalid_field",
                        format!("metadata.annotations[{TARGET_ANNOTATION}]: {e}"),
                    )
                })?)
            } else {
                let mut host = parse_hostname(target, false).map_err(|e| {
                    (
                        "invalid_field",
                        format!("metadata.annotations[{TARGET_ANNOTATION}]: {e}"),
                    )
                })?;
                host.set_fqdn(true);
                RecordData::Cname(host)
            };
            if !found.contains(&data) {
                found.push(data);
            }
        }
        return Ok(found);
    }
    let wanted = &gateway.spec.selector;
    if wanted.is_empty() {
        return Err((
            "no_address",
            "spec.selector is empty: no ingress Service to take addresses from".into(),
        ));
    }
    let mut selected = Vec::new();
    for service in services {
        let Some(spec) = service.spec.as_ref() else {
            continue;
        };
        if spec.type_.as_deref() != Some("LoadBalancer") {
            continue;
        }
        let selector = spec.selector.as_ref();
        if !wanted
            .iter()
            .all(|(k, v)| selector.and_then(|s| s.get(k)) == Some(v))
        {
            continue;
        }
        let service_ref = object_ref("Service", &service.metadata);
        selected.push(service_ref.to_string());
        let addresses = service_addresses(service)
            .map_err(|(field, e)| ("invalid_field", format!("{service_ref}: {field}: {e}")))?;
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
        return Err(("no_address", detail));
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
    Some(parse_hostname(host, true).map(|mut n| {
        n.set_fqdn(true);
        n
    }))
}

/// The records a VirtualService publishes through the ingress Gateways it binds to, and
/// for each binding that does not publish, why.
pub fn virtual_service_entries(
    service: &VirtualService,
    gateways: &GatewayIndex<'_>,
) -> (Vec<Entry>, Vec<Skipped>) {
    let object = object_ref("VirtualService", &service.metadata);
    let namespace = service.metadata.namespace.as_deref().unwrap_or("default");
    let mut entries = Vec::new();
    let mut skipped = Vec::new();
    let mut skip = |reason, detail: String| {
        skipped.push(Skipped {
            object: object.clone(),
            reason,
            detail,
        })
    };

    let mut hosts = Vec::new();
    for (i, host) in service.spec.hosts.iter().enumerate() {
        match publishable_host(host) {
            None => {}
            Some(Ok(name)) => hosts.push(name),
            Some(Err(e)) => {
                skip("invalid_field", format!("spec.hosts[{i}]: {e}"));
                return (entries, skipped);
            }
        }
    }
    if hosts.is_empty() {
        return (entries, skipped);
    }
    let claimed = hosts
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");

    for reference in &service.spec.gateways {
        if reference == "mesh" {
            continue;
        }
        let (gw_namespace, gw_name) = reference
            .split_once('/')
            .unwrap_or((namespace, reference.as_str()));
        let Some(gateway) = gateways.get(&(gw_namespace, gw_name)) else {
            skip(
                "gateway_not_found",
                format!(
                    "spec.gateways: Gateway {gw_namespace}/{gw_name} does not exist (would publish {claimed})"
                ),
            );
            continue;
        };
        if !exported_to(&service.spec.export_to, namespace, gw_namespace) {
            skip(
                "not_exported",
                format!(
                    "spec.exportTo [{}] does not include the Gateway's namespace {gw_namespace} (would publish {claimed})",
                    service.spec.export_to.join(", ")
                ),
            );
            continue;
        }
        let addresses = match &gateway.addresses {
            Ok(addresses) => addresses,
            Err((reason, detail)) => {
                skip(
                    reason,
                    format!("{}: {detail} (would publish {claimed})", gateway.object),
                );
                continue;
            }
        };
        for host in &hosts {
            let Some(name) = admitted(gateway, namespace, host) else {
                skip(
                    "not_admitted",
                    format!(
                        "no server of {} admits {host} from namespace {namespace}",
                        gateway.object
                    ),
                );
                continue;
            };
            for data in addresses {
                let entry = Entry {
                    name: EntryName::Absolute(name.clone()),
                    data: data.clone(),
                    ttl: None,
                    kind: Kind::VirtualService,
                    object: object.clone(),
                };
                if !entries.contains(&entry) {
                    entries.push(entry);
                }
            }
        }
    }
    (entries, skipped)
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
fn admitted(gateway: &ResolvedGateway<'_>, namespace: &str, host: &Name) -> Option<Name> {
    for server in &gateway.gateway.spec.servers {
        for entry in &server.hosts {
            let (scope, server_host) = entry.split_once('/').unwrap_or(("*", entry.as_str()));
            let scope_ok = match scope {
                "*" => true,
                "." => namespace == gateway.namespace,
                "~" => false,
                other => other == namespace,
            };
            if !scope_ok {
                continue;
            }
            if server_host.trim() == "*" {
                return Some(host.clone());
            }
            let Ok(mut server_name) = parse_hostname(server_host, true) else {
                continue;
            };
            server_name.set_fqdn(true);
            if let Some(name) = intersect(host, &server_name) {
                return Some(name);
            }
        }
    }
    None
}

/// The records an Istio Gateway publishes for its own hosts: every server host that is
/// a plain name (not a wildcard), at the Gateway's addresses.
pub fn gateway_entries(gateway: &ResolvedGateway<'_>) -> (Vec<Entry>, Vec<Skipped>) {
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
                    object: gateway.object.clone(),
                    reason: "invalid_field",
                    detail: format!("spec.servers[{i}].hosts[{j}]: {e}"),
                }),
                _ => {}
            }
        }
    }
    if names.is_empty() {
        return (Vec::new(), skipped);
    }
    let addresses = match &gateway.addresses {
        Ok(a) => a,
        Err((reason, detail)) => {
            let claimed = names
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            skipped.push(Skipped {
                object: gateway.object.clone(),
                reason,
                detail: format!("{detail} (would publish {claimed})"),
            });
            return (Vec::new(), skipped);
        }
    };
    let entries = names
        .iter()
        .flat_map(|name| {
            addresses.iter().map(|data| Entry {
                name: EntryName::Absolute(name.clone()),
                data: data.clone(),
                ttl: None,
                kind: Kind::VirtualService,
                object: gateway.object.clone(),
            })
        })
        .collect();
    (entries, skipped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::testing::service;

    fn yaml<T: serde::de::DeserializeOwned>(text: &str) -> T {
        serde_saphyr::from_str(text).unwrap()
    }

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

    fn publish(
        vs: &VirtualService,
        gateways: &[IstioGateway],
        services: &[Service],
    ) -> (Vec<String>, Vec<Skipped>) {
        let index = index_gateways(gateways, services);
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
        assert_eq!(skipped[0].reason, "gateway_not_found");
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
                assert_eq!(skipped[0].reason, "not_exported");
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
                assert_eq!(skipped[0].reason, "not_admitted");
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
        let mut cluster_ip = ingress_service();
        cluster_ip.spec.as_mut().unwrap().type_ = Some("ClusterIP".into());
        cluster_ip.status = None;
        cluster_ip.spec.as_mut().unwrap().external_ips = Some(vec!["10.9.9.9".into()]);
        let mut unrelated = ingress_service();
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
        assert_eq!(skipped[0].reason, "no_address");
        assert!(
            skipped[0].detail.contains("istio=ingress"),
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
        let services = [ingress_service()];
        let index = index_gateways(std::slice::from_ref(&gateway), &services);
        let (entries, skipped) = gateway_entries(&index[&("istio-ingress", "gw")]);
        assert_eq!(render(&entries), ["auth.home.example. 192.168.10.40"]);
        assert_eq!(&*entries[0].object.kind, GATEWAY_KIND);
        assert!(skipped.is_empty());
    }
}
