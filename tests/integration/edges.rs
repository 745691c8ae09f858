//! Answers at the edges, as the RFCs and Knot DNS give them: sizes at the truncation
//! limit, glue that does not fit, CNAME chains that end nowhere or loop, TSIG.

use std::net::SocketAddr;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::TSIG;
use hickory_proto::rr::rdata::tsig::{TsigAlgorithm, TsigError};
use hickory_proto::rr::{Name, Record, RecordType};

use crate::fixtures::lb_service;
use crate::support::{TestServer, Transport, exchange};

/// 17 + `.home.example`: with 29 A records the answer is exactly 512 bytes without
/// EDNS, 523 with it.
const NAME_29: &str = "a2345678901234567.home.example";
/// 6 + `.home.example`: with 74 A records the answer is exactly 1232 bytes with EDNS.
const NAME_74: &str = "abcdef.home.example";

/// The longest name there is: 255 bytes on the wire (RFC 1035 §2.3.4).
fn longest_name() -> String {
    format!(
        "{}.{}.{}.{}.home.example",
        "a".repeat(63),
        "b".repeat(63),
        "c".repeat(63),
        "d".repeat(48)
    )
}

/// One DNSEndpoint endpoint in flow style.
fn endpoint(name: &str, rtype: &str, targets: &[String]) -> String {
    format!(
        "  - {{dnsName: \"{name}\", recordType: {rtype}, targets: [{}]}}\n",
        targets.join(", ")
    )
}

fn addresses(prefix: &str, count: usize) -> Vec<String> {
    (1..=count).map(|i| format!("{prefix}.{i}")).collect()
}

/// The zone of the edge cases; the name servers are dns1 (one address) and dns2 (30,
/// too many to fit as glue in 512 bytes).
fn edge_cluster() -> String {
    let one = |s: &str| vec![s.to_string()];
    let endpoints = [
        endpoint(NAME_29, "A", &addresses("10.1.0", 29)),
        endpoint(NAME_74, "A", &addresses("10.1.1", 74)),
        endpoint(&longest_name(), "A", &one("10.1.2.1")),
        endpoint("web.home.example", "A", &one("10.1.3.1")),
        // A chain that ends at a name that does not exist.
        endpoint("alias.home.example", "CNAME", &one("hop.home.example")),
        endpoint("hop.home.example", "CNAME", &one("gone.home.example")),
        // Chains that end in no data.
        endpoint("to-v4.home.example", "CNAME", &one("web.home.example")),
        endpoint("to-ent.home.example", "CNAME", &one("ent.home.example")),
        endpoint("x.ent.home.example", "A", &one("10.1.4.1")),
        endpoint("to-wild.home.example", "CNAME", &one("w.apps.home.example")),
        endpoint("*.apps.home.example", "A", &one("10.1.5.1")),
        // A wildcard CNAME that loops onto a name it covers.
        endpoint("*.wl.home.example", "CNAME", &one("z.wl.home.example")),
    ]
    .concat();
    let dns2: Vec<String> = addresses("10.2.0", 30);
    let dns2: Vec<&str> = dns2.iter().map(String::as_str).collect();
    [
        format!(
            "---\napiVersion: externaldns.k8s.io/v1alpha1\nkind: DNSEndpoint\nmetadata: {{name: edges, namespace: network}}\nspec:\n  endpoints:\n{endpoints}"
        ),
        lb_service("dns1", "kube-system", None, &["10.2.1.1"]),
        lb_service("dns2", "kube-system", None, &dns2),
    ]
    .concat()
}

/// A question without RD, with EDNS at `payload` (none when `None`).
fn raw_query(name: &str, rtype: RecordType, payload: Option<u16>) -> Vec<u8> {
    let mut message = Message::new(0x1234, MessageType::Query, OpCode::Query);
    message.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
    if let Some(payload) = payload {
        let mut edns = Edns::new();
        edns.set_max_payload(payload);
        message.set_edns(edns);
    }
    message.to_vec().unwrap()
}

async fn exchange_parsed(
    addr: SocketAddr,
    request: &[u8],
    transport: Transport,
) -> (usize, Message) {
    let bytes = exchange(addr, request, transport).await.expect("an answer");
    (
        bytes.len(),
        Message::from_vec(&bytes).expect("a well-formed answer"),
    )
}

/// One edge question and what RFC 1035 §4.2.1 / RFC 6891 say it gets over UDP.
struct SizeCase {
    what: &'static str,
    name: String,
    rtype: RecordType,
    payload: Option<u16>,
    /// Length of the whole answer in bytes, and the records in its answer section.
    size: usize,
    answers: usize,
}

