//! Services of type LoadBalancer: their host names and their load-balancer addresses.

use k8s_openapi::api::core::v1::Service;

use super::kind::{DecodeError, Kept, Of, Output, Source};
use super::objects::{Key, ObjectSet, ignored};
use super::shared::{claimed, load_balancer_targets, object_ref, push_entries_for};
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

    type Kept = KeptService;

    fn keep(self) -> KeptService {
        KeptService::from(self)
    }

    /// Only the fields a Service keeps: at 100,000 Services the rest (cluster IPs,
    /// node ports, timestamps, managed fields) was most of the decoding's allocations.
    fn decode_kept(value: serde_json::Value) -> Result<KeptService, DecodeError> {
        serde_path_to_error::deserialize::<_, wire::ServiceFields>(value).map(KeptService::from)
    }

    fn entries(objects: &ObjectSet, _: &Filters, out: &mut Output) {
        // About one entry per Service: room for them all at once, and each entry made
        // in place, not copied from a vector per Service.
        out.entries.reserve(objects.len(&Of::<Service>::KIND));
        for service in objects.published::<Service>() {
            let before = out.entries.len();
            if let Err(skip) = push_service_entries(service, &mut out.entries) {
                out.entries.truncate(before);
                out.skipped.push(skip);
            }
        }
    }
}

/// What the zone reads of a Service, and nothing else: 100,000 Services are kept in
/// about the memory of their names and addresses. Values stay as written (an invalid
/// address is reported, naming its field, when the entries are made), and a Service
/// that is not of type LoadBalancer keeps only its identity, since it publishes nothing
/// and no Istio Gateway takes addresses from it.
#[derive(Clone, Debug, PartialEq)]
pub struct KeptService {
    /// Kind, namespace and name, shared with every entry made from it.
    pub object: ObjectRef,
    /// `metadata.uid`, for the Events recorded on it (`--events`).
    pub uid: Option<Box<str>>,
    pub ignored: bool,
    /// `spec.type` is `LoadBalancer`.
    pub load_balancer: bool,
    /// The first host-name annotation present, and its value.
    pub hostnames: Option<(&'static str, Box<str>)>,
    /// `spec.externalIPs`.
    pub external_ips: Box<[Box<str>]>,
    /// `spec.selector`, for Istio Gateways' workload selectors.
    pub selector: Box<[(Box<str>, Box<str>)]>,
    /// The named ports (for SRV), by their index in `spec.ports`.
    pub ports: Box<[NamedPort]>,
    /// `status.loadBalancer.ingress`: each point's `ip` or `hostname`.
    pub ingress: Box<[LoadBalancerPoint]>,
}

/// A named Service port: what its SRV records need.
#[derive(Clone, Debug, PartialEq)]
pub struct NamedPort {
    /// Its index in `spec.ports`, for messages that name the field.
    pub index: u32,
    pub name: Box<str>,
    pub port: i32,
    pub protocol: Option<Box<str>>,
}

/// One `status.loadBalancer.ingress` point.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadBalancerPoint {
    pub ip: Option<Box<str>>,
    pub hostname: Option<Box<str>>,
}

impl From<Service> for KeptService {
    fn from(service: Service) -> Self {
        KeptService::from(wire::ServiceFields::from(service))
    }
}

impl From<wire::ServiceFields> for KeptService {
    fn from(service: wire::ServiceFields) -> Self {
        let meta = service.metadata;
        let object = object_ref(&Service::label(), &meta);
        let ignored = ignored(&meta);
        let spec = service.spec.unwrap_or_default();
        let load_balancer = spec.type_.as_deref() == Some("LoadBalancer");
        let mut kept = KeptService {
            object,
            uid: meta.uid.map(Into::into),
            ignored,
            load_balancer,
            hostnames: None,
            external_ips: Box::default(),
            selector: Box::default(),
            ports: Box::default(),
            ingress: Box::default(),
        };
        if !load_balancer {
            return kept;
        }
        let mut annotations = meta.annotations.unwrap_or_default();
        kept.hostnames = HOSTNAME_ANNOTATIONS
            .iter()
            .find_map(|key| annotations.remove(*key).map(|v| (*key, v.into())));
        kept.external_ips = boxed(spec.external_ips.unwrap_or_default());
        kept.selector = (spec.selector.unwrap_or_default().into_iter())
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        kept.ports = (spec.ports.unwrap_or_default().into_iter().enumerate())
            .filter_map(|(index, p)| {
                let name = p.name.filter(|n| !n.is_empty())?;
                Some(NamedPort {
                    index: u32::try_from(index).unwrap_or(u32::MAX),
                    name: name.into(),
                    port: p.port,
                    protocol: p.protocol.map(Into::into),
                })
            })
            .collect();
        kept.ingress = (service.status.and_then(|s| s.load_balancer))
            .and_then(|lb| lb.ingress)
            .unwrap_or_default()
            .into_iter()
            .map(|point| LoadBalancerPoint {
                ip: point.ip.map(Into::into),
                hostname: point.hostname.map(Into::into),
            })
            .collect();
        kept
    }
}

