//! `--events`: a Kubernetes Event on an object when what it publishes changes, written
//! through kube's real `Client` to the fake API's Events endpoint; one per change, also
//! with two replicas; an API that refuses Events never takes the names down.

use hickory_proto::rr::RecordType;
use serde_json::{Value, json};

use crate::fake_api::FakeApi;
use crate::fixtures::service;
use crate::support::{TestServer, addresses, sample, scrape};

const GROUP: &str = "gateway.networking.k8s.io";

fn gateway(ip: &str) -> Value {
    json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
        "metadata": {"name": "gw", "namespace": "gateways"},
        "spec": {"gatewayClassName": "cilium", "listeners": [{"name": "https",
            "hostname": "*.home.example", "port": 443, "protocol": "HTTPS",
            "allowedRoutes": {"namespaces": {"from": "All"}}}]},
        "status": {"addresses": [{"type": "IPAddress", "value": ip}]}})
}

fn route(accepted: &str) -> Value {
    json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": "immich", "namespace": "media"},
        "spec": {"parentRefs": [{"name": "gw", "namespace": "gateways"}],
            "hostnames": ["immich.home.example"]},
        "status": {"parents": [{"parentRef": {"name": "gw", "namespace": "gateways"},
            "conditions": [{"type": "Accepted", "status": accepted, "reason": "Accepted"}]}]}})
}

/// An API serving every kind, with the Gateway at `ip` and the route.
async fn cluster(ip: &str, accepted: &str) -> FakeApi {
    let api = FakeApi::start().await;
    api.serve_all();
    api.apply(GROUP, "gateways", gateway(ip));
    api.apply(GROUP, "httproutes", route(accepted));
    api
}

/// The Events written about the route, in order.
fn route_events(api: &FakeApi) -> Vec<(&'static str, Value)> {
    (api.event_writes().into_iter())
        .filter(|(_, e)| e["regarding"]["name"] == "immich")
        .collect()
}

fn events_total(server: &TestServer, result: &str) -> f64 {
    sample(
        &scrape(server),
        "k8s_gateway_events_total",
        &[("result", result)],
    )
}

#[tokio::test]
async fn a_published_route_gets_one_event_per_change_of_what_it_publishes() {
    let api = cluster("192.168.10.50", "True").await;
    let server = TestServer::start_cluster(&api, &["--events"]).await;
    server.wait_ready().await;
    api.wait_event_attempts(1).await;
    let events = route_events(&api);
    assert_eq!(events.len(), 1, "{events:?}");
    let (write, event) = &events[0];
    assert_eq!(*write, "create");
    assert_eq!(event["reason"], "Published");
    assert_eq!(event["type"], "Normal");
    assert_eq!(event["action"], "Publish");
    assert_eq!(event["reportingController"], "k8s-gateway.dns/k8s-gateway");
    assert_eq!(
        event["note"],
        "Publishes immich.home.example A 192.168.10.50"
    );
    let regarding = &event["regarding"];
    assert_eq!(regarding["kind"], "HTTPRoute");
    assert_eq!(regarding["apiVersion"], "gateway.networking.k8s.io/v1");
    assert_eq!(regarding["namespace"], "media");
    // The uid the fake API gave the route: `kubectl describe` finds Events by it.
    assert_eq!(regarding["uid"], "uid-media-immich");
    assert_eq!(event["metadata"]["namespace"], "media");

    // A rebuild that leaves the route as it was: the new Service gets its Event, the
    // route none.
    api.apply(
        "",
        "services",
        service("web", "apps", "web.home.example", "192.168.10.60"),
    );
    api.wait_event_attempts(2).await;
    let last = api.event_writes().pop().expect("an Event");
    assert_eq!(last.1["regarding"]["name"], "web");
    assert_eq!(route_events(&api).len(), 1);

    // A new address: one more.
    api.apply(GROUP, "gateways", gateway("192.168.10.51"));
    server
        .wait_for("immich.home.example", RecordType::A, |m| {
            addresses(m) == ["192.168.10.51"]
        })
        .await;
    api.wait_event_attempts(3).await;
    let events = route_events(&api);
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(
        events[1].1["note"],
        "Publishes immich.home.example A 192.168.10.51"
    );
    assert_eq!(events_total(&server, "written"), 3.0);
}

