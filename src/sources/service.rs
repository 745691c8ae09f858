//! Services of type LoadBalancer: their host names and their load-balancer addresses.

use k8s_openapi::api::core::v1::{LoadBalancerIngress, Service, ServicePort, ServiceSpec};

use super::kind::{Output, Source};
use super::objects::ObjectSet;
use super::shared::{claimed, entries_for, load_balancer_targets, object_ref, slim_meta};
use crate::config::Filters;
use crate::zone::names::{parse_hostname, parse_ip};
use hickory_proto::rr::Name;

use crate::zone::{Entry, EntryName, Kind, ObjectRef, RecordData, Skip, Skipped};

/// Host-name annotations, first present wins: CoreDNS's own, then both prefixes
/// external-dns has used (users carry either from an ExternalDNS setup).
pub const HOSTNAME_ANNOTATIONS: [&str; 3] = [
    "coredns.io/hostname",
    "external-dns.kubernetes.io/hostname",
    "external-dns.alpha.kubernetes.io/hostname",
];

impl Source for Service {
    /// An Istio Gateway's addresses are those of the Services in front of its workload.
    const NEEDED_BY: &'static [Kind] = &[Kind::Service, Kind::VirtualService];

    /// The type, external IPs, selector (for Istio), named ports (for SRV) and
    /// load-balancer addresses.
    fn slim(self) -> Self {
        let spec = self.spec.map(|s| ServiceSpec {
            type_: s.type_,
            external_ips: s.external_ips,
            selector: s.selector,
            ports: s
                .ports
                .map(|ports| {
                    ports
                        .into_iter()
                        .filter(|p| p.name.as_deref().is_some_and(|n| !n.is_empty()))
                        .map(|p| ServicePort {
                            name: p.name,
                            port: p.port,
                            protocol: p.protocol,
                            ..ServicePort::default()
                        })
                        .collect::<Vec<_>>()
                })
                .filter(|named| !named.is_empty()),
            ..ServiceSpec::default()
        });
        let mut status = self.status;
        if let Some(s) = status.as_mut() {
            s.conditions = None;
            for point in s
                .load_balancer
                .iter_mut()
                .flat_map(|lb| lb.ingress.iter_mut().flatten())
            {
                *point = LoadBalancerIngress {
                    ip: point.ip.take(),
                    hostname: point.hostname.take(),
                    ..LoadBalancerIngress::default()
                };
            }
        }
        Service {
            metadata: slim_meta(self.metadata, &HOSTNAME_ANNOTATIONS),
            spec,
            status,
        }
    }

    fn entries(objects: &ObjectSet, _: &Filters, out: &mut Output) {
        for service in objects.published::<Service>() {
            out.keep(service_entries(service));
        }
    }
}

/// The records a Service publishes. Only `type: LoadBalancer` publishes anything: a
/// ClusterIP is not reachable from the LAN. Names come from the first host-name
/// annotation (comma-separated), else `<name>.<namespace>` under every domain.
/// Addresses come from `spec.externalIPs`, else `status.loadBalancer.ingress` (an
/// `ip`, or a `hostname` that becomes a CNAME). A malformed value skips the object.
pub fn service_entries(service: &Service) -> Result<Vec<Entry>, Skipped> {
    let object = object_ref(&Service::label(), &service.metadata);
    let invalid = |field: String, detail: String| Skipped {
        object: object.clone(),
        reason: Skip::InvalidField,
        detail: format!("{field}: {detail}"),
    };
    let spec = service.spec.as_ref();
    if spec.and_then(|s| s.type_.as_deref()) != Some("LoadBalancer") {
        return Ok(Vec::new());
    }

    let names = hostnames(service).map_err(|(field, e)| invalid(field, e))?;

    // From here on a problem names what the object would have published, so that
    // `/explain` of that name finds it.
    let claimed = claimed(&names);
    let invalid = |field: String, detail: String| Skipped {
        object: object.clone(),
        reason: Skip::InvalidField,
        detail: format!("{field}: {detail} (would publish {claimed})"),
    };
    let targets = service_addresses(service).map_err(|(field, e)| invalid(field, e))?;
    if targets.is_empty() {
        return Err(Skipped {
            object,
            reason: Skip::NoAddress,
            detail: format!(
                "no load-balancer address yet (status.loadBalancer.ingress is empty) for {claimed}"
            ),
        });
    }

    let mut entries = entries_for(
        &names,
        EntryName::Hostname,
        &targets,
        Kind::Service,
        &object,
    );
    entries.extend(srv_entries(service, &names, &object).map_err(|(f, e)| invalid(f, e))?);
    Ok(entries)
}

