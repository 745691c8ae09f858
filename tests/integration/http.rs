//! The HTTP endpoint: health, readiness, metrics that move with real queries, the zone
//! file and `/explain`.

use hickory_proto::rr::RecordType;

use crate::fixtures::lb_service;
use crate::support::{TestServer, Transport, ask, debug_get, have, http_get, sample};

/// A metric family, label pairs its sample must have, and how much it must have grown.
type Expectation<'a> = (&'a str, Vec<(&'a str, &'a str)>, f64);

fn cluster() -> String {
    [
        lb_service("web", "apps", Some("web.home.example"), &["192.168.1.10"]),
        lb_service("web-v6", "apps", Some("web.home.example"), &["fd00::10"]),
        lb_service("broken", "apps", Some("bad.home.example"), &["999.1.1.1"]),
    ]
    .concat()
}

#[tokio::test]
async fn health_and_readiness() {
    let server = TestServer::start(&cluster(), &[]).await;
    assert_eq!(http_get(&server, "/healthz").await.0, 200);
    let (status, body) = http_get(&server, "/readyz").await;
    assert_eq!(status, 200);
    assert!(body.starts_with("ready: serial "), "{body}");
    assert_eq!(http_get(&server, "/nope").await.0, 404);
    server.stop().await;
}

#[tokio::test]
async fn request_metrics_count_real_queries() {
    let server = TestServer::start(&cluster(), &[]).await;
    let before = http_get(&server, "/metrics").await.1;
    // (name, type, transport, times)
    let queries = [
        ("web.home.example", RecordType::A, Transport::Udp, 3),
        ("web.home.example", RecordType::AAAA, Transport::Tcp, 2),
        ("missing.home.example", RecordType::A, Transport::Udp, 1),
        ("example.com", RecordType::A, Transport::Udp, 1),
    ];
    for (name, rtype, transport, times) in queries {
        for _ in 0..times {
            ask(server.addr, name, rtype, transport).await;
        }
    }
    let (status, after) = http_get(&server, "/metrics").await;
    assert_eq!(status, 200);
    let moved = |family: &str, labels: &[(&str, &str)]| {
        sample(&after, family, labels) - sample(&before, family, labels)
    };
    let zone = ("zone", "home.example.");
    // (family, labels, expected increase)
    let expected: &[Expectation] = &[
        (
            "coredns_dns_requests_total",
            vec![zone, ("proto", "udp"), ("type", "A"), ("family", "1")],
            4.0,
        ),
        (
            "coredns_dns_requests_total",
            vec![zone, ("proto", "tcp"), ("type", "AAAA")],
            2.0,
        ),
        (
            "coredns_dns_requests_total",
            vec![("zone", "."), ("type", "A")],
            1.0,
        ),
        (
            "coredns_dns_responses_total",
            vec![zone, ("rcode", "NOERROR")],
            5.0,
        ),
        (
            "coredns_dns_responses_total",
            vec![zone, ("rcode", "NXDOMAIN")],
            1.0,
        ),
        (
            "coredns_dns_responses_total",
            vec![("zone", "."), ("rcode", "REFUSED")],
            1.0,
        ),
        (
            "coredns_dns_request_duration_seconds_count",
            vec![zone, ("type", "A")],
            4.0,
        ),
        (
            "coredns_dns_response_size_bytes_count",
            vec![zone, ("proto", "tcp")],
            2.0,
        ),
    ];
    for (family, labels, increase) in expected {
        assert_eq!(
            moved(family, labels),
            *increase,
            "{family} {labels:?}\n{after}"
        );
    }
    assert_eq!(sample(&after, "coredns_build_info", &[]), 1.0, "{after}");
    assert_eq!(
        sample(&after, "k8s_gateway_zone_names", &[zone]),
        3.0,
        "web, its SRV _http._tcp.web (named port) and the apex: {after}"
    );
    assert_eq!(
        sample(
            &after,
            "k8s_gateway_zone_records",
            &[zone, ("kind", "Service")]
        ),
        3.0, // two addresses and the SRV of the named port
        "{after}"
    );
    assert_eq!(
        sample(
            &after,
            "k8s_gateway_skipped_objects",
            &[("kind", "Service"), ("reason", "invalid_field")]
        ),
        1.0
    );
    assert!(
        sample(&after, "k8s_gateway_zone_builds_total", &[]) >= 1.0,
        "{after}"
    );
    server.stop().await;
}

