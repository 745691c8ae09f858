//! Several clusters in one server (`--cluster NAME=KUBECONFIG`), each behind a fake API
//! server of its own that kube's real `Client` talks to: their names in one zone, the
//! first `--cluster` winning a name both publish, each cluster's objects referring only
//! to each other, and one cluster away (stopped, or never up) leaving the other serving.

use hickory_proto::rr::RecordType;
use serde_json::{Value, json};

use crate::fake_api::FakeApi;
use crate::fixtures::service;
use crate::support::{
    TestServer, Transport, addresses, ask, debug_get, sample, scrape, wait_answer,
};

/// A fake API serving every kind, holding `services` (name, host, address) in `apps`.
async fn cluster_with(services: &[(&str, &str, &str)]) -> FakeApi {
    let api = FakeApi::start().await;
    api.serve_all();
    for (name, host, ip) in services {
        api.apply("", "services", service(name, "apps", host, ip));
    }
    api
}

fn gateway(address: &str) -> Value {
    json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
        "metadata": {"name": "gw", "namespace": "gateway"},
        "spec": {"gatewayClassName": "cilium", "listeners": [{"name": "http", "port": 80,
            "protocol": "HTTP", "allowedRoutes": {"namespaces": {"from": "All"}}}]},
        "status": {"addresses": [{"type": "IPAddress", "value": address}]}})
}