fn size_cases() -> Vec<SizeCase> {
    vec![
        SizeCase {
            what: "29 A records, 512 bytes, no EDNS",
            name: NAME_29.into(),
            rtype: RecordType::A,
            payload: None,
            size: 512,
            answers: 29,
        },
        SizeCase {
            what: "29 A records, 523 bytes, EDNS payload 523",
            name: NAME_29.into(),
            rtype: RecordType::A,
            payload: Some(523),
            size: 523,
            answers: 29,
        },
        SizeCase {
            what: "a 255-byte name, 287 bytes, no EDNS",
            name: longest_name(),
            rtype: RecordType::A,
            payload: None,
            size: 287,
            answers: 1,
        },
        SizeCase {
            what: "a mixed-case (0x20) question, 1232 bytes, EDNS payload 4096",
            name: "AbCdEf.HoMe.ExAmPlE".into(),
            rtype: RecordType::A,
            payload: Some(4096),
            size: 1232,
            answers: 74,
        },
    ]
}

#[tokio::test]
async fn answers_that_fit_after_compression_are_sent_whole() {
    // RFC 1035 §4.2.1, RFC 6891 §6.2.5: the limit is on the message as sent, after name
    // compression; owners are written in the question's case so they compress.
    let server = TestServer::start(&edge_cluster(), &["--secondary", "dns2.kube-system"]).await;
    for case in size_cases() {
        let request = raw_query(&case.name, case.rtype, case.payload);
        let (size, answer) = exchange_parsed(server.addr, &request, Transport::Udp).await;
        let what = case.what;
        assert!(!answer.metadata.truncation, "{what}: no TC");
        assert_eq!(answer.answers.len(), case.answers, "{what}");
        assert_eq!(size, case.size, "{what}: bytes");
        assert!(
            answer
                .answers
                .iter()
                .all(|r| r.name.to_ascii() == answer.queries[0].name().to_ascii()),
            "{what}: owners spelled as the question"
        );
    }
    // One more record than fits: TC, the question alone (RFC 2181 §9).
    let request = raw_query(NAME_29, RecordType::A, Some(522));
    let (_, answer) = exchange_parsed(server.addr, &request, Transport::Udp).await;
    assert!(answer.metadata.truncation, "522 bytes cannot hold 523");
    assert!(answer.answers.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn glue_that_does_not_fit_is_left_out_without_tc() {
    // RFC 2181 §9: TC only when the answer section does not fit; the additional section
    // takes what fits.
    let server = TestServer::start(&edge_cluster(), &["--secondary", "dns2.kube-system"]).await;
    let request = raw_query("home.example", RecordType::NS, None);
    let (size, answer) = exchange_parsed(server.addr, &request, Transport::Udp).await;
    assert!(size <= 512);
    assert!(!answer.metadata.truncation, "no TC for glue");
    assert_eq!(answer.answers.len(), 2, "both NS records");
    let glue: Vec<String> = answer
        .additionals
        .iter()
        .map(|r| format!("{} {}", r.name, r.data))
        .collect();
    assert_eq!(
        glue,
        ["dns1.kube-system.home.example. 10.2.1.1"],
        "the glue that fits"
    );
    // With room for it, all the glue comes.
    let request = raw_query("home.example", RecordType::NS, Some(1232));
    let (_, answer) = exchange_parsed(server.addr, &request, Transport::Udp).await;
    assert_eq!(answer.additionals.len(), 31);
    server.stop().await;
}

/// The CNAME edge questions: (name, type, rcode, answer records, SOA in authority).
fn cname_cases() -> Vec<(&'static str, RecordType, ResponseCode, usize, bool)> {
    vec![
        // RFC 6604 §3: the rcode of the last name in the chain.
        (
            "alias.home.example",
            RecordType::A,
            ResponseCode::NXDomain,
            2,
            true,
        ),
        // RFC 2308 §3: no data at the end of the chain, SOA in authority.
        (
            "to-v4.home.example",
            RecordType::AAAA,
            ResponseCode::NoError,
            1,
            true,
        ),
        (
            "to-ent.home.example",
            RecordType::A,
            ResponseCode::NoError,
            1,
            true,
        ),
        (
            "to-wild.home.example",
            RecordType::AAAA,
            ResponseCode::NoError,
            1,
            true,
        ),
        (
            "to-wild.home.example",
            RecordType::A,
            ResponseCode::NoError,
            2,
            false,
        ),
        // RFC 2181 §5: the wildcard loop ends at the first repeated owner.
        (
            "a.wl.home.example",
            RecordType::A,
            ResponseCode::NoError,
            2,
            false,
        ),
        (
            "z.wl.home.example",
            RecordType::A,
            ResponseCode::NoError,
            1,
            false,
        ),
    ]
}

#[tokio::test]
async fn cname_chains_end_with_the_rcode_and_soa_of_their_last_name() {
    let server = TestServer::start(&edge_cluster(), &[]).await;
    for transport in [Transport::Udp, Transport::Tcp] {
        for (name, rtype, rcode, count, soa) in cname_cases() {
            let request = raw_query(name, rtype, Some(1232));
            let (_, answer) = exchange_parsed(server.addr, &request, transport).await;
            let what = format!("{transport:?} {name} {rtype}");
            assert_eq!(answer.metadata.response_code, rcode, "{what}");
            assert_eq!(answer.answers.len(), count, "{what}: {:?}", answer.answers);
            let mut records: Vec<String> = answer.answers.iter().map(|r| r.to_string()).collect();
            records.dedup();
            assert_eq!(records.len(), count, "{what}: no duplicates");
            let has_soa = answer
                .authorities
                .iter()
                .any(|r| r.record_type() == RecordType::SOA);
            assert_eq!(has_soa, soa, "{what}: SOA in authority");
        }
    }
    server.stop().await;
}

/// A query signed with TSIG (the MAC is made up: the key is unknown anyway).
fn signed_query(name: &str) -> Vec<u8> {
    let mut message = Message::new(0x7e57, MessageType::Query, OpCode::Query);
    message.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
    let tsig = TSIG::new(
        TsigAlgorithm::HmacSha256,
        1_700_000_000,
        300,
        vec![0xab; 32],
        0x7e57,
        None,
        Vec::new(),
    );
    let mut record = Record::from_rdata(Name::from_ascii("unknown-key.").unwrap(), 0, tsig);
    record.dns_class = hickory_proto::rr::DNSClass::ANY;
    message.signature = Some(Box::new(record));
    message.to_vec().unwrap()
}

#[tokio::test]
async fn tsig_with_an_unknown_key_gets_notauth_badkey() {
    // RFC 8945 §5.2.2: NOTAUTH, TSIG error BADKEY, unsigned (empty MAC, §5.3.2).
    let server = TestServer::start(&edge_cluster(), &[]).await;
    for transport in [Transport::Udp, Transport::Tcp] {
        let (_, answer) =
            exchange_parsed(server.addr, &signed_query("web.home.example"), transport).await;
        assert_eq!(
            answer.metadata.response_code,
            ResponseCode::NotAuth,
            "{transport:?}"
        );
        assert!(answer.answers.is_empty(), "{transport:?}: nothing answered");
        // hickory-proto (with its DNSSEC features, as we build it) reads the last
        // additional record, the TSIG, into `signature`.
        let record = answer.signature.expect("a TSIG record in the answer");
        let tsig = &record.data;
        assert_eq!(record.name.to_ascii(), "unknown-key.");
        assert_eq!(tsig.error, Some(TsigError::BadKey), "{transport:?}");
        assert!(tsig.mac.is_empty(), "{transport:?}: unsigned");
        assert_eq!(tsig.oid, 0x7e57);
    }
    server.stop().await;
}

#[tokio::test]
async fn edge_answers_match_knot_on_the_same_zone() {
    if !crate::support::have("knotd") {
        return;
    }
    let server = TestServer::start(&edge_cluster(), &["--secondary", "dns2.kube-system"]).await;
    let (status, zone) = crate::support::debug_get(&server, "/zone").await;
    assert_eq!(status, 200);
    let dir = tempfile::tempdir().unwrap();
    let (_peer, knot) = crate::peers::start_answering(dir.path(), |port, log| {
        crate::peers::start_knot(dir.path(), port, &zone, log)
    })
    .await;
    let mut questions: Vec<(String, RecordType, Option<u16>)> = size_cases()
        .into_iter()
        .map(|c| (c.name, c.rtype, c.payload))
        .collect();
    questions.push((NAME_29.into(), RecordType::A, Some(522)));
    questions.push(("home.example".into(), RecordType::NS, None));
    for (name, rtype, ..) in cname_cases() {
        // NB: Knot repeats `z.wl CNAME z.wl` for this one, against RFC 2181 §5; we do not.
        if name != "z.wl.home.example" {
            questions.push((name.into(), rtype, Some(1232)));
        }
    }
    let mut requests: Vec<(String, Vec<u8>)> = questions
        .into_iter()
        .map(|(name, rtype, payload)| {
            let what = format!("{name} {rtype} {payload:?}");
            (what, raw_query(&name, rtype, payload))
        })
        .collect();
    requests.push(("TSIG".into(), signed_query("web.home.example")));
    for (what, request) in requests {
        let (our_size, ours) = exchange_parsed(server.addr, &request, Transport::Udp).await;
        let (knot_size, reference) = exchange_parsed(knot, &request, Transport::Udp).await;
        let summary = |m: &Message| {
            let mut answers: Vec<String> = m.answers.iter().map(|r| r.to_string()).collect();
            answers.sort();
            let authority: Vec<RecordType> =
                m.authorities.iter().map(|r| r.record_type()).collect();
            (
                m.metadata.response_code,
                m.metadata.truncation,
                answers,
                authority,
                m.additionals.len(),
            )
        };
        assert_eq!(summary(&ours), summary(&reference), "{what}: ours vs Knot");
        assert_eq!(our_size, knot_size, "{what}: bytes, ours vs Knot");
    }
    server.stop().await;
}
