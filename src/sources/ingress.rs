//! Ingresses (networking.k8s.io/v1): their hosts, at their load-balancer addresses.

use k8s_openapi::api::networking::v1::Ingress;

use super::names::{parse_hostname, parse_ip};
use super::object_ref;
use crate::zone::{Entry, EntryName, Kind, RecordData, Skipped};

/// The annotation older controllers (and many Helm charts) still set instead of
/// `spec.ingressClassName`.
pub const LEGACY_CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";

/// The records an Ingress publishes: every `spec.rules[].host` and `spec.tls[].hosts[]`
/// at the addresses in `status.loadBalancer.ingress` (an `ip`, or a `hostname` that
/// becomes a CNAME, never looked up at query time). With `classes` given, only
/// Ingresses of those classes publish; an Ingress without a class then publishes
/// nothing.
pub fn ingress_entries(ingress: &Ingress, classes: &[String]) -> Result<Vec<Entry>, Skipped> {
    let object = object_ref("Ingress", &ingress.metadata);
    let skip = |reason, detail: String| Skipped {
        object: object.clone(),
        reason,
        detail,
    };
    let spec = ingress.spec.as_ref();
    let class = spec
        .and_then(|s| s.ingress_class_name.as_deref())
        .or_else(|| {
            ingress
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(LEGACY_CLASS_ANNOTATION))
                .map(String::as_str)
        });
    if !classes.is_empty() && !class.is_some_and(|c| classes.iter().any(|k| k == c)) {
        return Err(skip(
            "class_filtered",
            format!(
                "class {} is not one of --ingress-class {}",
                class.unwrap_or("(none)"),
                classes.join(",")
            ),
        ));
    }

    let mut hosts = Vec::new();
    let rules = spec.and_then(|s| s.rules.as_deref()).unwrap_or_default();
    for (i, rule) in rules.iter().enumerate() {
        if let Some(host) = &rule.host {
            hosts.push((format!("spec.rules[{i}].host"), host.as_str()));
        }
    }
    let tls = spec.and_then(|s| s.tls.as_deref()).unwrap_or_default();
    for (i, entry) in tls.iter().enumerate() {
        for (j, host) in entry
            .hosts
            .as_deref()
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            hosts.push((format!("spec.tls[{i}].hosts[{j}]"), host.as_str()));
        }
    }
    let mut names = Vec::new();
    for (field, host) in hosts {
        let mut name = parse_hostname(host, true)
            .map_err(|e| skip("invalid_field", format!("{field}: {e}")))?;
        name.set_fqdn(true);
        if !names.contains(&name) {
            names.push(name);
        }
    }
    if names.is_empty() {
        return Ok(Vec::new());
    }

    let claimed = names
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let points = ingress
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_deref())
        .unwrap_or_default();
    let mut targets = Vec::new();
    for (i, point) in points.iter().enumerate() {
        let invalid = |field: &str, e: String| {
            skip(
                "invalid_field",
                format!("status.loadBalancer.ingress[{i}].{field}: {e} (would publish {claimed})"),
            )
        };
        if let Some(ip) = &point.ip {
            targets.push(RecordData::Address(
                parse_ip(ip).map_err(|e| invalid("ip", e))?,
            ));
        } else if let Some(host) = &point.hostname {
            let mut host = parse_hostname(host, false).map_err(|e| invalid("hostname", e))?;
            host.set_fqdn(true);
            targets.push(RecordData::Cname(host));
        }
    }
    if targets.is_empty() {
        return Err(skip(
            "no_address",
            format!(
                "no load-balancer address yet (status.loadBalancer.ingress is empty) for {claimed}"
            ),
        ));
    }
    Ok(names
        .iter()
        .flat_map(|name| {
            targets.iter().map(|data| Entry {
                name: EntryName::Absolute(name.clone()),
                data: data.clone(),
                ttl: None,
                kind: Kind::Ingress,
                object: object.clone(),
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Ingress as `kubectl get ingress -o yaml` shows it.
    fn ingress(yaml: &str) -> Ingress {
        serde_saphyr::from_str(yaml).unwrap()
    }

    const NGINX: &str = r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: grafana
  namespace: monitoring
spec:
  ingressClassName: nginx
  rules:
  - host: grafana.home.example
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: grafana, port: {number: 80}}}}
  tls:
  - hosts: [grafana.home.example, metrics.home.example]
    secretName: grafana-tls
status:
  loadBalancer:
    ingress:
    - ip: 192.168.10.30
"#;

    fn published(entries: &[Entry]) -> Vec<String> {
        entries
            .iter()
            .map(|e| match (&e.name, &e.data) {
                (EntryName::Absolute(n), RecordData::Address(ip)) => format!("{n} {ip}"),
                (EntryName::Absolute(n), RecordData::Cname(t)) => format!("{n} CNAME {t}"),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn rule_and_tls_hosts_at_the_load_balancer_address() {
        let entries = ingress_entries(&ingress(NGINX), &[]).unwrap();
        assert_eq!(
            published(&entries),
            [
                "grafana.home.example. 192.168.10.30",
                "metrics.home.example. 192.168.10.30"
            ]
        );
        assert!(entries.iter().all(|e| e.kind == Kind::Ingress));
    }

    #[test]
    fn class_filter_reads_the_field_and_the_legacy_annotation() {
        let nginx = vec!["nginx".to_string()];
        let traefik = vec!["traefik".to_string()];
        let legacy = NGINX.replace("  ingressClassName: nginx\n", "").replace(
            "namespace: monitoring",
            "namespace: monitoring\n  annotations: {kubernetes.io/ingress.class: nginx}",
        );
        let unclassed = NGINX.replace("  ingressClassName: nginx\n", "");
        // (ingress, filter, publishes)
        let cases = [
            (NGINX.to_string(), &nginx, true),
            (NGINX.to_string(), &traefik, false),
            (legacy.clone(), &nginx, true),
            (legacy, &traefik, false),
            // No class: only when no filter is given.
            (unclassed.clone(), &nginx, false),
            (unclassed, &vec![], true),
        ];
        for (yaml, filter, publishes) in cases {
            let result = ingress_entries(&ingress(&yaml), filter);
            assert_eq!(result.is_ok(), publishes, "{filter:?}: {result:?}");
            if let Err(skipped) = result {
                assert_eq!(skipped.reason, "class_filtered");
            }
        }
    }

    #[test]
    fn hostname_status_becomes_a_cname_and_wildcards_stay() {
        let yaml = NGINX
            .replace("- ip: 192.168.10.30", "- hostname: lb.cloud.example")
            .replace(
                "- host: grafana.home.example",
                "- host: '*.apps.home.example'",
            );
        let entries = ingress_entries(&ingress(&yaml), &[]).unwrap();
        assert_eq!(
            published(&entries),
            [
                "*.apps.home.example. CNAME lb.cloud.example.",
                "grafana.home.example. CNAME lb.cloud.example.",
                "metrics.home.example. CNAME lb.cloud.example."
            ]
        );
    }

    #[test]
    fn no_address_yet_and_malformed_values_are_skipped_with_the_field() {
        let pending = NGINX.replace(
            "status:\n  loadBalancer:\n    ingress:\n    - ip: 192.168.10.30\n",
            "",
        );
        assert_eq!(
            ingress_entries(&ingress(&pending), &[]).unwrap_err().reason,
            "no_address"
        );
        let bad_ip = NGINX.replace("192.168.10.30", "192.168.10.300");
        let skipped = ingress_entries(&ingress(&bad_ip), &[]).unwrap_err();
        assert!(
            skipped
                .detail
                .starts_with("status.loadBalancer.ingress[0].ip"),
            "{}",
            skipped.detail
        );
        assert!(
            skipped.detail.contains("grafana.home.example"),
            "{}",
            skipped.detail
        );
        let bad_host = NGINX.replace(
            "- host: grafana.home.example",
            "- host: graf ana.home.example",
        );
        let skipped = ingress_entries(&ingress(&bad_host), &[]).unwrap_err();
        assert!(
            skipped.detail.starts_with("spec.rules[0].host"),
            "{}",
            skipped.detail
        );
    }

    #[test]
    fn an_ingress_without_hosts_publishes_nothing() {
        let yaml = NGINX.replace("  - host: grafana.home.example\n    http:", "  - http:").replace(
            "  tls:\n  - hosts: [grafana.home.example, metrics.home.example]\n    secretName: grafana-tls\n",
            "",
        );
        assert_eq!(ingress_entries(&ingress(&yaml), &[]).unwrap(), Vec::new());
    }
}
