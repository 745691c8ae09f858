//! Gateway API attachment as the spec reads it, end to end, from manifests and from the
//! cluster: a listener's `allowedRoutes` (namespaces `Same`, `All`, `Selector` over the
//! Namespace's labels; kinds, or the listener's protocol), checked even where a route's
//! status says Accepted; `/explain` says why a name is not published.

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use serde_json::Value;

use crate::fake_api::FakeApi;
use crate::support::{TestServer, addresses, debug_get, rcode};

/// Two Gateways and four routes, every route Accepted by every parent it names:
/// - `shared` (gateways) admits namespaces labelled `gateway-access: shared`;
/// - `private` (gateways) admits only its own namespace (no allowedRoutes);
/// - photos/immich attaches to both: only `shared`'s address;
/// - sandbox/toy attaches to `shared` from an unlabelled namespace: nothing;
/// - photos/vault is a TLSRoute on `shared`'s HTTPS listener: nothing;
/// - gateways/admin attaches to `private` from its own namespace: published.
const OBJECTS: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: photos, labels: {gateway-access: shared}}
---
apiVersion: v1
kind: Namespace
metadata: {name: sandbox}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: shared, namespace: gateways}
spec:
  gatewayClassName: cilium
  listeners:
  - name: https
    hostname: "*.home.example"
    port: 443
    protocol: HTTPS
    allowedRoutes:
      namespaces:
        from: Selector
        selector: {matchLabels: {gateway-access: shared}}
status:
  addresses: [{type: IPAddress, value: 192.168.10.50}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: private, namespace: gateways}
spec:
  gatewayClassName: cilium
  listeners:
  - {name: https, hostname: "*.home.example", port: 443, protocol: HTTPS}
status:
  addresses: [{type: IPAddress, value: 192.168.10.51}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: immich, namespace: photos}
spec:
  parentRefs: [{name: shared, namespace: gateways}, {name: private, namespace: gateways}]
  hostnames: [immich.home.example]
status:
  parents:
  - parentRef: {name: shared, namespace: gateways}
    conditions: [{type: Accepted, status: "True", reason: Accepted}]
  - parentRef: {name: private, namespace: gateways}
    conditions: [{type: Accepted, status: "True", reason: Accepted}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: toy, namespace: sandbox}
spec:
  parentRefs: [{name: shared, namespace: gateways}]
  hostnames: [toy.home.example]
status:
  parents:
  - parentRef: {name: shared, namespace: gateways}
    conditions: [{type: Accepted, status: "True", reason: Accepted}]
---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TLSRoute
metadata: {name: vault, namespace: photos}
spec:
  parentRefs: [{name: shared, namespace: gateways}]
  hostnames: [vault.home.example]
status:
  parents:
  - parentRef: {name: shared, namespace: gateways}
    conditions: [{type: Accepted, status: "True", reason: Accepted}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: admin, namespace: gateways}
spec:
  parentRefs: [{name: private, namespace: gateways}]
  hostnames: [admin.home.example]
status:
  parents:
  - parentRef: {name: private, namespace: gateways}
    conditions: [{type: Accepted, status: "True", reason: Accepted}]
"#;

async fn check(server: &TestServer) {
    for (name, want) in [
        ("immich.home.example", vec!["192.168.10.50"]),
        ("admin.home.example", vec!["192.168.10.51"]),
    ] {
        assert_eq!(
            addresses(&server.ask(name, RecordType::A).await),
            want,
            "{name}"
        );
    }
    for (name, reason) in [
        ("toy.home.example", "namespace_not_allowed"),
        ("vault.home.example", "kind_not_allowed"),
    ] {
        assert_eq!(
            rcode(&server.ask(name, RecordType::A).await),
            ResponseCode::NXDomain,
            "{name}"
        );
        let (_, body) = debug_get(server, &format!("/explain?name={name}")).await;
        let json: Value = serde_json::from_str(&body).unwrap();
        let reasons: Vec<&str> = json["skipped"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|s| s["reason"].as_str())
            .collect();
        assert_eq!(reasons, [reason], "{name}: {body}");
    }
    // immich's second parent is listed too, with its reason.
    let (_, body) = debug_get(server, "/explain?name=immich.home.example").await;
    assert!(body.contains("namespace_not_allowed"), "{body}");
}

#[tokio::test]
async fn listeners_admit_routes_by_namespace_and_kind_from_manifests() {
    let server = TestServer::start(OBJECTS, &[]).await;
    check(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn listeners_admit_routes_by_namespace_and_kind_from_the_cluster() {
    let api = FakeApi::start().await;
    api.serve_all();
    for document in serde_saphyr::from_multiple::<Value>(OBJECTS).unwrap() {
        let (group, plural) = match document["kind"].as_str().unwrap() {
            "Namespace" => ("", "namespaces"),
            "Gateway" => ("gateway.networking.k8s.io", "gateways"),
            "HTTPRoute" => ("gateway.networking.k8s.io", "httproutes"),
            "TLSRoute" => ("gateway.networking.k8s.io", "tlsroutes"),
            other => panic!("{other}"),
        };
        api.apply(group, plural, document);
    }
    let server = TestServer::start_cluster(&api, &[]).await;
    server.wait_ready().await;
    check(&server).await;
    // A label added to the namespace reaches the answers: the Namespace is watched.
    api.apply(
        "",
        "namespaces",
        serde_json::json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "sandbox", "labels": {"gateway-access": "shared"}}}),
    );
    server
        .wait_for("toy.home.example", RecordType::A, |m| {
            addresses(m) == ["192.168.10.50"]
        })
        .await;
    server.stop().await;
}