impl Kept for KeptService {
    fn ignored(&self) -> bool {
        self.ignored
    }

    fn key(&self) -> Key {
        (self.object.namespace.clone(), self.object.name.clone())
    }

    fn uid(&self) -> Option<&str> {
        self.uid.as_deref()
    }
}

fn boxed(strings: Vec<String>) -> Box<[Box<str>]> {
    strings.into_iter().map(Into::into).collect()
}

/// The records a Service publishes. Only `type: LoadBalancer` publishes anything: a
/// ClusterIP is not reachable from the LAN. Names come from the first host-name
/// annotation (comma-separated), else `<name>.<namespace>` under every domain.
/// Addresses come from `spec.externalIPs`, else `status.loadBalancer.ingress` (an
/// `ip`, or a `hostname` that becomes a CNAME). A malformed value skips the object.
pub fn service_entries(service: &KeptService) -> Result<Vec<Entry>, Skipped> {
    let mut entries = Vec::new();
    push_service_entries(service, &mut entries).map(|()| entries)
}

/// [`service_entries`], pushed onto `entries`; on an error some may have been pushed.
fn push_service_entries(service: &KeptService, entries: &mut Vec<Entry>) -> Result<(), Skipped> {
    let object = &service.object;
    let invalid = |field: String, detail: String| Skipped {
        object: object.clone(),
        reason: Skip::InvalidField,
        detail: format!("{field}: {detail}"),
    };
    if !service.load_balancer {
        return Ok(());
    }

    let names = hostnames(service).map_err(|(field, e)| invalid(field, e))?;

    // From here on a problem names what the object would have published, so that
    // `/explain` of that name finds it.
    let invalid = |field: String, detail: String| Skipped {
        object: object.clone(),
        reason: Skip::InvalidField,
        detail: format!("{field}: {detail} (would publish {})", claimed(&names)),
    };
    let targets = service_addresses(service).map_err(|(field, e)| invalid(field, e))?;
    if targets.is_empty() {
        return Err(Skipped {
            object: object.clone(),
            reason: Skip::NoAddress,
            detail: format!(
                "no load-balancer address yet (status.loadBalancer.ingress is empty) for {}",
                claimed(&names)
            ),
        });
    }

    push_entries_for(
        entries,
        &names,
        EntryName::Hostname,
        &targets,
        Kind::Service,
        object,
    );
    push_srv_entries(entries, service, &names, object).map_err(|(f, e)| invalid(f, e))
}

