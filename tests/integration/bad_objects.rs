//! Bad input from the Kubernetes API, through kube's real `Client` against the fake API
//! server: an object of 1 MB, watch events of a kind we do not read or whose object does
//! not decode, a list of 2,000 objects (50,000 in an ignored test). No crash; the rest
//! serves.

use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use serde_json::{Value, json};

use crate::fake_api::FakeApi;
use crate::fixtures::{service, serving_web};
use crate::support::{TestServer, addresses, http_get, rcode, sample, scrape};

/// A Service of about 1 MB: one annotation (say, a last-applied configuration) that big.
fn big_service(name: &str, host: &str, ip: &str) -> Value {
    let mut object = service(name, "apps", host, ip);
    object["metadata"]["annotations"]["example.io/blob"] = json!("x".repeat(1 << 20));
    object
}

#[tokio::test]
async fn objects_of_1_mb_are_served_listed_and_watched() {
    let api = FakeApi::start().await;
    api.apply(
        "",
        "services",
        big_service("listed", "listed.home.example", "192.168.10.61"),
    );
    let server = serving_web(&api).await;
    assert_eq!(
        addresses(&server.ask("listed.home.example", RecordType::A).await),
        ["192.168.10.61"]
    );
    // One watch event of 1 MB, on one line.
    api.apply(
        "",
        "services",
        big_service("watched", "watched.home.example", "192.168.10.62"),
    );
    server
        .wait_for("watched.home.example", RecordType::A, |m| {
            addresses(m) == ["192.168.10.62"]
        })
        .await;
    assert_eq!(
        addresses(&server.ask("web.home.example", RecordType::A).await),
        ["192.168.10.60"]
    );
    server.stop().await;
}

#[tokio::test]
async fn watch_events_of_another_kind_or_that_do_not_decode_are_counted_and_skipped() {
    let api = FakeApi::start().await;
    let server = serving_web(&api).await;
    api.wait_watching("services", 1).await;
    // A Widget on the Services watch: read as a Service, it would publish a name.
    let mut widget = service("widget", "apps", "widget.home.example", "192.168.10.66");
    widget["apiVersion"] = json!("example.io/v1");
    widget["kind"] = json!("Widget");
    widget["metadata"]["resourceVersion"] = json!("9001");
    api.send_raw(
        "services",
        &json!({"type": "ADDED", "object": widget}).to_string(),
    );
    // An object whose metadata is not an object, and a line that is not JSON.
    api.send_raw(
        "services",
        r#"{"type": "ADDED", "object": {"apiVersion": "v1", "kind": "Service", "metadata": "web"}}"#,
    );
    api.send_raw("services", "{not json");
    // A good event after them: once it serves, the bad ones have been read.
    api.apply(
        "",
        "services",
        service("after", "apps", "after.home.example", "192.168.10.63"),
    );
    server
        .wait_for("after.home.example", RecordType::A, |m| {
            addresses(m) == ["192.168.10.63"]
        })
        .await;
    assert_eq!(
        rcode(&server.ask("widget.home.example", RecordType::A).await),
        ResponseCode::NXDomain
    );
    assert_eq!(
        addresses(&server.ask("web.home.example", RecordType::A).await),
        ["192.168.10.60"]
    );
    let metrics = scrape(&server);
    let invalid = sample(
        &metrics,
        "k8s_gateway_watch_errors_total",
        &[("kind", "Service"), ("reason", "invalid_object")],
    );
    assert_eq!(invalid, 3.0, "{metrics}");
    assert_eq!(http_get(&server, "/readyz").await.0, 200);
    server.stop().await;
}

#[tokio::test]
async fn a_list_of_2000_objects_is_read_in_pages_and_served() {
    a_list_is_read_in_pages_and_served(2_000).await;
}

#[tokio::test]
#[ignore = "50,000 objects: see the README, Scale tests"]
async fn a_list_of_50000_objects_is_read_in_pages_and_served() {
    a_list_is_read_in_pages_and_served(50_000).await;
}

/// `count` Services listed from the API, in kube's pages of 500; one in twenty and the
/// last are asked.
async fn a_list_is_read_in_pages_and_served(count: usize) {
    let api = FakeApi::start().await;
    api.serve_all();
    let ip = |i: usize| format!("10.{}.{}.{}", i / 62_500, i / 250 % 250, i % 250 + 1);
    api.seed(
        "",
        "services",
        (0..count).map(|i| {
            service(
                &format!("s{i}"),
                "apps",
                &format!("s{i}.home.example"),
                &ip(i),
            )
        }),
    );
    let server = TestServer::start_cluster(&api, &[]).await;
    // An unoptimised test build takes longer than the usual deadline to list, decode
    // and build 50,000 objects: wait for readiness with a deadline of its own.
    let start = Instant::now();
    while http_get(&server, "/readyz").await.0 != 200 {
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "not ready in time"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // kube's watcher asks for pages of 500: never the whole list in one response.
    assert!(
        api.lists("services") >= count / 500,
        "{} list requests",
        api.lists("services")
    );
    for i in (0..count).step_by(count / 20).chain([count - 1]) {
        let name = format!("s{i}.home.example");
        assert_eq!(
            addresses(&server.ask(&name, RecordType::A).await),
            [ip(i)],
            "{name}"
        );
    }
    server.stop().await;
}