/// The names a Service publishes: those of the first host-name annotation present
/// (comma-separated), else `<name>.<namespace>`. An error names the field.
fn hostnames(service: &Service) -> Result<Vec<Name>, (String, String)> {
    let annotations = service.metadata.annotations.as_ref();
    let annotated = HOSTNAME_ANNOTATIONS.iter().find_map(|key| {
        annotations
            .and_then(|a| a.get(*key))
            .map(|value| (*key, value))
    });
    match annotated {
        Some((key, value)) => value
            .split(',')
            .filter(|part| !part.trim().is_empty())
            .map(|part| {
                parse_hostname(part, true).map_err(|e| (format!("metadata.annotations[{key}]"), e))
            })
            .collect(),
        None => {
            let meta = &service.metadata;
            let default = format!(
                "{}.{}",
                meta.name.as_deref().unwrap_or_default(),
                meta.namespace.as_deref().unwrap_or("default")
            );
            Ok(vec![
                parse_hostname(&default, false).map_err(|e| ("metadata.name".to_string(), e))?,
            ])
        }
    }
}

/// The Kubernetes DNS convention for named ports: `_<port name>._<protocol>.<name>` SRV
/// `0 100 <port> <name>` for each name of the Service (wildcards excepted); unnamed ports
/// publish none. A relative name's target is completed with the same domain as its SRV
/// owner by the zone builder.
fn srv_entries(
    service: &Service,
    names: &[Name],
    object: &ObjectRef,
) -> Result<Vec<Entry>, (String, String)> {
    let ports = service
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_deref())
        .unwrap_or_default();
    let mut entries = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let Some(port_name) = port.name.as_deref().filter(|n| !n.is_empty()) else {
            continue;
        };
        let field = || format!("spec.ports[{i}]");
        let number = u16::try_from(port.port).map_err(|_| {
            (
                format!("{}.port", field()),
                format!("{} is not a port", port.port),
            )
        })?;
        let protocol = port
            .protocol
            .as_deref()
            .unwrap_or("TCP")
            .to_ascii_lowercase();
        let prefix = Name::from_labels([format!("_{port_name}"), format!("_{protocol}")])
            .map_err(|e| (format!("{}.name", field()), format!("{port_name:?}: {e}")))?;
        for name in names.iter().filter(|n| !n.is_wildcard()) {
            let owner = prefix
                .clone()
                .append_name(name)
                .map_err(|e| (format!("{}.name", field()), format!("{port_name:?}: {e}")))?;
            entries.push(Entry {
                name: EntryName::Hostname(owner),
                data: RecordData::Srv {
                    priority: 0,
                    weight: 100,
                    port: number,
                    target: name.clone(),
                },
                ttl: None,
                kind: Kind::Service,
                object: object.clone(),
            });
        }
    }
    Ok(entries)
}

