//! What the fuzz targets share: a fixed zone with every kind of record and edge, and the
//! properties every response must have.

use std::net::IpAddr;

use hickory_proto::op::Message;
use hickory_proto::rr::Name;
use k8s_gateway::dns::response::{MAX_UDP_PAYLOAD, Transport};
use k8s_gateway::zone::{Entry, EntryName, Kind, ObjectRef, RecordData, Settings, Zone, build};

fn name(text: &str) -> Name {
    Name::from_ascii(text).expect("a valid fixed name")
}

fn entry(host: &str, data: RecordData, kind: Kind) -> Entry {
    Entry {
        name: EntryName::Absolute(name(host)),
        data,
        ttl: None,
        kind,
        object: ObjectRef::new(kind.as_str(), "fuzz", host),
    }
}

fn ip(text: &str) -> RecordData {
    RecordData::Address(text.parse::<IpAddr>().expect("a valid fixed address"))
}

fn cname(target: &str) -> RecordData {
    RecordData::Cname(name(target))
}

/// Two nested domains and two reverse zones; A, AAAA, CNAME, TXT, PTR, NS with glue;
/// wildcards, an empty non-terminal, CNAME chains that end in data, in no data, at a
/// missing name, outside the domain, and in loops (one through a wildcard); a name with
/// more addresses than fit in 512 bytes; a long TXT.
pub fn fixed_zone() -> Zone {
    let mut entries = vec![
        entry("web.home.example.", ip("192.168.1.10"), Kind::Service),
        entry("web.home.example.", ip("192.168.1.11"), Kind::Ingress),
        entry("web.home.example.", ip("fd00::10"), Kind::Service),
        entry(
            "dns1.kube-system.home.example.",
            ip("192.168.1.53"),
            Kind::Service,
        ),
        entry(
            "dns2.kube-system.home.example.",
            ip("fd00::53"),
            Kind::Service,
        ),
        entry("*.apps.home.example.", ip("192.168.1.20"), Kind::HttpRoute),
        entry(
            "real.apps.home.example.",
            ip("192.168.1.21"),
            Kind::HttpRoute,
        ),
        entry("x.y.home.example.", ip("192.168.1.30"), Kind::GrpcRoute),
        entry(
            "alias.home.example.",
            cname("chain1.home.example."),
            Kind::DnsEndpoint,
        ),
        entry(
            "chain1.home.example.",
            cname("chain2.home.example."),
            Kind::DnsEndpoint,
        ),
        entry(
            "chain2.home.example.",
            cname("web.home.example."),
            Kind::DnsEndpoint,
        ),
        entry(
            "to-gone.home.example.",
            cname("gone.home.example."),
            Kind::DnsEndpoint,
        ),
        entry(
            "to-ent.home.example.",
            cname("y.home.example."),
            Kind::DnsEndpoint,
        ),
        entry(
            "to-wild.home.example.",
            cname("q.apps.home.example."),
            Kind::DnsEndpoint,
        ),
        entry(
            "out.home.example.",
            cname("lb.cloud.example."),
            Kind::Ingress,
        ),
        entry(
            "loop1.home.example.",
            cname("loop2.home.example."),
            Kind::DnsEndpoint,
        ),
        entry(
            "loop2.home.example.",
            cname("loop1.home.example."),
            Kind::DnsEndpoint,
        ),
        entry(
            "*.wl.home.example.",
            cname("z.wl.home.example."),
            Kind::DnsEndpoint,
        ),
        entry("nas.lab.home.example.", ip("192.168.2.5"), Kind::TlsRoute),
        entry(
            "to-lab.home.example.",
            cname("nas.lab.home.example."),
            Kind::VirtualService,
        ),
        entry(
            "txt.home.example.",
            RecordData::Txt(format!("v=spf1 \"quoted\" \\ {}", "x".repeat(600))),
            Kind::DnsEndpoint,
        ),
    ];
    for i in 1..=40 {
        entries.push(entry(
            "big.home.example.",
            ip(&format!("10.9.0.{i}")),
            Kind::Service,
        ));
    }
    let mut settings =
        Settings::with_defaults(vec![name("home.example."), name("lab.home.example.")]);
    settings.secondary = Some(name("dns2.kube-system"));
    settings.reverse_zones = vec![
        "192.168.1.0/24".parse().expect("a valid range"),
        "fd00::/16".parse().expect("a valid range"),
    ];
    build(entries, &settings, None, 1)
}

/// The UDP size limit in force for `request`: 512 without EDNS, else the client's
/// payload between 512 and 1232.
fn udp_limit(request: &[u8]) -> usize {
    let payload = Message::from_vec(request)
        .ok()
        .and_then(|m| m.edns.map(|e| e.max_payload()))
        .map_or(512, |p| p.clamp(512, MAX_UDP_PAYLOAD));
    usize::from(payload)
}

/// The end of the question's name in `request` when it is written without compression.
fn plain_name_end(request: &[u8]) -> Option<usize> {
    let mut at = 12;
    loop {
        let len = usize::from(*request.get(at)?);
        if len == 0 {
            return Some(at + 1);
        }
        if len > 63 {
            return None; // a pointer or a reserved label type
        }
        at += 1 + len;
    }
}

/// Asserts what every response to `request` must be: it parses; same ID; QR set; RA
/// never set; the question echoed byte for byte when one came back; within the UDP
/// limit in force.
pub fn check_response(request: &[u8], transport: Transport, response: &[u8]) {
    if response.is_empty() {
        return; // nothing is sent
    }
    let message = Message::from_vec(response)
        .unwrap_or_else(|e| panic!("unparsable response {response:?} to {request:?}: {e}"));
    assert_eq!(response[..2], request[..2], "same ID");
    assert!(response[2] & 0x80 != 0, "QR set");
    assert!(response[3] & 0x80 == 0, "RA never set");
    if message.queries.len() == 1 {
        match plain_name_end(request) {
            Some(end) if request.len() >= end + 4 => {
                assert_eq!(
                    response[12..end + 4],
                    request[12..end + 4],
                    "question echoed"
                );
            }
            _ => {
                let asked = Message::from_vec(request).expect("a question was read");
                assert_eq!(
                    asked.queries[0].name().to_ascii(),
                    message.queries[0].name().to_ascii(),
                    "question echoed"
                );
            }
        }
    }
    match transport {
        Transport::Udp => assert!(
            response.len() <= udp_limit(request),
            "{} bytes over UDP, limit {}",
            response.len(),
            udp_limit(request)
        ),
        Transport::Tcp => assert!(response.len() <= usize::from(u16::MAX)),
    }
}
