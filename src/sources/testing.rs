//! Small builders on the real Kubernetes types, for unit tests.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    LoadBalancerIngress, LoadBalancerStatus, Service, ServiceSpec, ServiceStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// A Service of type LoadBalancer, to be given addresses and annotations.
pub fn service(name: &str, namespace: &str) -> ServiceBuilder {
    ServiceBuilder(Service {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(namespace.into()),
            ..ObjectMeta::default()
        },
        spec: Some(ServiceSpec {
            type_: Some("LoadBalancer".into()),
            ..ServiceSpec::default()
        }),
        status: None,
    })
}

pub struct ServiceBuilder(Service);

impl ServiceBuilder {
    pub fn lb_ip(self, ip: &str) -> Self {
        self.lb(LoadBalancerIngress {
            ip: Some(ip.into()),
            ..LoadBalancerIngress::default()
        })
    }

    pub fn lb_hostname(self, hostname: &str) -> Self {
        self.lb(LoadBalancerIngress {
            hostname: Some(hostname.into()),
            ..LoadBalancerIngress::default()
        })
    }

    fn lb(mut self, point: LoadBalancerIngress) -> Self {
        let status = self.0.status.get_or_insert_with(ServiceStatus::default);
        let lb = status
            .load_balancer
            .get_or_insert_with(LoadBalancerStatus::default);
        lb.ingress.get_or_insert_with(Vec::new).push(point);
        self
    }

    pub fn external_ip(mut self, ip: &str) -> Self {
        let spec = self.0.spec.get_or_insert_with(ServiceSpec::default);
        spec.external_ips
            .get_or_insert_with(Vec::new)
            .push(ip.into());
        self
    }

    pub fn annotation(mut self, key: &str, value: &str) -> Self {
        let map = self
            .0
            .metadata
            .annotations
            .get_or_insert_with(BTreeMap::new);
        map.insert(key.into(), value.into());
        self
    }

    pub fn label(mut self, key: &str, value: &str) -> Self {
        let map = self.0.metadata.labels.get_or_insert_with(BTreeMap::new);
        map.insert(key.into(), value.into());
        self
    }

    pub fn type_(mut self, type_: &str) -> Self {
        self.0.spec.get_or_insert_with(ServiceSpec::default).type_ = Some(type_.into());
        self
    }

    pub fn build(self) -> Service {
        self.0
    }
}

/// An object as `kubectl get -o yaml` shows it (any kind, any fields).
pub fn yaml<T: serde::de::DeserializeOwned>(text: &str) -> T {
    serde_saphyr::from_str(text).unwrap()
}