#[tokio::test]
async fn metrics_pass_promtool() {
    if !have("promtool") {
        return;
    }
    let server = TestServer::start(&cluster(), &[]).await;
    ask(
        server.addr,
        "web.home.example",
        RecordType::A,
        Transport::Udp,
    )
    .await;
    let text = http_get(&server, "/metrics").await.1;
    crate::support::promtool_check_metrics(&text);
    server.stop().await;
}

#[tokio::test]
async fn zone_and_explain_show_what_the_server_believes() {
    let server = TestServer::start(&cluster(), &[]).await;
    let (status, zone) = debug_get(&server, "/zone").await;
    assert_eq!(status, 200);
    assert!(
        zone.contains("web.home.example.\t60\tIN\tA\t192.168.1.10\t; Service apps/web\n"),
        "{zone}"
    );
    assert!(
        zone.contains("web.home.example.\t60\tIN\tAAAA\tfd00::10\t; Service apps/web-v6\n"),
        "{zone}"
    );

    let (status, body) = debug_get(&server, "/explain?name=WEB.home.example").await;
    assert_eq!(status, 200);
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["status"], "NOERROR");
    assert_eq!(json["domain"], "home.example.");
    assert_eq!(json["winner"], "Service");
    let records: Vec<String> = json["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{} {} {}",
                r["type"].as_str().unwrap(),
                r["data"].as_str().unwrap(),
                r["objects"][0].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        records,
        [
            "A 192.168.1.10 Service apps/web",
            "AAAA fd00::10 Service apps/web-v6"
        ]
    );

    let json: serde_json::Value =
        serde_json::from_str(&debug_get(&server, "/explain?name=bad.home.example").await.1)
            .unwrap();
    assert_eq!(json["status"], "NXDOMAIN");
    assert_eq!(
        json["skipped"][0]["object"], "Service apps/broken",
        "{json}"
    );
    assert_eq!(json["skipped"][0]["reason"], "invalid_field");

    let json: serde_json::Value =
        serde_json::from_str(&debug_get(&server, "/explain?name=example.com").await.1).unwrap();
    assert_eq!(json["status"], "REFUSED");
    assert_eq!(debug_get(&server, "/explain").await.0, 400);
    server.stop().await;
}

#[tokio::test]
async fn debug_views_are_only_on_the_debug_listener() {
    let server = TestServer::start(&cluster(), &[]).await;
    // The zone is not handed to whoever reaches the metrics port, and the debug port
    // serves nothing for Prometheus or the kubelet.
    for path in ["/", "/zone", "/explain?name=web.home.example"] {
        assert_eq!(
            http_get(&server, path).await.0,
            404,
            "{path} on --http-listen"
        );
        assert_eq!(
            debug_get(&server, path).await.0,
            200,
            "{path} on --debug-listen"
        );
    }
    for path in ["/metrics", "/healthz", "/readyz"] {
        assert_eq!(
            http_get(&server, path).await.0,
            200,
            "{path} on --http-listen"
        );
        assert_eq!(
            debug_get(&server, path).await.0,
            404,
            "{path} on --debug-listen"
        );
    }
    server.stop().await;

    let server = TestServer::start(&cluster(), &["--debug-listen", "off"]).await;
    assert_eq!(server.server.as_ref().unwrap().debug_address, None);
    assert_eq!(http_get(&server, "/zone").await.0, 404);
    server.stop().await;
}
