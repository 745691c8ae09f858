//! The cluster source through kube's real `Client`, against a fake API server that
//! speaks the API's JSON: what DNS answers before, during and after each thing a real
//! cluster does (relists, expired watches, dropped connections, RBAC, missing CRDs, an
//! API server that is down).

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use serde_json::{Value, json};

use crate::fake_api::FakeApi;
use crate::fixtures::{service, serving_web_api};
use crate::support::{
    TestServer, addresses, debug_get, http_get, rcode, repo_path, sample, scrape,
};

/// The group and plural an object is served under.
fn resource_of(object: &Value) -> (&'static str, &'static str) {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    match (group, object["kind"].as_str().unwrap_or_default()) {
        ("", "Service") => ("", "services"),
        ("networking.k8s.io", "Ingress") => ("networking.k8s.io", "ingresses"),
        ("gateway.networking.k8s.io", "Gateway") => ("gateway.networking.k8s.io", "gateways"),
        ("gateway.networking.k8s.io", "HTTPRoute") => ("gateway.networking.k8s.io", "httproutes"),
        ("gateway.networking.k8s.io", "TLSRoute") => ("gateway.networking.k8s.io", "tlsroutes"),
        ("networking.istio.io", "Gateway") => ("networking.istio.io", "gateways"),
        ("networking.istio.io", "VirtualService") => ("networking.istio.io", "virtualservices"),
        ("externaldns.k8s.io", "DNSEndpoint") => ("externaldns.k8s.io", "dnsendpoints"),
        other => panic!("no resource for {other:?}"),
    }
}

/// Applies every object of a bundled example file to the fake cluster.
pub(crate) fn apply_example(api: &FakeApi, file: &str) {
    let text = std::fs::read_to_string(repo_path(file)).expect("example");
    let mut objects = Vec::new();
    for document in serde_saphyr::from_multiple::<Value>(&text).expect("YAML") {
        match document["kind"].as_str() {
            None => {}
            // `kubectl get -o yaml` output: the items are the objects.
            Some("List") => {
                objects.extend(document["items"].as_array().cloned().unwrap_or_default())
            }
            Some(_) => objects.push(document),
        }
    }
    for object in objects {
        let (group, plural) = resource_of(&object);
        api.apply(group, plural, object);
    }
}

fn builds(server: &TestServer) -> f64 {
    sample(&scrape(server), "k8s_gateway_zone_builds_total", &[])
}

