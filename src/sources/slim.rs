//! Keeps of each object only what the zone reads, whichever source brought it.
//!
//! A cluster holds thousands of Services whose ports, cluster IPs and managed fields we
//! never look at; holding them whole would make memory grow with everything the cluster
//! does. Both sources slim an object the moment they decode it, so what the zone is
//! built from is the same however it arrived.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{LoadBalancerIngress, Service, ServiceSpec};
use k8s_openapi::api::networking::v1::{Ingress, IngressRule, IngressSpec, IngressTLS};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::IGNORE_LABEL;
use super::dnsendpoint::DnsEndpoint;
use super::gateway_api::{Gateway, GrpcRoute, HttpRoute, TlsRoute};
use super::ingress::LEGACY_CLASS_ANNOTATION;
use super::istio::{IstioGateway, TARGET_ANNOTATION, VirtualService};
use super::service::HOSTNAME_ANNOTATIONS;

/// Annotations some kind reads; every other annotation is dropped.
const READ_ANNOTATIONS: [&str; 5] = [
    HOSTNAME_ANNOTATIONS[0],
    HOSTNAME_ANNOTATIONS[1],
    HOSTNAME_ANNOTATIONS[2],
    LEGACY_CLASS_ANNOTATION,
    TARGET_ANNOTATION,
];

/// An object reduced to the fields the zone reads.
pub trait Slim {
    fn slim(self) -> Self;
}

/// Name, namespace, the ignore label and the annotations we read; nothing else
/// (no managedFields, no last-applied configuration, no owner references).
fn slim_meta(meta: ObjectMeta) -> ObjectMeta {
    let keep = |map: Option<BTreeMap<String, String>>, keys: &[&str]| {
        map.map(|m| {
            m.into_iter()
                .filter(|(k, _)| keys.contains(&k.as_str()))
                .collect::<BTreeMap<_, _>>()
        })
        .filter(|m| !m.is_empty())
    };
    ObjectMeta {
        name: meta.name,
        namespace: meta.namespace,
        labels: keep(meta.labels, &[IGNORE_LABEL]),
        annotations: keep(meta.annotations, &READ_ANNOTATIONS),
        ..ObjectMeta::default()
    }
}

impl Slim for Service {
    fn slim(self) -> Self {
        let spec = self.spec.map(|s| ServiceSpec {
            type_: s.type_,
            external_ips: s.external_ips,
            selector: s.selector,
            ..ServiceSpec::default()
        });
        let mut status = self.status;
        if let Some(points) = status
            .as_mut()
            .and_then(|s| s.load_balancer.as_mut())
            .and_then(|lb| lb.ingress.as_mut())
        {
            for point in points.iter_mut() {
                *point = LoadBalancerIngress {
                    ip: point.ip.take(),
                    hostname: point.hostname.take(),
                    ..LoadBalancerIngress::default()
                };
            }
        }
        if let Some(s) = status.as_mut() {
            s.conditions = None;
        }
        Service {
            metadata: slim_meta(self.metadata),
            spec,
            status,
        }
    }
}

impl Slim for Ingress {
    fn slim(self) -> Self {
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
        if let Some(points) = status
            .as_mut()
            .and_then(|s| s.load_balancer.as_mut())
            .and_then(|lb| lb.ingress.as_mut())
        {
            for point in points.iter_mut() {
                point.ports = None;
            }
        }
        Ingress {
            metadata: slim_meta(self.metadata),
            spec,
            status,
        }
    }
}

/// Our own custom-resource types already read only what the zone needs; their metadata
/// is the rest.
macro_rules! slim_custom {
    ($($t:ty),*) => {$(
        impl Slim for $t {
            fn slim(mut self) -> Self {
                self.metadata = slim_meta(self.metadata);
                self
            }
        }
    )*};
}

slim_custom!(
    DnsEndpoint,
    Gateway,
    HttpRoute,
    GrpcRoute,
    TlsRoute,
    IstioGateway,
    VirtualService
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_keeps_what_the_zone_reads_and_nothing_else() {
        let service: Service = serde_saphyr::from_str(
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
  ports: [{port: 80, targetPort: 8080}]
  clusterIP: 10.43.0.10
  externalIPs: [192.168.10.9]
status:
  loadBalancer: {ingress: [{ip: 192.168.10.20, ipMode: VIP, ports: [{port: 80, protocol: TCP}]}]}
"#,
        )
        .unwrap();
        let before = crate::sources::service::service_entries(&service).unwrap();
        let slim = service.slim();
        assert_eq!(
            crate::sources::service::service_entries(&slim).unwrap(),
            before
        );
        assert!(slim.metadata.managed_fields.is_none());
        assert!(slim.metadata.uid.is_none());
        assert_eq!(slim.metadata.labels.as_ref().unwrap().len(), 1);
        assert_eq!(slim.metadata.annotations.as_ref().unwrap().len(), 1);
        let spec = slim.spec.as_ref().unwrap();
        assert!(spec.ports.is_none() && spec.cluster_ip.is_none());
        assert_eq!(spec.selector.as_ref().unwrap()["app"], "web");
        let point = &slim.status.unwrap().load_balancer.unwrap().ingress.unwrap()[0];
        assert_eq!(point.ip.as_deref(), Some("192.168.10.20"));
        assert!(point.ports.is_none());
    }

    #[test]
    fn an_ingress_keeps_its_hosts_class_and_addresses() {
        let ingress: Ingress = serde_saphyr::from_str(
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
        )
        .unwrap();
        let before = crate::sources::ingress::ingress_entries(&ingress, &["nginx".into()]).unwrap();
        let slim = ingress.slim();
        assert_eq!(
            crate::sources::ingress::ingress_entries(&slim, &["nginx".into()]).unwrap(),
            before
        );
        assert_eq!(slim.metadata.annotations.as_ref().unwrap().len(), 1);
        assert!(slim.spec.unwrap().rules.unwrap()[0].http.is_none());
    }
}
