//! What arrives on the wire: EDNS sizes and truncation, odd and malformed packets, bursts,
//! UDP workers and pipelined TCP.

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::fixtures::lb_service;
use crate::support::{TestServer, Transport, addresses, exchange, query, rcode};

/// One name with 120 addresses: 12 + 36 + 120 * 16 bytes, too big for any UDP answer.
fn big_name() -> String {
    (0..120)
        .map(|i| {
            lb_service(
                &format!("s{i}"),
                "apps",
                Some("big.home.example"),
                &[&format!("10.1.{}.{}", i / 200, i % 200 + 1)],
            )
        })
        .collect()
}

async fn send(server: &TestServer, message: &Message, transport: Transport) -> Message {
    let bytes = exchange(server.addr, &message.to_vec().unwrap(), transport)
        .await
        .expect("an answer");
    Message::from_vec(&bytes).unwrap()
}

#[tokio::test]
async fn large_answers_truncate_over_udp_and_come_whole_over_tcp() {
    let server = TestServer::start(&big_name(), &[]).await;
    // (EDNS payload offered, or none)
    for offered in [None, Some(512u16), Some(4096)] {
        let mut message = query("big.home.example", RecordType::A);
        message.edns = offered.map(|size| {
            let mut edns = Edns::new();
            edns.set_max_payload(size);
            edns
        });
        let raw = exchange(server.addr, &message.to_vec().unwrap(), Transport::Udp)
            .await
            .unwrap();
        let limit = offered.map_or(512, |s| s.min(1232));
        assert!(
            raw.len() <= usize::from(limit),
            "{offered:?}: {} bytes",
            raw.len()
        );
        let answer = Message::from_vec(&raw).unwrap();
        assert!(answer.metadata.truncation, "{offered:?}: TC");
        assert!(answer.answers.is_empty(), "{offered:?}: no partial answer");
        assert_eq!(
            answer.edns.is_some(),
            offered.is_some(),
            "{offered:?}: OPT echoed when sent"
        );
    }
    let whole = send(
        &server,
        &query("big.home.example", RecordType::A),
        Transport::Tcp,
    )
    .await;
    assert!(!whole.metadata.truncation);
    assert_eq!(addresses(&whole).len(), 120);
    server.stop().await;
}

#[tokio::test]
async fn edns_is_echoed_with_our_payload_size() {
    let server = TestServer::start(
        &lb_service("web", "apps", Some("web.home.example"), &["10.0.0.1"]),
        &[],
    )
    .await;
    let answer = send(
        &server,
        &query("web.home.example", RecordType::A),
        Transport::Udp,
    )
    .await;
    assert_eq!(answer.edns.as_ref().map(|e| e.max_payload()), Some(1232));

    let mut v1 = query("web.home.example", RecordType::A);
    v1.edns.as_mut().unwrap().set_version(1);
    let answer = send(&server, &v1, Transport::Udp).await;
    // NB: extended code 16 decodes as BADSIG too (the same number): compare numbers.
    assert_eq!(
        u16::from(rcode(&answer)),
        16,
        "RFC 6891: BADVERS for EDNS version 1"
    );
    server.stop().await;
}

