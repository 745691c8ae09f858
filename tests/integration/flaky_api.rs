//! What the names do while the API server misbehaves for a while: a kind whose lists
//! keep failing, a namespace that does not list, a group missing from one discovery.
//! Each test reproduces the failure against the fake API through kube's real `Client`.

use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use crate::cluster::apply_example;
use crate::fake_api::FakeApi;
use crate::fixtures::service;
use crate::support::{DEADLINE, TestServer, addresses, debug_get, http_get, rcode, sample, scrape};

/// Waits until `done` holds, polling the fake API's counters.
async fn until(what: &str, done: impl Fn() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < DEADLINE, "{what}: not in time");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn state(server: &TestServer, kind: &str, state: &str) -> f64 {
    sample(
        &scrape(server),
        "k8s_gateway_source_state",
        &[("kind", kind), ("state", state)],
    )
}

/// A CRD whose conversion webhook is down answers every list with 500: after
/// `--sync-timeout` the other kinds serve, the kind shows as failing, and its names
/// come once its list succeeds.
#[tokio::test]
async fn a_kind_whose_list_keeps_failing_is_served_without_after_the_sync_timeout() {
    let api = FakeApi::start().await;
    api.serve_all();
    api.apply(
        "",
        "services",
        service("web", "apps", "web.home.example", "192.168.10.60"),
    );
    apply_example(&api, "examples/home-cluster/ingress.yaml");
    api.fail_lists("networking.k8s.io", "ingresses", None, true);
    let server = TestServer::start_cluster(&api, &["--sync-timeout", "2s"]).await;
    server.wait_ready().await;
    assert_eq!(
        addresses(&server.ask("web.home.example", RecordType::A).await),
        ["192.168.10.60"]
    );
    assert_eq!(
        rcode(&server.ask("grafana.home.example", RecordType::A).await),
        ResponseCode::NXDomain
    );
    assert_eq!(state(&server, "Ingress", "failing"), 1.0);
    assert_eq!(state(&server, "Ingress", "pending"), 0.0);
    assert!(
        sample(
            &scrape(&server),
            "k8s_gateway_watch_errors_total",
            &[("kind", "Ingress"), ("reason", "api_error")]
        ) >= 1.0
    );
    let (_, page) = debug_get(&server, "/").await;
    let row = "<td>Ingress</td><td class=\"state-failing\">failing</td>";
    assert!(page.contains(row), "no {row} in\n{page}");

    // The webhook is back: the watcher's own retries list the kind.
    api.fail_lists("networking.k8s.io", "ingresses", None, false);
    server
        .wait_for("grafana.home.example", RecordType::A, |m| {
            addresses(m) == ["192.168.10.30"]
        })
        .await;
    assert_eq!(state(&server, "Ingress", "synced"), 1.0);
    assert_eq!(state(&server, "Ingress", "failing"), 0.0);
    server.stop().await;
}

/// The sync timeout counts from the first kind listed: while no list succeeds at all,
/// the server stays unready and answers SERVFAIL, never an empty zone's NXDOMAIN that
/// resolvers downstream would cache.
#[tokio::test]
async fn while_no_kind_lists_the_server_stays_unready() {
    let api = FakeApi::start().await;
    api.serve_all();
    api.apply(
        "",
        "services",
        service("web", "apps", "web.home.example", "192.168.10.60"),
    );
    api.fail_lists("", "services", None, true);
    let server =
        TestServer::start_cluster(&api, &["--resources", "service", "--sync-timeout", "1s"]).await;
    // Three failed lists are more than a second of the watcher's backoff.
    until("three lists of services", || api.lists("services") >= 3).await;
    assert_eq!(http_get(&server, "/readyz").await.0, 503);
    assert_eq!(
        rcode(&server.ask("web.home.example", RecordType::A).await),
        ResponseCode::ServFail
    );
    assert_eq!(state(&server, "Service", "pending"), 1.0);
    api.fail_lists("", "services", None, false);
    server.wait_ready().await;
    assert_eq!(
        addresses(&server.ask("web.home.example", RecordType::A).await),
        ["192.168.10.60"]
    );
    server.stop().await;
}

/// With several `--namespace`, a kind is listed when every namespace is: the first zone
/// never holds half the cluster.
#[tokio::test]
async fn a_kind_is_listed_only_when_every_namespace_is() {
    let api = FakeApi::start().await;
    api.serve_all();
    api.apply(
        "",
        "services",
        service("a", "media", "a.home.example", "192.168.10.70"),
    );
    api.apply(
        "",
        "services",
        service("b", "apps", "b.home.example", "192.168.10.71"),
    );
    api.fail_lists("", "services", Some("apps"), true);
    let server = TestServer::start_cluster(
        &api,
        &[
            "--namespace",
            "media",
            "--namespace",
            "apps",
            "--sync-timeout",
            "5m",
        ],
    )
    .await;
    // media listed once, apps failed at least twice.
    until("lists of both namespaces", || api.lists("services") >= 3).await;
    assert_eq!(state(&server, "Service", "pending"), 1.0);
    assert_eq!(http_get(&server, "/readyz").await.0, 503);
    assert_eq!(
        rcode(&server.ask("a.home.example", RecordType::A).await),
        ResponseCode::ServFail
    );
    api.fail_lists("", "services", Some("apps"), false);
    server.wait_ready().await;
    for (name, ip) in [
        ("a.home.example", "192.168.10.70"),
        ("b.home.example", "192.168.10.71"),
    ] {
        assert_eq!(addresses(&server.ask(name, RecordType::A).await), [ip]);
    }
    server.stop().await;
}

/// An API server that restarts can serve discovery before its CRDs are loaded: one
/// discovery without the group keeps its names; only misses on consecutive discoveries
/// (or the watch's NotFound) drop them.
#[tokio::test]
async fn one_discovery_miss_keeps_the_names_of_a_kind() {
    let api = FakeApi::start().await;
    api.serve_all();
    apply_example(&api, "examples/home-cluster/ingress.yaml");
    let server = TestServer::start_cluster(&api, &["--resync", "1s"]).await;
    server.wait_ready().await;
    let grafana = || server.ask("grafana.home.example", RecordType::A);
    assert_eq!(addresses(&grafana().await), ["192.168.10.30"]);

    api.hide_from_discovery("networking.k8s.io", "ingresses", true);
    let rounds = api.discoveries();
    // One whole round after the one under way when the group went.
    until("two discoveries", || api.discoveries() >= rounds + 2).await;
    assert_eq!(addresses(&grafana().await), ["192.168.10.30"]);
    assert_eq!(state(&server, "Ingress", "synced"), 1.0);
    api.hide_from_discovery("networking.k8s.io", "ingresses", false);
    let rounds = api.discoveries();
    until("a discovery with the group", || {
        api.discoveries() >= rounds + 2
    })
    .await;

    // Missing from discovery after discovery: the kind is gone.
    api.hide_from_discovery("networking.k8s.io", "ingresses", true);
    server
        .wait_for("grafana.home.example", RecordType::A, |m| {
            rcode(m) == ResponseCode::NXDomain
        })
        .await;
    assert_eq!(state(&server, "Ingress", "not_served"), 1.0);
    api.hide_from_discovery("networking.k8s.io", "ingresses", false);
    server
        .wait_for("grafana.home.example", RecordType::A, |m| {
            addresses(m) == ["192.168.10.30"]
        })
        .await;
    server.stop().await;
}
