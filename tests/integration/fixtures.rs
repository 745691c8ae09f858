//! The objects and servers many tests start from, written once: a LoadBalancer Service
//! as the API sends it and as a manifest, and a ready server publishing
//! `web.home.example`, from the cluster or from a file.

use serde_json::{Value, json};

use crate::fake_api::FakeApi;
use crate::support::TestServer;

/// A LoadBalancer Service as the API sends it, publishing `host` at `ip` through the
/// host-name annotation.
pub fn service(name: &str, namespace: &str, host: &str, ip: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": namespace,
            "annotations": {"coredns.io/hostname": host}},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 80, "protocol": "TCP"}],
            "clusterIP": "10.43.0.1"},
        "status": {"loadBalancer": {"ingress": [{"ip": ip, "ipMode": "VIP"}]}}})
}

/// A LoadBalancer Service manifest with the given host-name annotation and addresses.
pub fn lb_service(name: &str, namespace: &str, hostname: Option<&str>, ips: &[&str]) -> String {
    let annotation = hostname.map_or(String::new(), |h| {
        format!("  annotations:\n    coredns.io/hostname: \"{h}\"\n")
    });
    let ingress: String = ips
        .iter()
        .map(|ip| format!("    - ip: \"{ip}\"\n"))
        .collect();
    format!(
        "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: {namespace}\n{annotation}spec:\n  type: LoadBalancer\n  ports:\n  - {{name: http, port: 80, protocol: TCP}}\nstatus:\n  loadBalancer:\n    ingress:\n{ingress}"
    )
}

/// A ready server watching `api`, which serves every kind and holds (beside what the
/// test put there) `web.home.example` at 192.168.10.60.
pub async fn serving_web(api: &FakeApi) -> TestServer {
    api.serve_all();
    api.apply(
        "",
        "services",
        service("web", "apps", "web.home.example", "192.168.10.60"),
    );
    let server = TestServer::start_cluster(api, &[]).await;
    server.wait_ready().await;
    server
}

/// [`serving_web`] on a fresh API.
pub async fn serving_web_api() -> (FakeApi, TestServer) {
    let api = FakeApi::start().await;
    let server = serving_web(&api).await;
    (api, server)
}

/// A server on the manifest `objects.yaml`: `web.home.example` at 10.0.0.1.
pub async fn serving_web_file() -> TestServer {
    TestServer::start(
        &lb_service("web", "apps", Some("web.home.example"), &["10.0.0.1"]),
        &[],
    )
    .await
}