#[tokio::test]
async fn odd_requests_get_the_right_error() {
    let server = TestServer::start(
        &lb_service("web", "apps", Some("web.home.example"), &["10.0.0.1"]),
        &[],
    )
    .await;
    let mut two_questions = query("web.home.example", RecordType::A);
    two_questions.add_query(Query::query(
        Name::from_ascii("web.home.example").unwrap(),
        RecordType::AAAA,
    ));
    let mut notify = query("home.example", RecordType::SOA);
    notify.metadata.op_code = OpCode::Notify;
    let mut chaos = query("version.bind", RecordType::TXT);
    chaos.queries[0].set_query_class(hickory_proto::rr::DNSClass::CH);
    // (request, expected rcode, what it is)
    let cases = [
        (two_questions, ResponseCode::FormErr, "two questions"),
        (notify, ResponseCode::NotImp, "NOTIFY opcode"),
        (
            query("home.example", RecordType::AXFR),
            ResponseCode::Refused,
            "zone transfer over UDP",
        ),
        (chaos, ResponseCode::Refused, "CHAOS class"),
    ];
    for (request, expected, what) in cases {
        let answer = send(&server, &request, Transport::Udp).await;
        assert_eq!(rcode(&answer), expected, "{what}");
        assert_eq!(answer.metadata.id, request.metadata.id, "{what}: same ID");
    }
    // Zone transfers over TCP are refused too: none is configured.
    let axfr = send(
        &server,
        &query("home.example", RecordType::AXFR),
        Transport::Tcp,
    )
    .await;
    assert_eq!(rcode(&axfr), ResponseCode::Refused);
    server.stop().await;
}