/// The names a Service publishes: those of the first host-name annotation present
/// (comma-separated), else `<name>.<namespace>`. An error names the field.
fn hostnames(service: &KeptService) -> Result<Vec<Name>, (String, String)> {
    match &service.hostnames {
        Some((key, value)) => value
            .split(',')
            .filter(|part| !part.trim().is_empty())
            .map(|part| {
                parse_hostname(part, true).map_err(|e| (format!("metadata.annotations[{key}]"), e))
            })
            .collect(),
        None => {
            let object = &service.object;
            let default = format!("{}.{}", object.name, object.namespace);
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
fn push_srv_entries(
    entries: &mut Vec<Entry>,
    service: &KeptService,
    names: &[Name],
    object: &ObjectRef,
) -> Result<(), (String, String)> {
    for port in &service.ports {
        let port_name = &port.name;
        let field = || format!("spec.ports[{}]", port.index);
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
    Ok(())
}

/// The addresses a Service of type LoadBalancer is reached at: `spec.externalIPs` if
/// set, else `status.loadBalancer.ingress` (an `ip`, or a `hostname` that becomes a
/// CNAME). An error names the field and what is wrong with it.
pub fn service_addresses(service: &KeptService) -> Result<Vec<RecordData>, (String, String)> {
    if service.external_ips.is_empty() {
        let points = service.ingress.iter();
        return load_balancer_targets(points.map(|p| (p.ip.as_deref(), p.hostname.as_deref())));
    }
    let mut targets = Vec::new();
    for (i, ip) in service.external_ips.iter().enumerate() {
        let ip = parse_ip(ip).map_err(|e| (format!("spec.externalIPs[{i}]"), e))?;
        targets.push(RecordData::Address(ip));
    }
    Ok(targets)
}

/// The fields of a Service that [`KeptService`] reads, as the API spells them, and
/// nothing else: serde skips the rest without allocating. The same rules as
/// `k8s_openapi`'s `Service` for what is read (`apiVersion` must be `v1`, a missing
/// `port` is 0, `null` is absent), so an object decodes, or names its bad field,
/// as before; a bad value in a field no kind reads no longer skips the Service.
pub(super) mod wire {
    use std::collections::BTreeMap;

    use k8s_openapi::Resource;
    use k8s_openapi::api::core::v1::Service;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use serde::Deserialize;
    use serde::de::{Deserializer, Error as _, Unexpected};

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct ServiceFields {
        #[serde(default, rename = "apiVersion", deserialize_with = "api_version")]
        _api_version: (),
        #[serde(default, rename = "kind", deserialize_with = "kind")]
        _kind: (),
        #[serde(default, deserialize_with = "metadata")]
        pub metadata: ObjectMeta,
        pub spec: Option<SpecFields>,
        pub status: Option<StatusFields>,
    }

    #[derive(Default, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct SpecFields {
        #[serde(rename = "type")]
        pub type_: Option<String>,
        #[serde(rename = "externalIPs")]
        pub external_ips: Option<Vec<String>>,
        pub selector: Option<BTreeMap<String, String>>,
        pub ports: Option<Vec<PortFields>>,
    }

    #[derive(Deserialize)]
    pub struct PortFields {
        pub name: Option<String>,
        /// Missing reads as 0, as `k8s_openapi` reads it.
        #[serde(default)]
        pub port: i32,
        pub protocol: Option<String>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct StatusFields {
        pub load_balancer: Option<LoadBalancerFields>,
    }

    #[derive(Deserialize)]
    pub struct LoadBalancerFields {
        pub ingress: Option<Vec<IngressFields>>,
    }

    #[derive(Deserialize)]
    pub struct IngressFields {
        pub ip: Option<String>,
        pub hostname: Option<String>,
    }

    /// Name, namespace, labels and annotations: what a Service's identity, the ignore
    /// label and the host-name annotations need.
    #[derive(Default, Deserialize)]
    struct MetadataFields {
        name: Option<String>,
        namespace: Option<String>,
        uid: Option<String>,
        labels: Option<BTreeMap<String, String>>,
        annotations: Option<BTreeMap<String, String>>,
    }

    fn metadata<'de, D: Deserializer<'de>>(deserializer: D) -> Result<ObjectMeta, D::Error> {
        let fields = Option::<MetadataFields>::deserialize(deserializer)?.unwrap_or_default();
        Ok(ObjectMeta {
            name: fields.name,
            namespace: fields.namespace,
            uid: fields.uid,
            labels: fields.labels,
            annotations: fields.annotations,
            ..ObjectMeta::default()
        })
    }

    /// Present, it is the one the type is: `v1`.
    fn api_version<'de, D: Deserializer<'de>>(deserializer: D) -> Result<(), D::Error> {
        expect(deserializer, Service::API_VERSION)
    }

    fn kind<'de, D: Deserializer<'de>>(deserializer: D) -> Result<(), D::Error> {
        expect(deserializer, Service::KIND)
    }

    fn expect<'de, D: Deserializer<'de>>(deserializer: D, wanted: &str) -> Result<(), D::Error> {
        let value = String::deserialize(deserializer)?;
        if value == wanted {
            Ok(())
        } else {
            Err(D::Error::invalid_value(Unexpected::Str(&value), &wanted))
        }
    }

    /// A typed Service (tests, benchmarks) kept through the same rules.
    impl From<Service> for ServiceFields {
        fn from(service: Service) -> Self {
            let spec = service.spec.map(|spec| SpecFields {
                type_: spec.type_,
                external_ips: spec.external_ips,
                selector: spec.selector,
                ports: spec.ports.map(|ports| {
                    (ports.into_iter())
                        .map(|p| PortFields {
                            name: p.name,
                            port: p.port,
                            protocol: p.protocol,
                        })
                        .collect()
                }),
            });
            let status = service.status.map(|status| StatusFields {
                load_balancer: status.load_balancer.map(|lb| LoadBalancerFields {
                    ingress: lb.ingress.map(|points| {
                        (points.into_iter())
                            .map(|p| IngressFields {
                                ip: p.ip,
                                hostname: p.hostname,
                            })
                            .collect()
                    }),
                }),
            });
            ServiceFields {
                _api_version: (),
                _kind: (),
                metadata: service.metadata,
                spec,
                status,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::testing::{service, yaml};

    /// The Services the field decode is checked on: every field it reads, present,
    /// absent and `null`.
    fn services_to_decode() -> Vec<serde_json::Value> {
        use serde_json::json;
        vec![
            json!({"apiVersion": "v1", "kind": "Service",
                   "metadata": {"name": "web", "namespace": "apps", "uid": "u",
                                "creationTimestamp": "2026-01-01T00:00:00Z",
                                "labels": {"app": "web"},
                                "annotations": {"external-dns.alpha.kubernetes.io/hostname": "b.home.example",
                                                "coredns.io/hostname": "a.home.example,c.home.example",
                                                "other": "x"}},
                   "spec": {"type": "LoadBalancer", "clusterIP": "10.43.0.1",
                            "clusterIPs": ["10.43.0.1"], "externalIPs": ["192.168.1.5"],
                            "selector": {"app": "web", "tier": "front"},
                            "ports": [{"name": "http", "port": 80, "protocol": "TCP",
                                       "targetPort": "http", "nodePort": 30080},
                                      {"port": 443}, {"name": "", "port": 8443},
                                      {"name": "dns", "port": 53, "protocol": "UDP"}, {"name": "noport"}]},
                   "status": {"loadBalancer": {"ingress": [
                       {"ip": "192.168.1.10", "ipMode": "VIP"}, {"hostname": "lb.example.net"}]}}}),
            json!({"metadata": {"name": "quiet", "labels": {"k8s-gateway.io/ignore": "TRUE"}},
                   "spec": {"type": "LoadBalancer"}}),
            json!({"metadata": {"name": "internal", "namespace": "apps"},
                   "spec": {"type": "ClusterIP", "ports": [{"name": "http", "port": 80}]}}),
            json!({"metadata": {"name": "nulls", "namespace": null, "annotations": null},
                   "spec": {"type": "LoadBalancer", "externalIPs": null, "selector": null,
                            "ports": null},
                   "status": {"loadBalancer": {"ingress": null}}}),
            json!({"metadata": {"name": "no-status"}, "spec": {"type": "LoadBalancer"},
                   "status": null}),
            json!({"kind": "Service"}),
        ]
    }

    #[test]
    fn the_field_decode_keeps_what_the_full_type_keeps() {
        for value in services_to_decode() {
            let full: Service = serde_json::from_value(value.clone()).expect("a Service");
            let by_fields = Service::decode_kept(value.clone()).expect("decodes");
            assert_eq!(by_fields, KeptService::from(full), "{value}");
        }
    }

    /// A bad value in a field the zone reads is named as through the full type (a wrong
    /// `apiVersion` or `kind` by its field, where the full type names the object); one
    /// in a field no kind reads no longer skips the Service.
    #[test]
    fn the_field_decode_names_the_bad_field() {
        use serde_json::json;
        for (value, path) in [
            (
                json!({"spec": {"ports": [{"name": "a", "port": "x"}]}}),
                "spec.ports[0].port",
            ),
            (json!({"apiVersion": "v2", "kind": "Service"}), "apiVersion"),
            (json!({"kind": "Pod"}), "kind"),
            (
                json!({"metadata": {"labels": {"a": 1}}}),
                "metadata.labels.a",
            ),
            (
                json!({"status": {"loadBalancer": {"ingress": [{"ip": 7}]}}}),
                "status.loadBalancer.ingress[0].ip",
            ),
        ] {
            let error = Service::decode_kept(value.clone()).expect_err("a bad field");
            assert_eq!(error.path().to_string(), path, "{value}");
            let full = serde_path_to_error::deserialize::<_, Service>(value.clone());
            let full = full.expect_err("a bad field").path().to_string();
            // The full type names the object (".") for a wrong apiVersion or kind.
            let named = if path == "apiVersion" || path == "kind" {
                "."
            } else {
                path
            };
            assert_eq!(full, named, "{value}");
        }
        let unread = json!({"metadata": {"name": "a", "creationTimestamp": "soon"},
                            "spec": {"type": "LoadBalancer", "clusterIP": 5}});
        assert!(serde_json::from_value::<Service>(unread.clone()).is_err());
        let kept = Service::decode_kept(unread).expect("the fields read are good");
        assert_eq!(&*kept.object.name, "a");
    }

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
        let srv: Vec<(String, String)> = names_and_data(&service_entries(&svc.keep()).unwrap())
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
            names_and_data(&service_entries(&svc.keep()).unwrap()),
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
        assert_eq!(
            names_and_data(&service_entries(&svc.keep()).unwrap()),
            expected
        );
        let svc = service("web", "apps")
            .annotation("coredns.io/hostname", "first.home.example")
            .annotation("external-dns.kubernetes.io/hostname", "second.home.example")
            .lb_ip("192.168.1.10")
            .build();
        assert_eq!(
            names_and_data(&service_entries(&svc.keep()).unwrap()),
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
            names_and_data(&service_entries(&svc.keep()).unwrap()),
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
        assert_eq!(
            names_and_data(&service_entries(&svc.keep()).unwrap()),
            expected
        );
    }

    #[test]
    fn other_service_types_publish_nothing() {
        let svc = service("web", "apps")
            .lb_ip("192.168.1.10")
            .type_("ClusterIP")
            .build();
        assert_eq!(service_entries(&svc.keep()).unwrap(), Vec::new());
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
            let skipped = service_entries(&svc.keep()).unwrap_err();
            assert_eq!(skipped.reason, Skip::InvalidField);
            assert!(skipped.detail.starts_with(field), "{}", skipped.detail);
        }
    }

    #[test]
    fn a_service_of_another_type_keeps_only_its_identity() {
        let kept = service("db", "apps")
            .annotation("coredns.io/hostname", "db.home.example")
            .external_ip("192.168.1.10")
            .type_("ClusterIP")
            .label(crate::sources::IGNORE_LABEL, "true")
            .build()
            .keep();
        assert_eq!(kept.object, ObjectRef::new("Service", "apps", "db"));
        assert!(kept.ignored && !kept.load_balancer);
        assert!(kept.hostnames.is_none() && kept.external_ips.is_empty());
    }

    #[test]
    fn pending_load_balancer_is_skipped_as_no_address() {
        let svc = service("web", "apps").build();
        assert_eq!(
            service_entries(&svc.keep()).unwrap_err().reason,
            Skip::NoAddress
        );
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
        let kept = service.keep();
        assert_eq!(
            kept,
            KeptService {
                object: ObjectRef::new("Service", "apps", "web"),
                // The uid stays: an Event names the object by it.
                uid: Some("7d2c".into()),
                ignored: false,
                load_balancer: true,
                hostnames: Some(("coredns.io/hostname", "web.home.example".into())),
                external_ips: ["192.168.10.9".into()].into(),
                selector: [("app".into(), "web".into())].into(),
                // Only named ports (for SRV), with their name, port and protocol.
                ports: [NamedPort {
                    index: 1,
                    name: "https".into(),
                    port: 443,
                    protocol: Some("TCP".into()),
                }]
                .into(),
                ingress: [LoadBalancerPoint {
                    ip: Some("192.168.10.20".into()),
                    hostname: None,
                }]
                .into(),
            }
        );
        let entries = names_and_data(&service_entries(&kept).unwrap());
        assert_eq!(
            entries[0],
            pairs(&[("web.home.example", "192.168.10.9")])[0]
        );
    }
}
