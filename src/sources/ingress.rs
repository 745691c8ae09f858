//! Ingresses (networking.k8s.io/v1): their hosts, at their load-balancer addresses.

use hickory_proto::rr::Name;
use k8s_openapi::api::networking::v1::{Ingress, IngressRule, IngressSpec, IngressTLS};

use super::kind::{Output, Source};
use super::objects::ObjectSet;
use super::shared::{Why, claimed, entries_for, load_balancer_targets, object_ref, slim_meta};
use crate::config::Filters;
use crate::zone::names::parse_absolute;
use crate::zone::{Entry, EntryName, Kind, Skip, Skipped};

/// The annotation older controllers (and many Helm charts) still set instead of
/// `spec.ingressClassName`.
pub const LEGACY_CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";

impl Source for Ingress {
    const NEEDED_BY: &'static [Kind] = &[Kind::Ingress];

    /// The class, the hosts of the rules and of TLS, and the load-balancer addresses.
    type Kept = Self;

    fn keep(self) -> Self {
        let spec = self.spec.map(|s| IngressSpec {
            ingress_class_name: s.ingress_class_name,
            rules: s.rules.map(|rules| {
                rules
                    .into_iter()
                    .map(|r| IngressRule {
                        host: r.host,
                        http: None,
                    })
                    .collect()
            }),
            tls: s.tls.map(|tls| {
                tls.into_iter()
                    .map(|t| IngressTLS {
                        hosts: t.hosts,
                        secret_name: None,
                    })
                    .collect()
            }),
            default_backend: None,
        });
        let mut status = self.status;
        for point in status
            .iter_mut()
            .flat_map(|s| s.load_balancer.iter_mut())
            .flat_map(|lb| lb.ingress.iter_mut().flatten())
        {
            point.ports = None;
        }
        Ingress {
            metadata: slim_meta(self.metadata, &[LEGACY_CLASS_ANNOTATION]),
            spec,
            status,
        }
    }

    fn entries(objects: &ObjectSet, filters: &Filters, out: &mut Output) {
        for ingress in objects.published::<Ingress>() {
            out.keep(ingress_entries(ingress, &filters.ingress_classes));
        }
    }
}

/// The records an Ingress publishes: every `spec.rules[].host` and `spec.tls[].hosts[]`
/// at the addresses in `status.loadBalancer.ingress` (an `ip`, or a `hostname` that
/// becomes a CNAME, never looked up at query time). With `classes` given, only
/// Ingresses of those classes publish; an Ingress without a class then publishes
/// nothing.
pub fn ingress_entries(ingress: &Ingress, classes: &[String]) -> Result<Vec<Entry>, Skipped> {
    let object = object_ref(&Ingress::label(), &ingress.metadata);
    let skip = |(reason, detail): Why| Skipped {
        object: object.clone(),
        reason,
        detail,
    };
    class_allowed(ingress, classes).map_err(skip)?;
    let names = hosts(ingress).map_err(skip)?;
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let claimed = claimed(&names);
    let points = ingress
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_deref())
        .unwrap_or_default();
    let targets = load_balancer_targets(
        points
            .iter()
            .map(|p| (p.ip.as_deref(), p.hostname.as_deref())),
    )
    .map_err(|(field, e)| {
        let detail = format!("{field}: {e} (would publish {claimed})");
        skip((Skip::InvalidField, detail))
    })?;
    if targets.is_empty() {
        let detail = format!(
            "no load-balancer address yet (status.loadBalancer.ingress is empty) for {claimed}"
        );
        return Err(skip((Skip::NoAddress, detail)));
    }
    Ok(entries_for(
        &names,
        EntryName::Absolute,
        &targets,
        Kind::Ingress,
        &object,
    ))
}

/// Whether `--ingress-class` lets the Ingress publish: its `spec.ingressClassName`, else
/// the legacy annotation, is one of `classes` (or no classes are given).
fn class_allowed(ingress: &Ingress, classes: &[String]) -> Result<(), Why> {
    let class = ingress
        .spec
        .as_ref()
        .and_then(|s| s.ingress_class_name.as_deref())
        .or_else(|| {
            ingress
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(LEGACY_CLASS_ANNOTATION))
                .map(String::as_str)
        });
    if classes.is_empty() || class.is_some_and(|c| classes.iter().any(|k| k == c)) {
        return Ok(());
    }
    let detail = format!(
        "class {} is not one of --ingress-class {}",
        class.unwrap_or("(none)"),
        classes.join(",")
    );
    Err((Skip::ClassFiltered, detail))
}

/// The hosts of the rules and of TLS, each once, in that order.
fn hosts(ingress: &Ingress) -> Result<Vec<Name>, Why> {
    let spec = ingress.spec.as_ref();
    let mut hosts = Vec::new();
    let rules = spec.and_then(|s| s.rules.as_deref()).unwrap_or_default();
    for (i, rule) in rules.iter().enumerate() {
        if let Some(host) = &rule.host {
            hosts.push((format!("spec.rules[{i}].host"), host.as_str()));
        }
    }
    let tls = spec.and_then(|s| s.tls.as_deref()).unwrap_or_default();
    for (i, entry) in tls.iter().enumerate() {
        for (j, host) in entry.hosts.iter().flatten().enumerate() {
            hosts.push((format!("spec.tls[{i}].hosts[{j}]"), host.as_str()));
        }
    }
    let mut names = Vec::new();
    for (field, host) in hosts {
        let name = parse_absolute(host, true)
            .map_err(|e| (Skip::InvalidField, format!("{field}: {e}")))?;
        if !names.contains(&name) {
            names.push(name);
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::testing::yaml;
    use crate::zone::RecordData;

    /// An Ingress as `kubectl get ingress -o yaml` shows it.
    fn ingress(text: &str) -> Ingress {
        yaml(text)
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
                assert_eq!(skipped.reason, Skip::ClassFiltered);
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
            Skip::NoAddress
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

    #[test]
    fn an_ingress_keeps_its_hosts_class_and_addresses() {
        let ingress: Ingress = yaml(
            r#"
metadata:
  name: grafana
  namespace: monitoring
  annotations: {kubernetes.io/ingress.class: nginx, nginx.ingress.kubernetes.io/ssl-redirect: "true"}
spec:
  rules:
  - host: grafana.home.example
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: grafana, port: {number: 80}}}}]}
  tls: [{hosts: [g.home.example], secretName: tls}]
status:
  loadBalancer: {ingress: [{ip: 192.168.10.30, ports: [{port: 443, protocol: TCP}]}]}
"#,
        );
        let before = ingress_entries(&ingress, &["nginx".into()]).unwrap();
        let slim = ingress.keep();
        assert_eq!(ingress_entries(&slim, &["nginx".into()]).unwrap(), before);
        assert_eq!(slim.metadata.annotations.as_ref().unwrap().len(), 1);
        assert!(slim.spec.unwrap().rules.unwrap()[0].http.is_none());
    }
}
