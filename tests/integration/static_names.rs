//! The home network's names outside the cluster, beside the cluster's: `--manifests`
//! with `--watch-cluster` feeds one zone from both, readiness waits for both, and an
//! object in both (same kind, namespace and name) is the cluster's.

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use crate::fake_api::FakeApi;
use crate::fixtures::lb_service;
use crate::fixtures::service;
use crate::support::{TestServer, addresses, http_get, rcode};

const NAS: &str = "---\napiVersion: externaldns.k8s.io/v1alpha1\nkind: DNSEndpoint\nmetadata: {name: lan, namespace: home}\nspec:\n  endpoints:\n  - {dnsName: nas.home.example, recordType: A, targets: [192.168.1.5]}\n";

#[tokio::test]
async fn manifests_and_the_cluster_serve_one_zone() {
    let api = FakeApi::reserve().await;
    api.serve_all();
    api.apply(
        "",
        "services",
        service("web", "apps", "web.home.example", "192.168.10.60"),
    );
    let folder = tempfile::tempdir().unwrap();
    let file = folder.path().join("lan.yaml");
    // The same Service in the folder, without the address the cluster gave it.
    let stale = lb_service("web", "apps", Some("web.home.example"), &["192.168.99.99"]);
    std::fs::write(&file, format!("{NAS}{stale}")).unwrap();
    let folder_arg = folder.path().to_string_lossy().to_string();
    let server =
        TestServer::start_cluster(&api, &["--manifests", &folder_arg, "--watch-cluster"]).await;
    // The files are read, the cluster is not yet: not ready, nothing half-built.
    assert_eq!(http_get(&server, "/readyz").await.0, 503);
    assert_eq!(
        rcode(&server.ask("nas.home.example", RecordType::A).await),
        ResponseCode::ServFail
    );
    api.serve().await;
    server.wait_ready().await;
    assert_eq!(
        addresses(&server.ask("nas.home.example", RecordType::A).await),
        ["192.168.1.5"]
    );
    // In both: the cluster's object, with its live address.
    assert_eq!(
        addresses(&server.ask("web.home.example", RecordType::A).await),
        ["192.168.10.60"]
    );

    // The folder is watched as it is alone; the cluster's names stay.
    let router = "---\napiVersion: externaldns.k8s.io/v1alpha1\nkind: DNSEndpoint\nmetadata: {name: router, namespace: home}\nspec:\n  endpoints:\n  - {dnsName: router.home.example, recordType: A, targets: [192.168.1.1]}\n";
    std::fs::write(&file, format!("{NAS}{router}")).unwrap();
    server
        .wait_for("router.home.example", RecordType::A, |m| {
            addresses(m) == ["192.168.1.1"]
        })
        .await;
    assert_eq!(
        addresses(&server.ask("web.home.example", RecordType::A).await),
        ["192.168.10.60"]
    );
    // And the cluster is followed as it is alone.
    api.apply(
        "",
        "services",
        service("app", "apps", "app.home.example", "192.168.10.61"),
    );
    server
        .wait_for("app.home.example", RecordType::A, |m| {
            addresses(m) == ["192.168.10.61"]
        })
        .await;
    assert_eq!(
        addresses(&server.ask("nas.home.example", RecordType::A).await),
        ["192.168.1.5"]
    );
    server.stop().await;
}
