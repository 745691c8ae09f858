//! Services of type LoadBalancer: their host names and their load-balancer addresses.

use k8s_openapi::api::core::v1::Service;

use super::names::{parse_hostname, parse_ip};
use super::object_ref;
use crate::zone::{Entry, EntryName, Kind, RecordData, Skipped};

/// Host-name annotations, first present wins: CoreDNS's own, then both prefixes
/// external-dns has used (users carry either from an ExternalDNS setup).
pub const HOSTNAME_ANNOTATIONS: [&str; 3] = [
    "coredns.io/hostname",
    "external-dns.kubernetes.io/hostname",
    "external-dns.alpha.kubernetes.io/hostname",
];

/// The records a Service publishes. Only `type: LoadBalancer` publishes anything: a
/// ClusterIP is not reachable from the LAN. Names come from the first host-name
/// annotation (comma-separated), else `<name>.<namespace>` under every domain.
/// Addresses come from `spec.externalIPs`, else `status.loadBalancer.ingress` (an
/// `ip`, or a `hostname` that becomes a CNAME). A malformed value skips the object.
pub fn service_entries(service: &Service) -> Result<Vec<Entry>, Skipped> {
    let object = object_ref("Service", &service.metadata);
    let invalid = |field: String, detail: String| Skipped {
        object: object.clone(),
        reason: "invalid_field",
        detail: format!("{field}: {detail}"),
    };
    let spec = service.spec.as_ref();
    if spec.and_then(|s| s.type_.as_deref()) != Some("LoadBalancer") {
        return Ok(Vec::new());
    }

    let annotations = service.metadata.annotations.as_ref();
    let annotated = HOSTNAME_ANNOTATIONS.iter().find_map(|key| {
        annotations
            .and_then(|a| a.get(*key))
            .map(|value| (*key, value))
    });
    let names = match annotated {
        Some((key, value)) => value
            .split(',')
            .filter(|part| !part.trim().is_empty())
            .map(|part| {
                parse_hostname(part, true)
                    .map_err(|e| invalid(format!("metadata.annotations[{key}]"), e))
            })
            .collect::<Result<Vec<_>, _>>()?,
        None => {
            let default = format!("{}.{}", object.name, object.namespace);
            vec![parse_hostname(&default, false).map_err(|e| invalid("metadata.name".into(), e))?]
        }
    };

    // From here on a problem names what the object would have published, so that
    // `/explain` of that name finds it.
    let claimed = names
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let invalid = |field: String, detail: String| Skipped {
        object: object.clone(),
        reason: "invalid_field",
        detail: format!("{field}: {detail} (would publish {claimed})"),
    };
    let targets = service_addresses(service).map_err(|(field, e)| invalid(field, e))?;
    if targets.is_empty() {
        return Err(Skipped {
            object,
            reason: "no_address",
            detail: format!(
                "no load-balancer address yet (status.loadBalancer.ingress is empty) for {claimed}"
            ),
        });
    }

    Ok(names
        .iter()
        .flat_map(|name| {
            targets.iter().map(|data| Entry {
                name: EntryName::Hostname(name.clone()),
                data: data.clone(),
                ttl: None,
                kind: Kind::Service,
                object: object.clone(),
            })
        })
        .collect())
}

/// The addresses a Service of type LoadBalancer is reached at: `spec.externalIPs` if
/// set, else `status.loadBalancer.ingress` (an `ip`, or a `hostname` that becomes a
/// CNAME). An error names the field and what is wrong with it.
pub fn service_addresses(service: &Service) -> Result<Vec<RecordData>, (String, String)> {
    let mut targets = Vec::new();
    let external_ips = service
        .spec
        .as_ref()
        .and_then(|s| s.external_ips.as_deref())
        .unwrap_or_default();
    if external_ips.is_empty() {
        let ingress = service
            .status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|lb| lb.ingress.as_deref())
            .unwrap_or_default();
        for (i, point) in ingress.iter().enumerate() {
            if let Some(ip) = &point.ip {
                let ip = parse_ip(ip)
                    .map_err(|e| (format!("status.loadBalancer.ingress[{i}].ip"), e))?;
                targets.push(RecordData::Address(ip));
            } else if let Some(host) = &point.hostname {
                let mut host = parse_hostname(host, false)
                    .map_err(|e| (format!("status.loadBalancer.ingress[{i}].hostname"), e))?;
                host.set_fqdn(true);
                targets.push(RecordData::Cname(host));
            }
        }
    } else {
        for (i, ip) in external_ips.iter().enumerate() {
            let ip = parse_ip(ip).map_err(|e| (format!("spec.externalIPs[{i}]"), e))?;
            targets.push(RecordData::Address(ip));
        }
    }
    Ok(targets)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::testing::service;

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
            assert_eq!(skipped.reason, "invalid_field");
            assert!(skipped.detail.starts_with(field), "{}", skipped.detail);
        }
    }

    #[test]
    fn pending_load_balancer_is_skipped_as_no_address() {
        let svc = service("web", "apps").build();
        assert_eq!(service_entries(&svc).unwrap_err().reason, "no_address");
    }
}