#[tokio::test]
async fn malformed_packets_never_stop_the_server() {
    let server = TestServer::start(
        &lb_service("web", "apps", Some("web.home.example"), &["10.0.0.1"]),
        &[],
    )
    .await;
    let good = query("web.home.example", RecordType::A).to_vec().unwrap();
    let mut response = good.clone();
    response[2] |= 0x80; // QR: a response, which we must not answer
    let mut bad_label = good.clone();
    bad_label[12] = 0xc0; // a compression pointer in the question pointing at itself
    bad_label[13] = 12;
    // (bytes, expects an answer at all, what it is)
    let cases: Vec<(Vec<u8>, bool, &str)> = vec![
        (vec![], false, "empty"),
        (vec![0x12], false, "one byte"),
        (good[..11].to_vec(), false, "short header"),
        (good[..20].to_vec(), true, "cut in the question"),
        (response, false, "a response"),
        (bad_label, true, "pointer loop"),
        (
            (0..512).map(|i| (i * 7 % 251) as u8).collect(),
            true,
            "noise",
        ),
    ];
    for transport in [Transport::Udp, Transport::Tcp] {
        for (bytes, answered, what) in &cases {
            if bytes.is_empty() && transport == Transport::Tcp {
                continue; // a zero-length TCP frame is only a wait
            }
            let reply = exchange(server.addr, bytes, transport).await;
            assert_eq!(reply.is_some(), *answered, "{transport:?} {what}");
            if let Some(reply) = reply {
                let message = Message::from_vec(&reply).unwrap();
                assert_eq!(
                    message.metadata.message_type,
                    MessageType::Response,
                    "{what}"
                );
                assert_eq!(
                    message.metadata.response_code,
                    ResponseCode::FormErr,
                    "{transport:?} {what}"
                );
            }
            // And the server still answers properly.
            let after = send(
                &server,
                &query("web.home.example", RecordType::A),
                transport,
            )
            .await;
            assert_eq!(
                addresses(&after),
                ["10.0.0.1"],
                "{transport:?} after {what}"
            );
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn a_burst_of_queries_gets_every_answer_to_its_asker() {
    // With the default batch wait, without it, and with the longest: a worker that
    // waits for its next batch still answers everything the socket queued meanwhile.
    for flags in [
        &[][..],
        &["--udp-batch-wait", "0"],
        &["--udp-batch-wait", "1000"],
    ] {
        answers_a_burst(flags).await;
    }
}

async fn answers_a_burst(flags: &[&str]) {
    let manifests: String = (0..40)
        .map(|i| {
            lb_service(
                &format!("s{i}"),
                "apps",
                Some(&format!("s{i}.home.example")),
                &[&format!("10.2.0.{}", i + 1)],
            )
        })
        .collect();
    let server = TestServer::start(&manifests, flags).await;
    // Two clients, each firing 100 queries without waiting: the server reads them in
    // batches and must send each answer to its own asker, matching its question.
    let mut clients = Vec::new();
    for _ in 0..2 {
        clients.push(tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap());
    }
    for (c, client) in clients.iter().enumerate() {
        for i in 0..100u16 {
            let mut message = query(&format!("s{}.home.example", i % 40), RecordType::A);
            message.metadata.id = i + 1000 * c as u16;
            client
                .send_to(&message.to_vec().unwrap(), server.addr)
                .await
                .unwrap();
        }
    }
    for (c, client) in clients.iter().enumerate() {
        let mut seen = std::collections::HashSet::new();
        let mut buf = vec![0u8; 2048];
        while seen.len() < 100 {
            let (len, _) =
                tokio::time::timeout(crate::support::DEADLINE, client.recv_from(&mut buf))
                    .await
                    .expect("every answer arrives")
                    .unwrap();
            let answer = Message::from_vec(&buf[..len]).unwrap();
            let i = answer.metadata.id - 1000 * c as u16;
            assert!(
                i < 100,
                "{flags:?}: client {c} got an answer meant for another: id {}",
                answer.metadata.id
            );
            assert_eq!(
                addresses(&answer),
                [format!("10.2.0.{}", i % 40 + 1)],
                "{flags:?}: id {i}"
            );
            seen.insert(i);
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn every_udp_worker_socket_answers() {
    let manifests = lb_service("web", "apps", Some("web.home.example"), &["10.3.0.1"]);
    let server = TestServer::start(&manifests, &["--udp-workers", "4"]).await;
    // The kernel spreads clients over the four sockets by their address and port: 64
    // clients reach every socket, and each must get its answer (one unserved socket
    // would leave some without).
    let mut asked = Vec::new();
    for _ in 0..64 {
        asked.push(crate::support::ask(
            server.addr,
            "web.home.example",
            RecordType::A,
            Transport::Udp,
        ));
    }
    for answer in futures::future::join_all(asked).await {
        assert_eq!(addresses(&answer), ["10.3.0.1"]);
    }
    server.stop().await;
}

#[tokio::test]
async fn pipelined_tcp_queries_are_answered_in_order_with_the_askers_case() {
    let manifests: String = (0..10)
        .map(|i| {
            lb_service(
                &format!("s{i}"),
                "apps",
                Some(&format!("s{i}.home.example")),
                &[&format!("10.4.0.{}", i + 1)],
            )
        })
        .collect();
    let server = TestServer::start(&manifests, &[]).await;
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    // 300 queries in one write (RFC 7766 §6.2.1.1: pipelining), names in varying case
    // (the same question again is answered from prepared bytes), then one query split
    // across two writes.
    let names: Vec<String> = (0..301)
        .map(|i| match i % 3 {
            0 => format!("s{}.home.example", i % 10),
            1 => format!("S{}.HOME.example", i % 10),
            _ => format!("s{}.Home.Example", i % 10),
        })
        .collect();
    let framed = |i: usize| {
        let mut message = query(&names[i], RecordType::A);
        message.metadata.id = i as u16;
        let bytes = message.to_vec().unwrap();
        let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
        framed.extend(bytes);
        framed
    };
    let batch: Vec<u8> = (0..300).flat_map(framed).collect();
    stream.write_all(&batch).await.unwrap();
    let last = framed(300);
    stream.write_all(&last[..7]).await.unwrap();
    stream.flush().await.unwrap();
    stream.write_all(&last[7..]).await.unwrap();
    for (i, name) in names.iter().enumerate() {
        let mut len = [0u8; 2];
        tokio::time::timeout(crate::support::DEADLINE, stream.read_exact(&mut len))
            .await
            .expect("every answer arrives")
            .unwrap();
        let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
        stream.read_exact(&mut buf).await.unwrap();
        let answer = Message::from_vec(&buf).unwrap();
        assert_eq!(usize::from(answer.metadata.id), i, "answers come in order");
        // RFC 4343 §4.1: the question comes back as asked.
        assert_eq!(answer.queries[0].name().to_string(), format!("{name}."));
        assert_eq!(
            addresses(&answer),
            [format!("10.4.0.{}", i % 10 + 1)],
            "{name}"
        );
    }
    server.stop().await;
}