#[tokio::test]
async fn a_route_its_gateway_refuses_is_not_published_with_the_reason() {
    let api = cluster("192.168.10.50", "False").await;
    let server = TestServer::start_cluster(&api, &["--events"]).await;
    server.wait_ready().await;
    api.wait_event_attempts(1).await;
    let events = route_events(&api);
    assert_eq!(events.len(), 1, "{events:?}");
    let event = &events[0].1;
    assert_eq!(event["reason"], "NotPublished");
    assert_eq!(
        event["type"], "Normal",
        "waiting on the Gateway is no mistake"
    );
    let note = event["note"].as_str().unwrap_or_default();
    assert!(
        note.contains("its parent Gateway has not accepted it"),
        "{note}"
    );
}

/// Both replicas see the same change and write the same Event name: the API keeps one,
/// the other replica's create is a 409 (at start) or finds it just written.
#[tokio::test]
async fn two_replicas_write_one_event_per_change() {
    let api = cluster("192.168.10.50", "True").await;
    let first = TestServer::start_cluster(&api, &["--events"]).await;
    let second = TestServer::start_cluster(&api, &["--events"]).await;
    first.wait_ready().await;
    second.wait_ready().await;
    api.wait_event_attempts(2).await;
    assert_eq!(route_events(&api).len(), 1);

    api.apply(GROUP, "gateways", gateway("192.168.10.51"));
    api.wait_event_attempts(4).await;
    let events = route_events(&api);
    assert_eq!(events.len(), 2, "{events:?}");
    let duplicates = events_total(&first, "duplicate") + events_total(&second, "duplicate");
    assert_eq!(duplicates, 2.0);
}

/// Published, refused, published again: the first Event's series is counted up, so
/// `kubectl describe` shows the outcome as the latest again.
#[tokio::test]
async fn an_outcome_that_comes_back_is_counted_in_its_series() {
    let api = cluster("192.168.10.50", "True").await;
    let server = TestServer::start_cluster(&api, &["--events"]).await;
    server.wait_ready().await;
    api.wait_event_attempts(1).await;
    api.apply(GROUP, "httproutes", route("False"));
    api.wait_event_attempts(2).await;
    api.apply(GROUP, "httproutes", route("True"));
    api.wait_event_attempts(3).await;
    let events = route_events(&api);
    let writes: Vec<(&str, &Value)> = events.iter().map(|(w, e)| (*w, &e["reason"])).collect();
    assert_eq!(
        writes,
        [
            ("create", &json!("Published")),
            ("create", &json!("NotPublished")),
            ("patch", &json!("Published")),
        ]
    );
    assert_eq!(events[2].1["series"]["count"], 2);
    assert_eq!(events_total(&server, "series"), 1.0);
}

#[tokio::test]
async fn an_api_that_refuses_events_still_serves_the_names() {
    for code in [403, 500] {
        let api = cluster("192.168.10.50", "True").await;
        api.refuse_events(Some(code));
        let server = TestServer::start_cluster(&api, &["--events"]).await;
        server.wait_ready().await;
        api.wait_event_attempts(1).await;
        api.apply(GROUP, "gateways", gateway("192.168.10.51"));
        server
            .wait_for("immich.home.example", RecordType::A, |m| {
                addresses(m) == ["192.168.10.51"]
            })
            .await;
        api.wait_event_attempts(2).await;
        assert!(api.event_writes().is_empty());
        assert_eq!(events_total(&server, "failed"), 2.0, "{code}");

        // Accepted again: the next change is written.
        api.refuse_events(None);
        api.apply(GROUP, "gateways", gateway("192.168.10.52"));
        api.wait_event_attempts(3).await;
        assert_eq!(route_events(&api).len(), 1, "{code}");
        assert_eq!(events_total(&server, "written"), 1.0, "{code}");
    }
}

#[tokio::test]
async fn without_events_none_are_written() {
    let api = cluster("192.168.10.50", "True").await;
    let server = TestServer::start_cluster(&api, &[]).await;
    server.wait_ready().await;
    api.apply(GROUP, "gateways", gateway("192.168.10.51"));
    server
        .wait_for("immich.home.example", RecordType::A, |m| {
            addresses(m) == ["192.168.10.51"]
        })
        .await;
    assert_eq!(api.event_attempts(), 0);
    assert_eq!(events_total(&server, "written"), 0.0);
}
