//! The answers a resolver gets, over UDP and over TCP, for every rule of the zone.

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use crate::fixtures::lb_service;
use crate::support::{TestServer, Transport, addresses, answers, ask, rcode};

fn cluster() -> String {
    [
        lb_service("web", "apps", Some("web.home.example"), &["192.168.1.10"]),
        lb_service("web-b", "apps", Some("web.home.example"), &["192.168.1.11", "192.168.1.10"]),
        lb_service("v6", "apps", Some("v6.home.example"), &["fd00::10"]),
        lb_service("multi", "apps", Some("a.home.example,b.home.example"), &["192.168.1.20"]),
        lb_service("plain", "media", None, &["192.168.1.30"]),
        lb_service("deep", "apps", Some("x.y.home.example"), &["192.168.1.40"]),
        lb_service("dns1", "kube-system", None, &["192.168.1.53"]),
        lb_service("broken", "apps", Some("broken.home.example"), &["300.1.1.1"]),
        // Not a LoadBalancer: publishes nothing.
        "---\napiVersion: v1\nkind: Service\nmetadata: {name: internal, namespace: apps}\nspec: {type: ClusterIP, clusterIP: 10.43.0.10}\n".into(),
    ]
    .concat()
}

#[tokio::test]
async fn answers_follow_the_rules_over_udp_and_tcp() {
    let server = TestServer::start(&cluster(), &[]).await;
    // (name, type, rcode, addresses in the answer, whether the SOA is in authority)
    let cases: &[(&str, RecordType, ResponseCode, &[&str], bool)] = &[
        // Several Services on one name: the union, without duplicates.
        (
            "web.home.example",
            RecordType::A,
            ResponseCode::NoError,
            &["192.168.1.10", "192.168.1.11"],
            false,
        ),
        // IPv6 load-balancer address: AAAA.
        (
            "v6.home.example",
            RecordType::AAAA,
            ResponseCode::NoError,
            &["fd00::10"],
            false,
        ),
        // A comma-separated annotation publishes every name.
        (
            "b.home.example",
            RecordType::A,
            ResponseCode::NoError,
            &["192.168.1.20"],
            false,
        ),
        // No annotation: <name>.<namespace>.<domain>.
        (
            "plain.media.home.example",
            RecordType::A,
            ResponseCode::NoError,
            &["192.168.1.30"],
            false,
        ),
        // Names are case-insensitive.
        (
            "WEB.Home.Example",
            RecordType::A,
            ResponseCode::NoError,
            &["192.168.1.10", "192.168.1.11"],
            false,
        ),
        // Records of another type only: NODATA with the SOA.
        (
            "v6.home.example",
            RecordType::A,
            ResponseCode::NoError,
            &[],
            true,
        ),
        // Empty non-terminal: NODATA, not NXDOMAIN.
        (
            "y.home.example",
            RecordType::A,
            ResponseCode::NoError,
            &[],
            true,
        ),
        // Missing name: NXDOMAIN with the SOA.
        (
            "missing.home.example",
            RecordType::A,
            ResponseCode::NXDomain,
            &[],
            true,
        ),
        // A ClusterIP Service publishes nothing.
        (
            "internal.apps.home.example",
            RecordType::A,
            ResponseCode::NXDomain,
            &[],
            true,
        ),
        // The malformed object is skipped; the rest serves.
        (
            "broken.home.example",
            RecordType::A,
            ResponseCode::NXDomain,
            &[],
            true,
        ),
    ];
    for transport in [Transport::Udp, Transport::Tcp] {
        for (name, rtype, expected_rcode, expected, soa) in cases {
            let answer = ask(server.addr, name, *rtype, transport).await;
            let context = format!("{transport:?} {name} {rtype}");
            assert_eq!(rcode(&answer), *expected_rcode, "{context}");
            assert!(answer.metadata.authoritative, "{context}: AA");
            assert!(!answer.metadata.recursion_available, "{context}: RA");
            assert_eq!(addresses(&answer), *expected, "{context}");
            let has_soa = answer
                .authorities
                .iter()
                .any(|r| r.record_type() == RecordType::SOA);
            assert_eq!(has_soa, *soa, "{context}: SOA in authority");
            // The question comes back in the client's case.
            assert_eq!(
                answer.queries[0].name().to_string(),
                format!("{name}."),
                "{context}"
            );
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn apex_answers_soa_and_ns_with_glue() {
    let server = TestServer::start(&cluster(), &["--secondary", "dns2.kube-system"]).await;
    let soa = server.ask("home.example", RecordType::SOA).await;
    assert_eq!(rcode(&soa), ResponseCode::NoError);
    let soa_line = &answers(&soa)[0];
    assert!(
        soa_line.starts_with(
            "home.example. SOA dns1.kube-system.home.example. hostmaster.home.example. "
        ),
        "{soa_line}"
    );

    let ns = server.ask("home.example", RecordType::NS).await;
    assert_eq!(
        answers(&ns),
        [
            "home.example. NS dns1.kube-system.home.example.",
            "home.example. NS dns2.kube-system.home.example."
        ]
    );
    let glue: Vec<String> = ns
        .additionals
        .iter()
        .map(|r| format!("{} {}", r.name, r.data))
        .collect();
    assert_eq!(glue, ["dns1.kube-system.home.example. 192.168.1.53"]);
    server.stop().await;
}

#[tokio::test]
async fn names_outside_the_domains_are_refused_not_resolved() {
    let server = TestServer::start(&cluster(), &[]).await;
    for name in [
        "example.com",
        "home.example.com",
        "com",
        "web.home.example.evil",
    ] {
        let answer = server.ask(name, RecordType::A).await;
        assert_eq!(rcode(&answer), ResponseCode::Refused, "{name}");
        assert!(
            !answer.metadata.authoritative,
            "{name}: no AA outside our domains"
        );
        assert!(answer.answers.is_empty(), "{name}");
    }
    server.stop().await;
}

#[tokio::test]
async fn the_most_specific_of_nested_domains_answers() {
    let manifests = lb_service(
        "nas",
        "storage",
        Some("nas.lab.home.example"),
        &["192.168.2.5"],
    );
    let server = TestServer::start(
        &manifests,
        &["--domain", "home.example", "--domain", "lab.home.example"],
    )
    .await;
    let answer = server.ask("nas.lab.home.example", RecordType::A).await;
    assert_eq!(addresses(&answer), ["192.168.2.5"]);
    let missing = server.ask("gone.lab.home.example", RecordType::A).await;
    let soa_owner = missing.authorities[0].name.to_string();
    assert_eq!(
        soa_owner, "lab.home.example.",
        "the nested domain's own SOA"
    );
    server.stop().await;
}

#[tokio::test]
async fn the_ttl_option_sets_answer_and_negative_ttls() {
    let server = TestServer::start(&cluster(), &["--ttl", "300"]).await;
    let answer = server.ask("web.home.example", RecordType::A).await;
    assert!(answer.answers.iter().all(|r| r.ttl == 300));
    let negative = server.ask("missing.home.example", RecordType::A).await;
    assert_eq!(negative.authorities[0].ttl, 300);
    server.stop().await;
}

#[tokio::test]
async fn several_listen_addresses_serve_ipv4_and_ipv6() {
    if std::net::UdpSocket::bind("[::1]:0").is_err() {
        eprintln!("SKIPPED: no IPv6 loopback on this machine");
        return;
    }
    let server = TestServer::start(&cluster(), &["--listen", "[::1]:0"]).await;
    let addresses_bound = server.server.as_ref().unwrap().dns_addresses.clone();
    assert_eq!(addresses_bound.len(), 2, "{addresses_bound:?}");
    assert!(addresses_bound[1].is_ipv6());
    for addr in addresses_bound {
        for transport in [Transport::Udp, Transport::Tcp] {
            let answer = ask(addr, "v6.home.example", RecordType::AAAA, transport).await;
            assert_eq!(addresses(&answer), ["fd00::10"], "{addr} {transport:?}");
        }
    }
    server.stop().await;
}