#[tokio::test]
async fn the_cluster_serves_what_the_same_manifests_serve() {
    let api = FakeApi::start().await;
    api.serve_all();
    let files = [
        "examples/services.yaml",
        "examples/home-cluster/istio.yaml",
        "examples/home-cluster/gateway-api.yaml",
        "examples/home-cluster/ingress.yaml",
        "examples/home-cluster/dnsendpoint.yaml",
    ];
    for file in files {
        apply_example(&api, file);
    }
    let live = TestServer::start_cluster(&api, &[]).await;
    live.wait_ready().await;
    let manifests: String = files
        .iter()
        .map(|f| std::fs::read_to_string(repo_path(f)).unwrap() + "\n---\n")
        .collect();
    let folder = TestServer::start(&manifests, &[]).await;

    // Every kind, including TLSRoute served only at v1alpha2 while its group prefers v1.
    for name in [
        "home-assistant.home.example",
        "jellyfin.home.example",
        "immich.home.example",
        "unifi.home.example",
        "x.apps.home.example",
        "grafana.home.example",
        "nas.home.example",
        "photos.home.example",
        "rejected.home.example",
        "backend.home.example",
    ] {
        let (a, b) = (
            live.ask(name, RecordType::A).await,
            folder.ask(name, RecordType::A).await,
        );
        assert_eq!(rcode(&a), rcode(&b), "{name}");
        assert_eq!(a.answers, b.answers, "{name}");
    }
    assert_eq!(
        addresses(&live.ask("unifi.home.example", RecordType::A).await),
        ["192.168.10.50"]
    );
    // The zone files are the same, serial aside.
    let strip_serial = |zone: String| -> Vec<String> {
        zone.lines()
            .filter(|l| !l.contains("SOA"))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(
        strip_serial(debug_get(&live, "/zone").await.1),
        strip_serial(debug_get(&folder, "/zone").await.1)
    );
    let metrics = scrape(&live);
    assert_eq!(
        sample(
            &metrics,
            "k8s_gateway_source_state",
            &[("kind", "TLSRoute"), ("state", "synced")]
        ),
        1.0
    );
    live.stop().await;
    folder.stop().await;
}

#[tokio::test]
async fn changes_reach_the_answers() {
    let (api, server) = serving_web_api().await;
    assert_eq!(
        addresses(&server.ask("web.home.example", RecordType::A).await),
        ["192.168.10.60"]
    );
    let changed = std::time::Instant::now();
    api.apply(
        "",
        "services",
        service("web", "apps", "web.home.example", "192.168.10.61"),
    );
    server
        .wait_for("web.home.example", RecordType::A, |m| {
            addresses(m) == ["192.168.10.61"]
        })
        .await;
    // Measured, not asserted (shared machines): shown with --nocapture.
    println!("a change reached the answers in {:?}", changed.elapsed());
    api.delete("", "services", "apps", "web");
    server
        .wait_for("web.home.example", RecordType::A, |m| {
            rcode(m) == ResponseCode::NXDomain
        })
        .await;
    server.stop().await;
}

#[tokio::test]
async fn servfail_and_not_ready_until_the_api_comes_up() {
    let api = FakeApi::reserve().await;
    api.serve_all();
    api.apply(
        "",
        "services",
        service("web", "apps", "web.home.example", "192.168.10.60"),
    );
    let server = TestServer::start_cluster(&api, &[]).await;
    assert_eq!(
        rcode(&server.ask("web.home.example", RecordType::A).await),
        ResponseCode::ServFail
    );
    assert_eq!(http_get(&server, "/readyz").await.0, 503);
    api.serve().await;
    server.wait_ready().await;
    assert_eq!(
        addresses(&server.ask("web.home.example", RecordType::A).await),
        ["192.168.10.60"]
    );
    server.stop().await;
}

#[tokio::test]
async fn the_last_zone_answers_while_the_api_is_away() {
    let (api, server) = serving_web_api().await;
    api.stop().await;
    // Down: the same answers, still ready.
    for _ in 0..20 {
        assert_eq!(
            addresses(&server.ask("web.home.example", RecordType::A).await),
            ["192.168.10.60"]
        );
    }
    assert_eq!(http_get(&server, "/readyz").await.0, 200);
    // A change made while we could not see it arrives when the API is back.
    api.apply(
        "",
        "services",
        service("web", "apps", "web.home.example", "192.168.10.62"),
    );
    api.serve().await;
    server
        .wait_for("web.home.example", RecordType::A, |m| {
            addresses(m) == ["192.168.10.62"]
        })
        .await;
    let metrics = scrape(&server);
    assert!(
        sample(
            &metrics,
            "k8s_gateway_watch_errors_total",
            &[("kind", "Service"), ("reason", "connection")]
        ) >= 1.0,
        "{metrics}"
    );
    server.stop().await;
}

#[tokio::test]
async fn an_expired_watch_relists_without_rebuilding_an_unchanged_zone() {
    let (api, server) = serving_web_api().await;
    api.wait_watching("services", 1).await;
    let lists = api.lists("services");
    let before = builds(&server);
    api.expire();
    // The watcher relists, and watches again from the new list.
    let start = std::time::Instant::now();
    while api.lists("services") == lists {
        assert!(start.elapsed() < crate::support::DEADLINE, "no relist");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    api.wait_watching("services", 1).await;
    // The relist found nothing new: no rebuild. A change afterwards still arrives.
    assert_eq!(builds(&server), before);
    api.apply(
        "",
        "services",
        service("new", "apps", "new.home.example", "192.168.10.63"),
    );
    server
        .wait_for("new.home.example", RecordType::A, |m| {
            addresses(m) == ["192.168.10.63"]
        })
        .await;
    let metrics = scrape(&server);
    assert!(
        sample(
            &metrics,
            "k8s_gateway_watch_errors_total",
            &[("kind", "Service"), ("reason", "expired")]
        ) >= 1.0
    );
    server.stop().await;
}

#[tokio::test]
async fn a_dropped_watch_resumes_and_bookmarks_are_harmless() {
    let api = FakeApi::start().await;
    api.serve_all();
    let server = TestServer::start_cluster(&api, &[]).await;
    server.wait_ready().await;
    api.wait_watching("services", 1).await;
    api.bookmark();
    let watches = api.watches("services");
    api.drop_watches();
    api.apply(
        "",
        "services",
        service("web", "apps", "web.home.example", "192.168.10.64"),
    );
    server
        .wait_for("web.home.example", RecordType::A, |m| {
            addresses(m) == ["192.168.10.64"]
        })
        .await;
    assert!(api.watches("services") > watches);
    server.stop().await;
}

#[tokio::test]
async fn a_forbidden_kind_is_skipped_and_the_others_serve() {
    let api = FakeApi::start().await;
    api.serve_all();
    api.forbid("networking.k8s.io", "ingresses", true);
    apply_example(&api, "examples/home-cluster/ingress.yaml");
    api.apply(
        "",
        "services",
        service("web", "apps", "web.home.example", "192.168.10.60"),
    );
    let server = TestServer::start_cluster(&api, &[]).await;
    server.wait_ready().await;
    assert_eq!(
        addresses(&server.ask("web.home.example", RecordType::A).await),
        ["192.168.10.60"]
    );
    assert_eq!(
        rcode(&server.ask("grafana.home.example", RecordType::A).await),
        ResponseCode::NXDomain
    );
    let metrics = scrape(&server);
    assert_eq!(
        sample(
            &metrics,
            "k8s_gateway_source_state",
            &[("kind", "Ingress"), ("state", "forbidden")]
        ),
        1.0
    );
    assert!(
        sample(
            &metrics,
            "k8s_gateway_watch_errors_total",
            &[("kind", "Ingress"), ("reason", "forbidden")]
        ) >= 1.0
    );
    // The status page shows each kind's state and object count.
    let (_, page) = debug_get(&server, "/").await;
    for row in [
        "<td>Ingress</td><td class=\"state-forbidden\">forbidden</td>",
        "<td>Service</td><td class=\"state-synced\">synced</td><td>1</td>",
    ] {
        assert!(page.contains(row), "no {row} in\n{page}");
    }
    // RBAC fixed: the kind is picked up by the watch's own retries.
    api.forbid("networking.k8s.io", "ingresses", false);
    server
        .wait_for("grafana.home.example", RecordType::A, |m| {
            addresses(m) == ["192.168.10.30"]
        })
        .await;
    server.stop().await;
}

#[tokio::test]
async fn a_missing_crd_is_skipped_and_picked_up_once_installed() {
    let api = FakeApi::start().await;
    // A cluster without Istio, Gateway API or external-dns CRDs.
    api.serve_resource("", "v1", "services", "Service", true);
    api.serve_resource("networking.k8s.io", "v1", "ingresses", "Ingress", true);
    apply_example(&api, "examples/home-cluster/istio.yaml");
    let server = TestServer::start_cluster(&api, &["--resync", "1s"]).await;
    server.wait_ready().await;
    // The Istio ingress Service itself is served; the VirtualServices are not (yet).
    assert_eq!(
        addresses(
            &server
                .ask("istio-ingress.istio-ingress.home.example", RecordType::A)
                .await
        ),
        ["192.168.10.40"]
    );
    assert_eq!(
        rcode(&server.ask("jellyfin.home.example", RecordType::A).await),
        ResponseCode::NXDomain
    );
    assert_eq!(
        sample(
            &scrape(&server),
            "k8s_gateway_source_state",
            &[("kind", "VirtualService"), ("state", "not_served")]
        ),
        1.0
    );
    // Istio installed (v1beta1 only, as older releases serve it).
    for (plural, kind) in [
        ("gateways", "Gateway"),
        ("virtualservices", "VirtualService"),
    ] {
        api.serve_resource("networking.istio.io", "v1beta1", plural, kind, true);
    }
    server
        .wait_for("jellyfin.home.example", RecordType::A, |m| {
            addresses(m) == ["192.168.10.40"]
        })
        .await;
    // And uninstalled: its names go with it.
    api.remove_resource("networking.istio.io", "virtualservices");
    server
        .wait_for("jellyfin.home.example", RecordType::A, |m| {
            rcode(m) == ResponseCode::NXDomain
        })
        .await;
    server.stop().await;
}

#[tokio::test]
async fn a_burst_of_changes_rebuilds_a_few_times_and_lists_paginate() {
    let api = FakeApi::start().await;
    api.serve_all();
    // More than one page (the watcher asks for 500 at a time).
    for i in 0..600 {
        api.apply(
            "",
            "services",
            service(
                &format!("s{i}"),
                "bulk",
                &format!("s{i}.home.example"),
                "192.168.11.1",
            ),
        );
    }
    let server = TestServer::start_cluster(&api, &[]).await;
    server.wait_ready().await;
    assert!(api.lists("services") >= 2, "one list of 600 is two pages");
    assert_eq!(
        addresses(&server.ask("s599.home.example", RecordType::A).await),
        ["192.168.11.1"]
    );
    api.wait_watching("services", 1).await;
    let before = builds(&server);
    // A Flux reconcile touching 200 objects.
    for i in 0..200 {
        api.apply(
            "",
            "services",
            service(
                &format!("s{i}"),
                "bulk",
                &format!("s{i}.home.example"),
                "192.168.11.2",
            ),
        );
    }
    server
        .wait_for("s199.home.example", RecordType::A, |m| {
            addresses(m) == ["192.168.11.2"]
        })
        .await;
    let rebuilt = builds(&server) - before;
    assert!(
        (1.0..50.0).contains(&rebuilt),
        "200 changes rebuilt the zone {rebuilt} times"
    );
    server.stop().await;
}

#[tokio::test]
async fn namespace_and_label_selector_limit_what_is_read() {
    let api = FakeApi::start().await;
    api.serve_all();
    let mut labelled = service("a", "media", "a.home.example", "192.168.10.70");
    labelled["metadata"]["labels"] = json!({"dns": "public"});
    api.apply("", "services", labelled);
    api.apply(
        "",
        "services",
        service("b", "media", "b.home.example", "192.168.10.71"),
    );
    let mut elsewhere = service("c", "other", "c.home.example", "192.168.10.72");
    elsewhere["metadata"]["labels"] = json!({"dns": "public"});
    api.apply("", "services", elsewhere);
    let server = TestServer::start_cluster(
        &api,
        &["--namespace", "media", "--label-selector", "dns=public"],
    )
    .await;
    server.wait_ready().await;
    assert_eq!(
        addresses(&server.ask("a.home.example", RecordType::A).await),
        ["192.168.10.70"]
    );
    for name in ["b.home.example", "c.home.example"] {
        assert_eq!(
            rcode(&server.ask(name, RecordType::A).await),
            ResponseCode::NXDomain,
            "{name}"
        );
    }
    server.stop().await;
}

/// Resident memory of the real binary holding 10,000 Services from the cluster, against
/// an empty cluster. A measurement, not a test of a threshold: run with
/// `cargo test --release --test integration resident_memory -- --ignored --nocapture`.
#[tokio::test]
#[ignore = "a measurement; run by hand"]
async fn resident_memory_with_10k_services() {
    for count in [0usize, 10_000] {
        let api = FakeApi::start().await;
        api.serve_all();
        for i in 0..count {
            let mut object = service(
                &format!("app{i}"),
                &format!("ns{}", i % 50),
                &format!("app{i}.home.example"),
                &format!("10.{}.{}.{}", i / 65536, i / 256 % 256, i % 256),
            );
            // What real Services carry and we drop.
            object["metadata"]["labels"] =
                json!({"app.kubernetes.io/name": format!("app{i}"), "helm.sh/chart": "app-1.0.0"});
            object["metadata"]["managedFields"] = json!([{"manager": "helm", "operation": "Update",
                "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:ports": {}, "f:selector": {}}}}]);
            api.apply("", "services", object);
        }
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = api.write_kubeconfig(dir.path());
        let http = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let http_addr = http.local_addr().unwrap();
        drop(http);
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_k8s-gateway"))
            .args([
                "serve",
                "--domain",
                "home.example",
                "--listen",
                "127.0.0.1:0",
            ])
            .arg("--http-listen")
            .arg(http_addr.to_string())
            .args(["--debug-listen", "off"])
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let start = std::time::Instant::now();
        loop {
            let ready = reqwest_like_get(http_addr, "/readyz").await == Some(200);
            if ready {
                break;
            }
            assert!(
                start.elapsed() < std::time::Duration::from_secs(120),
                "not ready"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
        let rss = status
            .lines()
            .find(|l| l.starts_with("VmRSS"))
            .unwrap()
            .to_string();
        println!(
            "{count} Services: {rss} (ready after {:?})",
            start.elapsed()
        );
        child.kill().unwrap();
        child.wait().unwrap();
    }
}

/// The status code of a plain GET, or None when nothing answers.
async fn reqwest_like_get(addr: std::net::SocketAddr, path: &str) -> Option<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.ok()?;
    String::from_utf8_lossy(&raw)
        .split(' ')
        .nth(1)?
        .parse()
        .ok()
}

#[tokio::test]
async fn explain_reads_the_cluster() {
    let api = FakeApi::start().await;
    api.serve_all();
    api.apply(
        "",
        "services",
        service("web", "apps", "web.home.example", "192.168.10.60"),
    );
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = api.write_kubeconfig(dir.path());
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_k8s-gateway"))
            .args(["explain", "web.home.example", "--domain", "home.example"])
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(["--output", "json"])
            .env_remove("RUST_LOG")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["records"][0]["data"], "192.168.10.60");
    assert_eq!(json["records"][0]["objects"][0], "Service apps/web");
}
