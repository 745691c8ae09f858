//! Reverse zones: `dig -x` gets the PTRs of served addresses (one per name, in
//! precedence then name order), NXDOMAIN for an unassigned address of the range, REFUSED
//! outside it, and Knot loaded with `render`'s zone files answers the same.

use std::process::Command;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use crate::fixtures::lb_service;
use crate::peers::{assert_answers_like_knot, dig, knot_serving_rendered, split_rendered};
use crate::support::{TestServer, Transport, ask, have};

const RANGES: [&str; 4] = [
    "--reverse-zone",
    "192.168.10.0/24",
    "--reverse-zone",
    "fd00:10::/32",
];

/// A shared address (two Services behind one IP, as Cilium's sharing key allows), a
/// single one, an IPv6 one, a wildcard and an address outside the ranges.
fn cluster() -> String {
    [
        lb_service("web", "apps", Some("web.home.example"), &["192.168.10.40"]),
        lb_service(
            "blog",
            "apps",
            Some("blog.home.example"),
            &["192.168.10.40"],
        ),
        lb_service("nas", "home", Some("nas.home.example"), &["192.168.10.41"]),
        lb_service("v6", "apps", Some("v6.home.example"), &["fd00:10::5"]),
        lb_service(
            "wild",
            "apps",
            Some("*.apps.home.example"),
            &["192.168.10.50"],
        ),
        lb_service("far", "apps", Some("far.home.example"), &["10.1.2.3"]),
    ]
    .concat()
}

fn ptrs(message: &hickory_proto::op::Message) -> Vec<String> {
    message.answers.iter().map(|r| r.data.to_string()).collect()
}

#[tokio::test]
async fn ptr_answers_over_udp_and_tcp() {
    let server = TestServer::start(&cluster(), &RANGES).await;
    for transport in [Transport::Udp, Transport::Tcp] {
        // (address's reverse name, rcode, PTR targets in order)
        let cases: [(&str, ResponseCode, &[&str]); 5] = [
            // Two names for one address: both, by name (same kind).
            (
                "40.10.168.192.in-addr.arpa",
                ResponseCode::NoError,
                &["blog.home.example.", "web.home.example."],
            ),
            (
                "41.10.168.192.in-addr.arpa",
                ResponseCode::NoError,
                &["nas.home.example."],
            ),
            // The wildcard's address and an unassigned one: no such name.
            ("50.10.168.192.in-addr.arpa", ResponseCode::NXDomain, &[]),
            ("99.10.168.192.in-addr.arpa", ResponseCode::NXDomain, &[]),
            // Outside every reverse zone: not ours.
            ("3.2.1.10.in-addr.arpa", ResponseCode::Refused, &[]),
        ];
        for (name, rcode, targets) in cases {
            let answer = ask(server.addr, name, RecordType::PTR, transport).await;
            assert_eq!(answer.metadata.response_code, rcode, "{transport:?} {name}");
            assert_eq!(ptrs(&answer), targets, "{transport:?} {name}");
            assert_eq!(
                answer.metadata.authoritative,
                rcode != ResponseCode::Refused,
                "{transport:?} {name}: AA"
            );
        }
    }
    // Counted under the reverse zone, as CoreDNS labels requests by zone.
    let metrics = crate::support::scrape(&server);
    let counted = crate::support::sample(
        &metrics,
        "coredns_dns_requests_total",
        &[("zone", "10.168.192.in-addr.arpa."), ("type", "PTR")],
    );
    assert_eq!(counted, 8.0, "{metrics}");
    server.stop().await;
}

#[tokio::test]
async fn dig_x_finds_the_names() {
    if !have("dig") {
        return;
    }
    let server = TestServer::start(&cluster(), &RANGES).await;
    let addr = server.addr;
    let [shared, v6, unassigned] = tokio::task::spawn_blocking(move || {
        [
            dig("dig", addr, &["-x", "192.168.10.40"]),
            dig("dig", addr, &["+tcp", "-x", "fd00:10::5"]),
            dig("dig", addr, &["-x", "192.168.10.99"]),
        ]
    })
    .await
    .unwrap()
    .map(|out| out.split_whitespace().collect::<Vec<_>>().join(" "));
    assert!(shared.contains("status: NOERROR"), "{shared}");
    assert!(shared.contains("flags: qr aa rd;"), "{shared}");
    let blog = shared.find("PTR blog.home.example.").expect("blog PTR");
    let web = shared.find("PTR web.home.example.").expect("web PTR");
    assert!(blog < web, "name order: {shared}");
    assert!(v6.contains("PTR v6.home.example."), "{v6}");
    assert!(unassigned.contains("status: NXDOMAIN"), "{unassigned}");
    assert!(unassigned.contains("flags: qr aa rd;"), "{unassigned}");
    assert!(
        unassigned.contains("10.168.192.in-addr.arpa. 60 IN SOA"),
        "the reverse zone's SOA: {unassigned}"
    );
    server.stop().await;
}

#[tokio::test]
async fn knot_serving_the_rendered_reverse_zones_answers_alike() {
    if !have("knotd") {
        return;
    }
    let server = TestServer::start(&cluster(), &RANGES).await;
    let manifests = server.dir.path().to_string_lossy().to_string();
    let mut args = vec![
        "render",
        "--domain",
        "home.example",
        "--manifests",
        &manifests,
    ];
    args.extend(RANGES);
    let out = Command::new(env!("CARGO_BIN_EXE_k8s-gateway"))
        .args(&args)
        .output()
        .expect("run render");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // NB: `render` builds its zone a moment later than the server, so its serial (the
    // build time) may differ by a second: give Knot the server's serial.
    let ours = match &server.ask("home.example", RecordType::SOA).await.answers[0].data {
        hickory_proto::rr::RData::SOA(soa) => soa.serial,
        other => panic!("no SOA: {other:?}"),
    };
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let theirs = text
        .lines()
        .find_map(|l| l.split('\t').nth(4)?.split(' ').nth(2))
        .expect("a serial in the first SOA");
    let text = text.replace(&format!(" {theirs} "), &format!(" {ours} "));
    let rendered = split_rendered(&text);
    let origins: Vec<&str> = rendered.iter().map(|(o, _)| o.as_str()).collect();
    assert_eq!(
        origins,
        [
            "0.1.0.0.0.0.d.f.ip6.arpa.",
            "10.168.192.in-addr.arpa.",
            "home.example."
        ],
        "render prints the reverse zones too"
    );
    let dir = tempfile::tempdir().unwrap();
    let (_peer, knot) = knot_serving_rendered(dir.path(), &rendered).await;
    let v6 = hickory_proto::rr::Name::from("fd00:10::5".parse::<std::net::IpAddr>().unwrap());
    let v6 = v6.to_string();
    let questions = [
        ("40.10.168.192.in-addr.arpa", RecordType::PTR),
        ("41.10.168.192.in-addr.arpa", RecordType::PTR),
        ("41.10.168.192.in-addr.arpa", RecordType::A),
        ("99.10.168.192.in-addr.arpa", RecordType::PTR),
        ("10.168.192.in-addr.arpa", RecordType::SOA),
        ("10.168.192.in-addr.arpa", RecordType::NS),
        (v6.as_str(), RecordType::PTR),
        // An empty non-terminal on the way to it: NODATA.
        ("0.0.1.0.0.0.0.d.f.ip6.arpa", RecordType::PTR),
    ];
    assert_answers_like_knot(server.addr, knot, &questions).await;
    server.stop().await;
}