fn route(name: &str, host: &str) -> Value {
    let parent = json!({"group": "gateway.networking.k8s.io", "kind": "Gateway",
        "name": "gw", "namespace": "gateway"});
    json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": "apps"},
        "spec": {"parentRefs": [parent], "hostnames": [host]},
        "status": {"parents": [{"parentRef": parent, "controllerName": "example.io/gateway",
            "conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted",
                "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}]}})
}

fn explain(body: &str) -> Value {
    serde_json::from_str(body).expect("/explain is JSON")
}

fn state(server: &TestServer, cluster: &str, kind: &str, state: &str) -> f64 {
    sample(
        &scrape(server),
        "k8s_gateway_source_state",
        &[("cluster", cluster), ("kind", kind), ("state", state)],
    )
}

#[tokio::test]
async fn both_clusters_names_answer_over_udp_and_tcp() {
    let prod = cluster_with(&[("web", "web.home.example", "192.168.10.60")]).await;
    let lab = cluster_with(&[("grafana", "grafana.home.example", "192.168.20.30")]).await;
    let server = TestServer::start_clusters(&[("prod", &prod), ("lab", &lab)], &[]).await;
    server.wait_ready().await;
    // (name, address, the cluster /explain names)
    let cases = [
        ("web.home.example", "192.168.10.60", "prod"),
        ("grafana.home.example", "192.168.20.30", "lab"),
    ];
    for (name, address, cluster) in cases {
        for transport in [Transport::Udp, Transport::Tcp] {
            let answer = ask(server.addr, name, RecordType::A, transport).await;
            assert_eq!(addresses(&answer), [address], "{name} over {transport:?}");
        }
        let (_, body) = debug_get(&server, &format!("/explain?name={name}")).await;
        let explained = explain(&body);
        assert_eq!(explained["cluster"], cluster, "{body}");
        let from = format!(
            "Service apps/{} (cluster {cluster})",
            &name[..name.find('.').unwrap()]
        );
        assert_eq!(explained["records"][0]["objects"][0], from, "{body}");
    }
    // The status page and the metrics name each cluster's kinds.
    assert_eq!(state(&server, "prod", "Service", "synced"), 1.0);
    assert_eq!(state(&server, "lab", "Service", "synced"), 1.0);
    let metrics = scrape(&server);
    let objects = |cluster| {
        sample(
            &metrics,
            "k8s_gateway_source_objects",
            &[("cluster", cluster), ("kind", "Service")],
        )
    };
    assert_eq!((objects("prod"), objects("lab")), (1.0, 1.0));
    let records = |cluster| {
        sample(
            &metrics,
            "k8s_gateway_zone_records",
            &[("cluster", cluster), ("kind", "Service")],
        )
    };
    // An A record each (a Service without named ports has no SRV).
    assert_eq!((records("prod"), records("lab")), (1.0, 1.0));
    let (_, page) = debug_get(&server, "/").await;
    for row in [
        "<tr><td>prod</td><td>Service</td><td class=\"state-synced\">",
        "<tr><td>lab</td><td>Service</td><td class=\"state-synced\">",
        "Service apps/grafana (cluster lab)",
    ] {
        assert!(page.contains(row), "no {row} in\n{page}");
    }
    // In the order of --cluster (their precedence), not of their names.
    let at = |cluster: &str| page.find(&format!("<tr><td>{cluster}</td>")).unwrap();
    assert!(at("prod") < at("lab"), "lab listed before prod in\n{page}");
    server.stop().await;
}

/// The same name in both clusters: the first `--cluster` wins, whatever the kinds, and
/// `/explain` shows the other cluster's object as lost on precedence.
#[tokio::test]
async fn the_first_cluster_wins_a_name_both_publish_and_explain_shows_the_loser() {
    let prod = cluster_with(&[("app", "app.home.example", "192.168.10.61")]).await;
    let lab = cluster_with(&[("app", "app.home.example", "192.168.20.61")]).await;
    // In the lab, a route too: on kinds alone it would beat prod's Service.
    lab.apply(
        "gateway.networking.k8s.io",
        "gateways",
        gateway("192.168.20.50"),
    );
    lab.apply(
        "gateway.networking.k8s.io",
        "httproutes",
        route("app", "app.home.example"),
    );
    for (order, winner, loser, address) in [
        (["prod", "lab"], "prod", "lab", "192.168.10.61"),
        (["lab", "prod"], "lab", "prod", "192.168.20.50"),
    ] {
        let apis = |name| if name == "prod" { &prod } else { &lab };
        let clusters = [(order[0], apis(order[0])), (order[1], apis(order[1]))];
        let server = TestServer::start_clusters(&clusters, &[]).await;
        server.wait_ready().await;
        assert_eq!(
            addresses(&server.ask("app.home.example", RecordType::A).await),
            [address],
            "{order:?}"
        );
        let (_, body) = debug_get(&server, "/explain?name=app.home.example").await;
        let explained = explain(&body);
        assert_eq!(explained["cluster"], winner, "{body}");
        let shadowed = explained["shadowed"].as_array().expect("shadowed");
        let lost = json!({"kind": "Service", "cluster": loser,
            "object": format!("Service apps/app (cluster {loser})")});
        assert!(shadowed.contains(&lost), "{body}");
        server.stop().await;
    }
}

/// Both clusters have a Gateway `gateway/gw`, each with its own address: a route binds to
/// its own cluster's Gateway, never to the other's of the same name.
#[tokio::test]
async fn a_route_uses_the_gateway_of_its_own_cluster() {
    let prod = cluster_with(&[]).await;
    let lab = cluster_with(&[]).await;
    prod.apply(
        "gateway.networking.k8s.io",
        "gateways",
        gateway("192.168.10.50"),
    );
    lab.apply(
        "gateway.networking.k8s.io",
        "gateways",
        gateway("192.168.20.50"),
    );
    prod.apply(
        "gateway.networking.k8s.io",
        "httproutes",
        route("shop", "shop.home.example"),
    );
    // A route named as prod's, in the lab, with a host of its own.
    lab.apply(
        "gateway.networking.k8s.io",
        "httproutes",
        route("shop", "shop-test.home.example"),
    );
    lab.apply(
        "gateway.networking.k8s.io",
        "httproutes",
        route("wiki", "wiki.home.example"),
    );
    let server = TestServer::start_clusters(&[("prod", &prod), ("lab", &lab)], &[]).await;
    server.wait_ready().await;
    // (name, the address of its own cluster's Gateway)
    let cases = [
        ("shop.home.example", "192.168.10.50"),
        ("shop-test.home.example", "192.168.20.50"),
        ("wiki.home.example", "192.168.20.50"),
    ];
    for (name, address) in cases {
        assert_eq!(
            addresses(&server.ask(name, RecordType::A).await),
            [address],
            "{name}"
        );
    }
    // The lab's Gateway goes: its routes lose their address, prod's keeps its own.
    lab.delete("gateway.networking.k8s.io", "gateways", "gateway", "gw");
    server
        .wait_for("wiki.home.example", RecordType::A, |m| {
            addresses(m).is_empty()
        })
        .await;
    assert_eq!(
        addresses(&server.ask("shop.home.example", RecordType::A).await),
        ["192.168.10.50"]
    );
    server.stop().await;
}

/// One API server goes away: its last names keep answering, and the other cluster's
/// changes still arrive.
#[tokio::test]
async fn a_cluster_that_goes_away_keeps_its_names_and_the_other_still_changes() {
    let prod = cluster_with(&[("web", "web.home.example", "192.168.10.60")]).await;
    let lab = cluster_with(&[("grafana", "grafana.home.example", "192.168.20.30")]).await;
    let server = TestServer::start_clusters(&[("prod", &prod), ("lab", &lab)], &[]).await;
    server.wait_ready().await;
    lab.stop().await;
    prod.apply(
        "",
        "services",
        service("web", "apps", "web.home.example", "192.168.10.61"),
    );
    server
        .wait_for("web.home.example", RecordType::A, |m| {
            addresses(m) == ["192.168.10.61"]
        })
        .await;
    // The zone was rebuilt after the lab went away, and still holds its names.
    assert_eq!(
        addresses(&server.ask("grafana.home.example", RecordType::A).await),
        ["192.168.20.30"]
    );
    // The lab comes back with a change: it arrives.
    lab.serve().await;
    lab.apply(
        "",
        "services",
        service("grafana", "apps", "grafana.home.example", "192.168.20.31"),
    );
    server
        .wait_for("grafana.home.example", RecordType::A, |m| {
            addresses(m) == ["192.168.20.31"]
        })
        .await;
    server.stop().await;
}

/// A cluster that is down when the server starts does not hold the other's names back:
/// after `--sync-timeout` from the first list, the zone serves without it, its kinds
/// show as failing, and its names come once it answers.
#[tokio::test]
async fn a_cluster_never_reachable_at_start_is_served_without_after_the_sync_timeout() {
    let prod = cluster_with(&[("web", "web.home.example", "192.168.10.60")]).await;
    let lab = FakeApi::reserve().await;
    lab.serve_all();
    lab.apply(
        "",
        "services",
        service("grafana", "apps", "grafana.home.example", "192.168.20.30"),
    );
    let server =
        TestServer::start_clusters(&[("prod", &prod), ("lab", &lab)], &["--sync-timeout", "1s"])
            .await;
    server.wait_ready().await;
    assert_eq!(
        addresses(&server.ask("web.home.example", RecordType::A).await),
        ["192.168.10.60"]
    );
    assert_eq!(state(&server, "lab", "Service", "failing"), 1.0);
    assert_eq!(state(&server, "prod", "Service", "synced"), 1.0);
    let (_, page) = debug_get(&server, "/").await;
    let row = "<tr><td>lab</td><td>Service</td><td class=\"state-failing\">failing</td>";
    assert!(page.contains(row), "no {row} in\n{page}");

    lab.serve().await;
    server
        .wait_for("grafana.home.example", RecordType::A, |m| {
            addresses(m) == ["192.168.20.30"]
        })
        .await;
    assert_eq!(state(&server, "lab", "Service", "synced"), 1.0);
    server.stop().await;
}

/// Without `--cluster` the source metrics carry no `cluster` label: a single cluster's
/// series are as they were.
#[tokio::test]
async fn one_cluster_without_the_option_has_no_cluster_label() {
    let api = cluster_with(&[("web", "web.home.example", "192.168.10.60")]).await;
    let server = TestServer::start_cluster(&api, &[]).await;
    server.wait_ready().await;
    let metrics = scrape(&server);
    let source_lines: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("k8s_gateway_source_"))
        .collect();
    assert!(!source_lines.is_empty());
    assert!(
        source_lines.iter().all(|l| !l.contains("cluster=")),
        "{source_lines:?}"
    );
    let (_, body) = debug_get(&server, "/explain?name=web.home.example").await;
    assert!(explain(&body).get("cluster").is_none(), "{body}");
    server.stop().await;
}

#[tokio::test]
async fn each_clusters_events_go_to_its_own_api_and_a_name_lost_to_another_cluster_says_why() {
    // prod and lab both publish app; only lab publishes grafana.
    let prod = cluster_with(&[("app", "app.home.example", "192.168.10.61")]).await;
    let lab = cluster_with(&[
        ("app", "app.home.example", "192.168.20.61"),
        ("grafana", "grafana.home.example", "192.168.20.30"),
    ])
    .await;
    let server = TestServer::start_clusters(&[("prod", &prod), ("lab", &lab)], &["--events"]).await;
    server.wait_ready().await;
    prod.wait_event_attempts(1).await;
    lab.wait_event_attempts(2).await;
    let about = |api: &FakeApi| {
        let mut events: Vec<(String, String, String)> = (api.event_writes().into_iter())
            .map(|(_, e)| {
                let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
                (
                    text(&e["regarding"]["name"]),
                    text(&e["reason"]),
                    text(&e["note"]),
                )
            })
            .collect();
        events.sort();
        events
    };
    let prod_events = about(&prod);
    assert_eq!(
        prod_events,
        [(
            "app".to_string(),
            "Published".to_string(),
            "Publishes app.home.example A 192.168.10.61".to_string()
        )],
        "prod's API gets the Events of prod's objects only"
    );
    let lab_events = about(&lab);
    assert_eq!(lab_events.len(), 2, "{lab_events:?}");
    let (name, reason, note) = &lab_events[0];
    assert_eq!((name.as_str(), reason.as_str()), ("app", "Superseded"));
    assert_eq!(
        note,
        "Publishes nothing: app.home.example is published by Service apps/app (cluster prod) \
         instead, whose cluster comes first in --cluster"
    );
    assert_eq!(
        lab_events[1],
        (
            "grafana".to_string(),
            "Published".to_string(),
            "Publishes grafana.home.example A 192.168.20.30".to_string()
        )
    );
    server.stop().await;
}

/// `--cluster NAME=` is the default config, as without `--kubeconfig` (in a pod, its
/// service account: the cluster the chart is installed in; here `KUBECONFIG`), named and
/// ranked like the others.
#[tokio::test]
async fn an_empty_kubeconfig_is_the_default_cluster_named_like_the_others() {
    let home = cluster_with(&[("app", "app.home.example", "192.168.10.61")]).await;
    let lab = cluster_with(&[
        ("app", "app.home.example", "192.168.20.61"),
        ("grafana", "grafana.home.example", "192.168.20.30"),
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (home_dir, lab_dir) = (dir.path().join("home"), dir.path().join("lab"));
    std::fs::create_dir(&home_dir).unwrap();
    std::fs::create_dir(&lab_dir).unwrap();
    let default = home.write_kubeconfig(&home_dir);
    let lab_cluster = format!("lab={}", lab.write_kubeconfig(&lab_dir).display());
    let args = [
        &["serve", "--domain", "home.example"][..],
        &["--cluster", "home=", "--cluster", &lab_cluster],
        &crate::cli::LOOPBACK,
    ]
    .concat();
    let server = crate::cli::start_with_env(&args, &[("KUBECONFIG", &default.to_string_lossy())]);
    // (name, the address: home's wins the name both publish)
    for (name, address) in [
        ("grafana.home.example", "192.168.20.30"),
        ("app.home.example", "192.168.10.61"),
    ] {
        wait_answer(server.addr, name, RecordType::A, |m| {
            addresses(m) == [address]
        })
        .await;
    }
}
