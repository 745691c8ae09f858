//! Real DNS software against our server: `dig` and `kdig` as clients, Knot DNS as the
//! reference authoritative server for the same zone, and dnsmasq as the Pi-hole stand-in
//! forwarding our domain to us.

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;

use crate::fixtures::lb_service;
use crate::support::{DEADLINE, TestServer, Transport, ask, have};

/// A free UDP port on 127.0.0.1 (also free for TCP in practice) for a peer to bind.
pub fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A peer process, stopped when dropped.
pub struct Peer(pub Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a peer on a free port and waits until it answers an SOA query for
/// home.example there. The port is free when chosen but may be taken by another test
/// before the peer binds it, so a peer that exits early is started again on another
/// port (a few times, then the test fails with the peer's log).
pub async fn start_answering(dir: &Path, spawn: impl Fn(u16, Stdio) -> Peer) -> (Peer, SocketAddr) {
    const ATTEMPTS: usize = 5;
    let path = dir.join("peer.log");
    let log = || std::fs::read_to_string(&path).unwrap_or_default();
    for _ in 0..ATTEMPTS {
        let port = free_port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let sink = Stdio::from(std::fs::File::create(&path).unwrap());
        let mut peer = spawn(port, sink);
        if answers_or_exits(&mut peer, addr, "home.example", log).await {
            return (peer, addr);
        }
    }
    panic!("the peer exited {ATTEMPTS} times: {}", log());
}

/// Waits until `peer` answers an SOA query for `zone` at `addr` (any answer: a secondary
/// that has no zone yet answers too): true; false when it exited first, as a peer does
/// when another test took its port (the caller starts it again on another). After
/// [`DEADLINE`] the test fails with the peer's `log`.
pub async fn answers_or_exits(
    peer: &mut Peer,
    addr: SocketAddr,
    zone: &str,
    log: impl Fn() -> String,
) -> bool {
    let start = Instant::now();
    let request = crate::support::query(zone, RecordType::SOA)
        .to_vec()
        .unwrap();
    loop {
        if crate::support::exchange(addr, &request, Transport::Udp)
            .await
            .is_some()
        {
            return true;
        }
        if let Ok(Some(_)) = peer.0.try_wait() {
            return false;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "{addr} never answered: {}",
            log()
        );
    }
}

/// The cluster of the comparison: plain names, IPv6, a wildcard, an empty non-terminal.
pub fn cluster() -> String {
    [
        lb_service(
            "web",
            "apps",
            Some("web.home.example"),
            &["192.168.1.10", "192.168.1.11"],
        ),
        lb_service("v6", "apps", Some("v6.home.example"), &["fd00::10"]),
        lb_service(
            "wild",
            "apps",
            Some("*.apps.home.example"),
            &["192.168.1.20"],
        ),
        lb_service("deep", "apps", Some("x.y.home.example"), &["192.168.1.30"]),
        lb_service("dns1", "kube-system", None, &["192.168.1.53"]),
    ]
    .concat()
}

/// The same zone in RFC 1035 form, as Knot loads it.
fn cluster_zone_file(serial: u32) -> String {
    format!(
        "$ORIGIN home.example.\n$TTL 60\n\
         @ SOA dns1.kube-system.home.example. hostmaster.home.example. {serial} 3600 600 1209600 60\n\
         @ NS dns1.kube-system.home.example.\n\
         dns1.kube-system A 192.168.1.53\n\
         web A 192.168.1.10\nweb A 192.168.1.11\n\
         v6 AAAA fd00::10\n\
         *.apps A 192.168.1.20\n\
         x.y A 192.168.1.30\n"
    )
}

pub fn start_knot(dir: &Path, port: u16, zone: &str, log: Stdio) -> Peer {
    start_knot_zones(dir, port, &[KnotZone::File("home.example.", zone)], log)
}

/// A zone Knot serves: loaded from zone-file text, or transferred from a primary.
pub enum KnotZone<'a> {
    /// `(origin, zone file text)`.
    File(&'a str, &'a str),
    /// `(origin, primary)`: a secondary that takes NOTIFY from the primary's address.
    Secondary(&'a str, SocketAddr),
    /// `(origin, primaries)`: the same, from the first primary that answers (the
    /// replicas behind one Service, as a secondary sees them when its replica goes away).
    SecondaryOf(&'a str, &'a [SocketAddr]),
}

/// Starts Knot on 127.0.0.1:`port` with `zones`, logging warnings to `log`.
pub fn start_knot_zones(dir: &Path, port: u16, zones: &[KnotZone<'_>], log: Stdio) -> Peer {
    start_knot_keyed(dir, port, zones, None, log)
}

/// A TSIG key as Knot's configuration names it: `(id, algorithm, base64 secret)`.
pub type KnotKey<'a> = (&'a str, &'a str, &'a str);

/// [`start_knot_zones`], with transfers and NOTIFY from the primary signed with `key`.
pub fn start_knot_keyed(
    dir: &Path,
    port: u16,
    zones: &[KnotZone<'_>],
    key: Option<KnotKey<'_>>,
    log: Stdio,
) -> Peer {
    std::fs::create_dir_all(dir.join("db")).unwrap();
    let mut conf = format!(
        "server:\n  rundir: \"{d}\"\n  listen: 127.0.0.1@{port}\n  udp-workers: 1\n  tcp-workers: 1\n  background-workers: 1\n\
         database:\n  storage: \"{d}/db\"\nlog:\n  - target: stderr\n    any: warning\n",
        d = dir.display()
    );
    let primaries: &[SocketAddr] = zones
        .iter()
        .find_map(|z| match z {
            KnotZone::Secondary(_, primary) => Some(std::slice::from_ref(primary)),
            KnotZone::SecondaryOf(_, primaries) => Some(*primaries),
            KnotZone::File(..) => None,
        })
        .unwrap_or_default();
    if let Some(first) = primaries.first() {
        let addresses: Vec<String> = primaries
            .iter()
            .map(|p| format!("{}@{}", p.ip(), p.port()))
            .collect();
        let key_line = match key {
            Some((id, algorithm, secret)) => {
                conf.push_str(&format!(
                    "key:\n  - id: {id}\n    algorithm: {algorithm}\n    secret: {secret}\n"
                ));
                format!("    key: {id}\n")
            }
            None => String::new(),
        };
        conf.push_str(&format!(
            "remote:\n  - id: primary\n    address: [{addresses}]\n{key_line}\
             acl:\n  - id: notify_from_primary\n    address: {ip}\n{key_line}    action: notify\n",
            addresses = addresses.join(", "),
            ip = first.ip(),
        ));
    }
    conf.push_str("zone:\n");
    for zone in zones {
        match zone {
            KnotZone::File(origin, text) => {
                let file = dir.join(format!("{origin}zone"));
                std::fs::write(&file, text).unwrap();
                conf.push_str(&format!(
                    "  - domain: {origin}\n    storage: \"{d}\"\n    file: \"{f}\"\n",
                    d = dir.display(),
                    f = file.display()
                ));
            }
            KnotZone::Secondary(origin, _) | KnotZone::SecondaryOf(origin, _) => {
                // Kept in memory only (no zone file written), so each test starts empty.
                conf.push_str(&format!(
                    "  - domain: {origin}\n    storage: \"{d}\"\n    master: primary\n    acl: notify_from_primary\n    zonefile-sync: -1\n    zonefile-load: none\n    journal-content: none\n",
                    d = dir.display()
                ));
            }
        }
    }
    std::fs::write(dir.join("knot.conf"), conf).unwrap();
    Peer(
        Command::new("knotd")
            .args(["-c", &dir.join("knot.conf").to_string_lossy()])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start knotd"),
    )
}

/// Knot serving `render`'s zone files (as [`split_rendered`] gives them), answering on
/// the returned address until the `Peer` is dropped.
pub async fn knot_serving_rendered(
    dir: &Path,
    rendered: &[(String, String)],
) -> (Peer, SocketAddr) {
    let zones: Vec<KnotZone<'_>> = rendered
        .iter()
        .map(|(origin, text)| KnotZone::File(origin, text))
        .collect();
    start_answering(dir, |port, log| start_knot_zones(dir, port, &zones, log)).await
}

/// Asks us and Knot every question over UDP and over TCP, and asserts that they answer
/// alike (see [`summary`]).
pub async fn assert_answers_like_knot(
    ours: SocketAddr,
    knot: SocketAddr,
    questions: &[(&str, RecordType)],
) {
    for transport in [Transport::Udp, Transport::Tcp] {
        for &(name, rtype) in questions {
            let mine = summary(&ask(ours, name, rtype, transport).await);
            let reference = summary(&ask(knot, name, rtype, transport).await);
            assert_eq!(
                mine, reference,
                "{transport:?} {name} {rtype}: ours vs Knot"
            );
        }
    }
}

/// Splits `render`'s output into `(origin, zone file)` per domain.
pub fn split_rendered(text: &str) -> Vec<(String, String)> {
    text.split("$ORIGIN ")
        .filter(|part| !part.trim().is_empty())
        .map(|part| {
            let origin = part.lines().next().unwrap_or_default().trim().to_string();
            (origin, format!("$ORIGIN {part}"))
        })
        .collect()
}

/// What must match between two servers: rcode, AA, the answer records (sorted), and the
/// types in the authority section.
pub fn summary(message: &Message) -> (ResponseCode, bool, Vec<String>, Vec<RecordType>) {
    let mut answers: Vec<String> = message
        .answers
        .iter()
        .map(|r| {
            format!(
                "{} {} {} {}",
                r.name.to_lowercase(),
                r.ttl,
                r.record_type(),
                r.data
            )
        })
        .collect();
    answers.sort();
    let authority = message
        .authorities
        .iter()
        .map(|r| r.record_type())
        .collect();
    (
        message.metadata.response_code,
        message.metadata.authoritative,
        answers,
        authority,
    )
}

#[tokio::test]
async fn answers_match_knot_on_the_same_zone() {
    if !have("knotd") {
        return;
    }
    let server = TestServer::start(&cluster(), &[]).await;
    let serial = match &server.ask("home.example", RecordType::SOA).await.answers[0].data {
        hickory_proto::rr::RData::SOA(soa) => soa.serial,
        other => panic!("no SOA: {other:?}"),
    };
    let dir = tempfile::tempdir().unwrap();
    let zone = cluster_zone_file(serial);
    let (_peer, knot) = start_answering(dir.path(), |port, log| {
        start_knot(dir.path(), port, &zone, log)
    })
    .await;

    // (name, type): positive, NODATA, NXDOMAIN, ENT, wildcard and its edges, apex.
    let questions = [
        ("web.home.example", RecordType::A),
        ("WEB.home.example", RecordType::A),
        ("web.home.example", RecordType::AAAA),
        ("v6.home.example", RecordType::AAAA),
        ("v6.home.example", RecordType::A),
        ("missing.home.example", RecordType::A),
        ("y.home.example", RecordType::A),
        ("a.apps.home.example", RecordType::A),
        ("b.a.apps.home.example", RecordType::A),
        ("a.apps.home.example", RecordType::TXT),
        ("apps.home.example", RecordType::A),
        ("home.example", RecordType::SOA),
        ("home.example", RecordType::NS),
        ("dns1.kube-system.home.example", RecordType::A),
        ("kube-system.home.example", RecordType::A),
    ];
    for transport in [Transport::Udp, Transport::Tcp] {
        for (name, rtype) in questions {
            let ours = summary(&ask(server.addr, name, rtype, transport).await);
            let reference = summary(&ask(knot, name, rtype, transport).await);
            assert_eq!(
                ours, reference,
                "{transport:?} {name} {rtype}: ours vs Knot"
            );
        }
    }
    server.stop().await;
}

pub fn dig(tool: &str, server: SocketAddr, args: &[&str]) -> String {
    let out = Command::new(tool)
        .arg(format!("@{}", server.ip()))
        .args(["-p", &server.port().to_string()])
        .args(if tool == "dig" {
            ["+time=2", "+tries=1"]
        } else {
            ["+timeout=2", "+retry=0"]
        })
        .args(args)
        .output()
        .expect("run dig");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn dig_and_kdig_get_authoritative_answers_over_udp_and_tcp() {
    if !have("dig") || !have("kdig") {
        return;
    }
    let server = TestServer::start(&cluster(), &[]).await;
    let addr = server.addr;
    let outputs = tokio::task::spawn_blocking(move || {
        [
            ("dig", vec!["web.home.example", "A"]),
            ("dig", vec!["+tcp", "web.home.example", "A"]),
            ("kdig", vec!["web.home.example", "A"]),
            ("kdig", vec!["+tcp", "web.home.example", "A"]),
        ]
        .map(|(tool, args)| (tool, args.clone(), dig(tool, addr, &args)))
    })
    .await
    .unwrap();
    for (tool, args, out) in outputs {
        let lower = out.to_lowercase();
        assert!(lower.contains("status: noerror"), "{tool} {args:?}: {out}");
        assert!(
            lower.contains("flags: qr aa rd;"),
            "{tool} {args:?}: AA set, RA not: {out}"
        );
        assert!(
            out.contains("192.168.1.10") && out.contains("192.168.1.11"),
            "{tool} {args:?}: {out}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn dnsmasq_forwards_our_domain_to_us_and_nothing_else() {
    if !have("dnsmasq") {
        return;
    }
    let server = TestServer::start(&cluster(), &[]).await;
    let dir = tempfile::tempdir().unwrap();
    let conf_path = dir.path().join("dnsmasq.conf");
    let (_peer, pihole) = start_answering(dir.path(), |port, log| {
        // As Pi-hole does it: the domain goes to us, rebinding protection on but our
        // domain exempt, no other upstream (so other names get REFUSED from dnsmasq
        // itself).
        let conf = format!(
            "port={port}\nlisten-address=127.0.0.1\nbind-interfaces\nno-resolv\nno-hosts\nuser=root\n\
             stop-dns-rebind\nrebind-domain-ok=/home.example/\n\
             server=/home.example/127.0.0.1#{}\n",
            server.addr.port()
        );
        std::fs::write(&conf_path, conf).unwrap();
        Peer(
            Command::new("dnsmasq")
                .args(["-k", &format!("--conf-file={}", conf_path.display())])
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("start dnsmasq"),
        )
    })
    .await;

    let answer = ask(pihole, "web.home.example", RecordType::A, Transport::Udp).await;
    assert_eq!(
        crate::support::addresses(&answer),
        ["192.168.1.10", "192.168.1.11"]
    );
    let missing = ask(
        pihole,
        "missing.home.example",
        RecordType::A,
        Transport::Udp,
    )
    .await;
    assert_eq!(missing.metadata.response_code, ResponseCode::NXDomain);

    // Names outside the domain are never sent to us: the requests counted for them
    // (zone ".") stay at zero.
    let _ = ask(pihole, "example.com", RecordType::A, Transport::Udp).await;
    let metrics = crate::support::scrape(&server);
    assert!(metrics.contains("zone=\"home.example.\""), "{metrics}");
    assert!(
        !metrics.contains("zone=\".\""),
        "out-of-domain names reached us: {metrics}"
    );
    server.stop().await;
}

#[tokio::test]
async fn knot_loads_the_rendered_zone_and_serves_it_alike() {
    if !have("knotd") {
        return;
    }
    let server = TestServer::start(&cluster(), &[]).await;
    let (status, zone) = crate::support::debug_get(&server, "/zone").await;
    assert_eq!(status, 200);
    let dir = tempfile::tempdir().unwrap();
    let (_peer, knot) = start_answering(dir.path(), |port, log| {
        start_knot(dir.path(), port, &zone, log)
    })
    .await;
    for (name, rtype) in [
        ("web.home.example", RecordType::A),
        ("home.example", RecordType::SOA),
        ("x.apps.home.example", RecordType::A),
    ] {
        let ours = summary(&ask(server.addr, name, rtype, Transport::Udp).await);
        let reference = summary(&ask(knot, name, rtype, Transport::Udp).await);
        assert_eq!(
            ours, reference,
            "{name} {rtype}: ours vs Knot serving our /zone"
        );
    }
    server.stop().await;
}