/// The addresses a Service of type LoadBalancer is reached at: `spec.externalIPs` if
/// set, else `status.loadBalancer.ingress` (an `ip`, or a `hostname` that becomes a
/// CNAME). An error names the field and what is wrong with it.
pub fn service_addresses(service: &Service) -> Result<Vec<RecordData>, (String, String)> {
    let external_ips = service
        .spec
        .as_ref()
        .and_then(|s| s.external_ips.as_deref())
        .unwrap_or_default();
    if external_ips.is_empty() {
        let points = service
            .status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|lb| lb.ingress.as_deref())
            .unwrap_or_default();
        return load_balancer_targets(points.iter().map(|p| (p.ip.as_ref(), p.hostname.as_ref())));
    }
    let mut targets = Vec::new();
    for (i, ip) in external_ips.iter().enumerate() {
        let ip = parse_ip(ip).map_err(|e| (format!("spec.externalIPs[{i}]"), e))?;
        targets.push(RecordData::Address(ip));
    }
    Ok(targets)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::testing::{service, yaml};

    fn names_and_data(entries: &[Entry]) -> Vec<(String, String)> {
        entries
            .iter()
            .map(|e| {
                let name = match &e.name {
                    EntryName::Hostname(n) | EntryName::Absolute(n) => n.to_string(),
                };
                let data = match &e.data {
                    RecordData::Address(ip) => ip.to_string(),
                    RecordData::Cname(n) => format!("CNAME {n}"),
                    RecordData::Txt(t) => format!("TXT {t}"),
                    srv @ RecordData::Srv { .. } => format!("{srv:?}"),
                };
                (name, data)
            })
            .collect()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn named_ports_publish_srv_for_each_name() {
        let svc: Service = yaml(
            r#"
apiVersion: v1
kind: Service
metadata:
  name: mc
  namespace: games
  annotations: {coredns.io/hostname: "mc.home.example,*.mc.home.example,minecraft.home.example"}
spec:
  type: LoadBalancer
  ports:
  - {name: minecraft, port: 25565}
  - {name: Voice, port: 9987, protocol: UDP}
  - {port: 8080}
status:
  loadBalancer: {ingress: [{ip: 192.168.10.60}]}
"#,
        );
        let srv: Vec<(String, String)> = names_and_data(&service_entries(&svc).unwrap())
            .into_iter()
            .filter(|(_, data)| data.starts_with("Srv"))
            .collect();
        let expected = |owner: &str, port: u16, target: &str| {
            let target = hickory_proto::rr::Name::from_ascii(target).unwrap();
            (
                owner.to_string(),
                format!(
                    "{:?}",
                    RecordData::Srv {
                        priority: 0,
                        weight: 100,
                        port,
                        target
                    }
                ),
            )
        };
        // The protocol defaults to TCP and is lower-cased; the wildcard name and the
        // unnamed port publish none.
        assert_eq!(
            srv,
            [
                expected("_minecraft._tcp.mc.home.example", 25565, "mc.home.example"),
                expected(
                    "_minecraft._tcp.minecraft.home.example",
                    25565,
                    "minecraft.home.example"
                ),
                expected("_Voice._udp.mc.home.example", 9987, "mc.home.example"),
                expected(
                    "_Voice._udp.minecraft.home.example",
                    9987,
                    "minecraft.home.example"
                ),
            ]
        );
    }

    #[test]
    fn load_balancer_without_annotation_is_name_dot_namespace() {
        let svc = service("web", "apps").lb_ip("192.168.1.10").build();
        assert_eq!(
            names_and_data(&service_entries(&svc).unwrap()),
            pairs(&[("web.apps", "192.168.1.10")])
        );
    }

    #[test]
    fn annotations_in_order_of_precedence_with_several_names() {
        let svc = service("web", "apps")
            .annotation(
                "external-dns.alpha.kubernetes.io/hostname",
                "ignored.home.example",
            )
            .annotation(
                "external-dns.kubernetes.io/hostname",
                "a.home.example, b.home.example",
            )
            .lb_ip("192.168.1.10")
            .build();
        let expected = pairs(&[
            ("a.home.example", "192.168.1.10"),
            ("b.home.example", "192.168.1.10"),
        ]);
        assert_eq!(names_and_data(&service_entries(&svc).unwrap()), expected);
        let svc = service("web", "apps")
            .annotation("coredns.io/hostname", "first.home.example")
            .annotation("external-dns.kubernetes.io/hostname", "second.home.example")
            .lb_ip("192.168.1.10")
            .build();
        assert_eq!(
            names_and_data(&service_entries(&svc).unwrap()),
            pairs(&[("first.home.example", "192.168.1.10")])
        );
    }

    #[test]
    fn external_ips_win_over_the_load_balancer_status() {
        let svc = service("web", "apps")
            .external_ip("10.1.0.1")
            .lb_ip("192.168.1.10")
            .build();
        assert_eq!(
            names_and_data(&service_entries(&svc).unwrap()),
            pairs(&[("web.apps", "10.1.0.1")])
        );
    }

    #[test]
    fn ipv6_and_hostname_addresses() {
        let svc = service("web", "apps")
            .lb_ip("fd00::10")
            .lb_hostname("lb.cloud.example")
            .build();
        let expected = pairs(&[
            ("web.apps", "fd00::10"),
            ("web.apps", "CNAME lb.cloud.example."),
        ]);
        assert_eq!(names_and_data(&service_entries(&svc).unwrap()), expected);
    }

    #[test]
    fn other_service_types_publish_nothing() {
        let svc = service("web", "apps")
            .lb_ip("192.168.1.10")
            .type_("ClusterIP")
            .build();
        assert_eq!(service_entries(&svc).unwrap(), Vec::new());
    }

    #[test]
    fn malformed_values_skip_the_object_naming_the_field() {
        // (service, field the detail must name)
        let cases = [
            (
                service("a", "apps").lb_ip("192.168.1.300").build(),
                "status.loadBalancer.ingress[0].ip",
            ),
            (
                service("b", "apps").external_ip("nope").build(),
                "spec.externalIPs[0]",
            ),
            (
                service("c", "apps")
                    .annotation("coredns.io/hostname", "bad name.home.example")
                    .lb_ip("10.0.0.1")
                    .build(),
                "metadata.annotations[coredns.io/hostname]",
            ),
        ];
        for (svc, field) in cases {
            let skipped = service_entries(&svc).unwrap_err();
            assert_eq!(skipped.reason, Skip::InvalidField);
            assert!(skipped.detail.starts_with(field), "{}", skipped.detail);
        }
    }

    #[test]
    fn pending_load_balancer_is_skipped_as_no_address() {
        let svc = service("web", "apps").build();
        assert_eq!(service_entries(&svc).unwrap_err().reason, Skip::NoAddress);
    }

    #[test]
    fn a_service_keeps_what_the_zone_reads_and_nothing_else() {
        let service: Service = yaml(
            r#"
metadata:
  name: web
  namespace: apps
  uid: 7d2c
  resourceVersion: "123"
  labels: {app: web, k8s-gateway.dns/ignore: "false"}
  annotations:
    coredns.io/hostname: web.home.example
    kubectl.kubernetes.io/last-applied-configuration: '{"big": "json"}'
  managedFields: [{manager: kubectl, operation: Apply, fieldsType: FieldsV1, fieldsV1: {f:spec: {}}}]
spec:
  type: LoadBalancer
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}, {name: https, port: 443, targetPort: 8443, protocol: TCP, appProtocol: https}]
  clusterIP: 10.43.0.10
  externalIPs: [192.168.10.9]
status:
  loadBalancer: {ingress: [{ip: 192.168.10.20, ipMode: VIP, ports: [{port: 80, protocol: TCP}]}]}
"#,
        );
        let before = service_entries(&service).unwrap();
        let slim = service.slim();
        assert_eq!(service_entries(&slim).unwrap(), before);
        assert!(slim.metadata.managed_fields.is_none());
        assert!(slim.metadata.uid.is_none());
        assert_eq!(slim.metadata.labels.as_ref().unwrap().len(), 1);
        assert_eq!(slim.metadata.annotations.as_ref().unwrap().len(), 1);
        let spec = slim.spec.as_ref().unwrap();
        assert!(spec.cluster_ip.is_none());
        // Only named ports (for SRV), with only their name, port and protocol.
        assert_eq!(
            spec.ports.as_deref().unwrap(),
            [ServicePort {
                name: Some("https".into()),
                port: 443,
                protocol: Some("TCP".into()),
                ..ServicePort::default()
            }]
        );
        assert_eq!(spec.selector.as_ref().unwrap()["app"], "web");
        let point = &slim.status.unwrap().load_balancer.unwrap().ingress.unwrap()[0];
        assert_eq!(point.ip.as_deref(), Some("192.168.10.20"));
        assert!(point.ports.is_none());
    }
}
