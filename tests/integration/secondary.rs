//! Zone transfers and NOTIFY: a real Knot configured as our secondary transfers the
//! forward and reverse zones, answers like us, and follows a manifest change through
//! NOTIFY; transfers are refused to other addresses and over UDP; a NOTIFY reply with
//! the wrong ID is ignored and counted; a transfer with a record no message can hold is
//! aborted, never sent with a hole in it.

use std::net::{SocketAddr, UdpSocket};
use std::process::Stdio;
use std::time::Instant;

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::{RData, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::fake_api::FakeApi;
use crate::fixtures::lb_service;
use crate::fixtures::service;
use crate::peers::{KnotZone, Peer, answers_or_exits, dig, free_port, start_knot_zones, summary};
use crate::support::{
    DEADLINE, TestServer, Transport, addresses, ask, exchange, have, query, sample, scrape,
};

fn cluster(extra: &str) -> String {
    [
        lb_service("web", "apps", Some("web.home.example"), &["192.168.1.10"]),
        lb_service(
            "nas",
            "home",
            Some("nas.home.example"),
            &["192.168.1.11", "fd00::11"],
        ),
        lb_service(
            "wild",
            "apps",
            Some("*.apps.home.example"),
            &["192.168.1.20"],
        ),
        extra.to_string(),
    ]
    .concat()
}

fn serial(message: &Message) -> Option<u32> {
    message.answers.iter().find_map(|r| match &r.data {
        RData::SOA(soa) => Some(soa.serial),
        _ => None,
    })
}

/// Polls `addr` until the SOA of `zone` has `wanted` as its serial; panics with the last
/// answer after [`DEADLINE`].
async fn wait_for_serial(addr: SocketAddr, zone: &str, wanted: u32) {
    let start = Instant::now();
    let request = query(zone, RecordType::SOA).to_vec().unwrap();
    loop {
        // Nothing at all while Knot starts.
        let answer = exchange(addr, &request, Transport::Udp)
            .await
            .and_then(|bytes| Message::from_vec(&bytes).ok());
        if answer.as_ref().and_then(serial) == Some(wanted) {
            return;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "{addr} never served {zone} serial {wanted}: {answer:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn knot_secondary_transfers_answers_alike_and_follows_notify() {
    if !have("knotd") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("knot.log");
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    // Knot's port is chosen before our server starts (it is our --notify target) and may
    // be taken by another test before Knot binds it: then Knot exits, and both start
    // again on another port.
    let mut attempts = 0;
    let (server, knot, notify, _knot) = loop {
        attempts += 1;
        let knot_port = free_port();
        let knot: SocketAddr = format!("127.0.0.1:{knot_port}").parse().unwrap();
        let notify = knot.to_string();
        let server = TestServer::start(
            &cluster(""),
            &[
                "--transfer-allow",
                "127.0.0.1/32",
                "--notify",
                &notify,
                "--reverse-zone",
                "192.168.1.0/24",
            ],
        )
        .await;
        let mut peer: Peer = start_knot_zones(
            dir.path(),
            knot_port,
            &[
                KnotZone::Secondary("home.example.", server.addr),
                KnotZone::Secondary("1.168.192.in-addr.arpa.", server.addr),
            ],
            Stdio::from(std::fs::File::create(&log).unwrap()),
        );
        if answers_or_exits(&mut peer, knot, "home.example", read_log).await {
            break (server, knot, notify, peer);
        }
        server.stop().await;
        assert!(attempts < 5, "Knot exited 5 times: {}", read_log());
    };
    let first = serial(&server.ask("home.example", RecordType::SOA).await).expect("our SOA");
    wait_for_serial(knot, "home.example", first).await;
    wait_for_serial(knot, "1.168.192.in-addr.arpa", first).await;

    // (name, type): positive, NODATA, NXDOMAIN, wildcard, apex, reverse.
    let questions = [
        ("web.home.example", RecordType::A),
        ("nas.home.example", RecordType::AAAA),
        ("nas.home.example", RecordType::TXT),
        ("missing.home.example", RecordType::A),
        ("x.apps.home.example", RecordType::A),
        ("home.example", RecordType::NS),
        ("home.example", RecordType::SOA),
        ("10.1.168.192.in-addr.arpa", RecordType::PTR),
        ("99.1.168.192.in-addr.arpa", RecordType::PTR),
    ];
    for transport in [Transport::Udp, Transport::Tcp] {
        for (name, rtype) in questions {
            let ours = summary(&ask(server.addr, name, rtype, transport).await);
            let theirs = summary(&ask(knot, name, rtype, transport).await);
            assert_eq!(
                ours, theirs,
                "{transport:?} {name} {rtype}: ours vs Knot secondary"
            );
        }
    }

    // A new Service: our serial moves, NOTIFY tells Knot, Knot transfers and serves it.
    std::fs::write(
        server.path("objects.yaml"),
        cluster(&lb_service(
            "new",
            "apps",
            Some("new.home.example"),
            &["192.168.1.30"],
        )),
    )
    .unwrap();
    let changed = Instant::now();
    server
        .wait_for("new.home.example", RecordType::A, |m| !m.answers.is_empty())
        .await;
    let second = serial(&server.ask("home.example", RecordType::SOA).await).unwrap();
    assert_ne!(first, second);
    // Knot refreshes on its own only after the SOA refresh (an hour): only NOTIFY brings
    // the change within the deadline.
    wait_for_serial(knot, "home.example", second).await;
    println!(
        "Knot served the new serial {:?} after the manifest changed",
        changed.elapsed()
    );
    let new = ask(knot, "new.home.example", RecordType::A, Transport::Udp).await;
    assert_eq!(addresses(&new), ["192.168.1.30"]);
    wait_for_serial(knot, "1.168.192.in-addr.arpa", second).await;
    let ptr = ask(
        knot,
        "30.1.168.192.in-addr.arpa",
        RecordType::PTR,
        Transport::Udp,
    )
    .await;
    assert_eq!(ptr.answers[0].data.to_string(), "new.home.example.");

    let metrics = scrape(&server);
    let to = [("to", notify.as_str())];
    assert!(
        sample(&metrics, "k8s_gateway_notify_sent_total", &to) >= 2.0,
        "{metrics}"
    );
    assert!(
        sample(&metrics, "k8s_gateway_notify_acknowledged_total", &to) >= 2.0,
        "{metrics}"
    );
    server.stop().await;
}

#[tokio::test]
async fn transfers_only_over_tcp_from_allowed_addresses() {
    let server = TestServer::start(&cluster(""), &["--transfer-allow", "127.0.0.1/32"]).await;
    // Over UDP, never (RFC 5936 §4.2: AXFR is a TCP affair).
    let udp = ask(
        server.addr,
        "home.example",
        RecordType::AXFR,
        Transport::Udp,
    )
    .await;
    assert_eq!(udp.metadata.response_code, ResponseCode::Refused);
    // Over TCP from an allowed address: SOA first and last.
    let tcp = ask(
        server.addr,
        "home.example",
        RecordType::AXFR,
        Transport::Tcp,
    )
    .await;
    assert_eq!(tcp.metadata.response_code, ResponseCode::NoError);
    let types: Vec<RecordType> = tcp.answers.iter().map(|r| r.record_type()).collect();
    assert_eq!(types.first(), Some(&RecordType::SOA));
    assert_eq!(types.last(), Some(&RecordType::SOA));
    assert!(types.contains(&RecordType::A), "{types:?}");
    // IXFR is answered with the whole zone (RFC 1995 §4).
    let ixfr = ask(
        server.addr,
        "home.example",
        RecordType::IXFR,
        Transport::Tcp,
    )
    .await;
    assert_eq!(ixfr.answers.len(), tcp.answers.len());
    // A name that is not a zone apex: no transfer.
    let inner = ask(
        server.addr,
        "web.home.example",
        RecordType::AXFR,
        Transport::Tcp,
    )
    .await;
    assert_eq!(inner.metadata.response_code, ResponseCode::NotAuth);

    if have("dig") && have("kdig") {
        let addr = server.addr;
        let [refused, allowed] = tokio::task::spawn_blocking(move || {
            [
                // From 127.0.0.2, outside --transfer-allow.
                dig("dig", addr, &["-b", "127.0.0.2", "home.example", "AXFR"]),
                dig("kdig", addr, &["home.example", "AXFR"]),
            ]
        })
        .await
        .unwrap();
        assert!(
            refused.contains("Transfer failed") || refused.contains("REFUSED"),
            "{refused}"
        );
        assert!(!refused.contains("192.168.1.10"), "{refused}");
        assert!(allowed.contains("192.168.1.10"), "{allowed}");
    }
    server.stop().await;

    // Without --transfer-allow nobody may transfer, not even loopback.
    let closed = TestServer::start(&cluster(""), &[]).await;
    let tcp = ask(
        closed.addr,
        "home.example",
        RecordType::AXFR,
        Transport::Tcp,
    )
    .await;
    assert_eq!(tcp.metadata.response_code, ResponseCode::Refused);
    closed.stop().await;
}

#[tokio::test]
async fn a_notify_reply_with_another_id_is_ignored_and_counted() {
    // A stand-in secondary that answers the first NOTIFY with a wrong ID.
    let secondary = UdpSocket::bind("127.0.0.1:0").unwrap();
    secondary.set_read_timeout(Some(DEADLINE)).unwrap();
    let target = secondary.local_addr().unwrap().to_string();
    let server = TestServer::start(&cluster(""), &["--notify", &target]).await;
    let listener = std::thread::spawn(move || {
        let mut buffer = [0u8; 1024];
        let mut ids = Vec::new();
        for attempt in 0..2 {
            let (len, from) = secondary.recv_from(&mut buffer).expect("a NOTIFY");
            let notify = Message::from_vec(&buffer[..len]).unwrap();
            assert_eq!(notify.metadata.op_code, OpCode::Notify);
            assert!(notify.metadata.authoritative);
            assert_eq!(notify.queries[0].query_type(), RecordType::SOA);
            assert_eq!(notify.queries[0].name().to_string(), "home.example.");
            ids.push(notify.metadata.id);
            let mut reply = Message::new(
                if attempt == 0 {
                    notify.metadata.id.wrapping_add(1)
                } else {
                    notify.metadata.id
                },
                MessageType::Response,
                OpCode::Notify,
            );
            reply.metadata.authoritative = true;
            reply.add_query(notify.queries[0].clone());
            secondary.send_to(&reply.to_vec().unwrap(), from).unwrap();
        }
        ids
    });
    let ids = tokio::task::spawn_blocking(move || listener.join().unwrap())
        .await
        .unwrap();
    assert_ne!(ids[0], ids[1], "the retry is a new message");
    // The acknowledgement is counted once the reply is read: wait for it.
    let start = Instant::now();
    let to = [("to", target.as_str())];
    loop {
        let metrics = scrape(&server);
        if sample(&metrics, "k8s_gateway_notify_acknowledged_total", &to) == 1.0 {
            assert_eq!(
                sample(&metrics, "k8s_gateway_notify_ignored_replies_total", &to),
                1.0
            );
            assert_eq!(sample(&metrics, "k8s_gateway_notify_sent_total", &to), 2.0);
            break;
        }
        assert!(start.elapsed() < DEADLINE, "never acknowledged: {metrics}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // A query still gets its answer meanwhile.
    let answer = exchange(
        server.addr,
        &query("web.home.example", RecordType::A).to_vec().unwrap(),
        Transport::Udp,
    )
    .await;
    assert!(answer.is_some());
    server.stop().await;
}

/// Two replicas watch the same cluster and each makes its own serial; a secondary
/// transfers from the first and, when that replica goes away (a rollout, a node down),
/// from the other, and still follows the next change there. The chart keeps a
/// secondary on one replica while it lives (`sessionAffinity: ClientIP`).
#[tokio::test]
async fn a_secondary_follows_the_next_replica_when_its_replica_goes_away() {
    if !have("knotd") {
        return;
    }
    let api = FakeApi::start().await;
    api.serve_all();
    api.apply(
        "",
        "services",
        service("web", "apps", "web.home.example", "192.168.10.60"),
    );
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("knot.log");
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    let mut attempts = 0;
    let (first, second, knot, _knot) = loop {
        attempts += 1;
        let knot_port = free_port();
        let knot: SocketAddr = format!("127.0.0.1:{knot_port}").parse().unwrap();
        let notify = knot.to_string();
        let args = ["--transfer-allow", "127.0.0.1/32", "--notify", &notify];
        // The second starts later, as a new pod of a rollout does.
        let first = TestServer::start_cluster(&api, &args).await;
        first.wait_ready().await;
        let second = TestServer::start_cluster(&api, &args).await;
        second.wait_ready().await;
        let replicas = [first.addr, second.addr];
        let mut peer = start_knot_zones(
            dir.path(),
            knot_port,
            &[KnotZone::SecondaryOf("home.example.", &replicas)],
            Stdio::from(std::fs::File::create(&log).unwrap()),
        );
        if answers_or_exits(&mut peer, knot, "home.example", read_log).await {
            break (first, second, knot, peer);
        }
        first.stop().await;
        second.stop().await;
        assert!(attempts < 5, "Knot exited 5 times: {}", read_log());
    };
    let web = || ask(knot, "web.home.example", RecordType::A, Transport::Udp);
    let on_first = serial(&first.ask("home.example", RecordType::SOA).await).unwrap();
    wait_for_serial(knot, "home.example", on_first).await;
    assert_eq!(addresses(&web().await), ["192.168.10.60"]);

    // The first replica goes; a change arrives at the second, which tells Knot.
    first.stop().await;
    api.apply(
        "",
        "services",
        service("web", "apps", "web.home.example", "192.168.10.61"),
    );
    second
        .wait_for("web.home.example", RecordType::A, |m| {
            addresses(m) == ["192.168.10.61"]
        })
        .await;
    let on_second = serial(&second.ask("home.example", RecordType::SOA).await).unwrap();
    wait_for_serial(knot, "home.example", on_second).await;
    assert_eq!(addresses(&web().await), ["192.168.10.61"], "{}", read_log());
    second.stop().await;
}

/// Asks for an AXFR of `zone` over TCP and reads frames until the closing SOA, an empty
/// frame, or the server closing the connection: the frames read, and whether it closed.
async fn transfer_frames(addr: SocketAddr, zone: &str) -> (Vec<Vec<u8>>, bool) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = query(zone, RecordType::AXFR).to_vec().unwrap();
    let len = u16::try_from(request.len()).unwrap();
    stream.write_all(&len.to_be_bytes()).await.unwrap();
    stream.write_all(&request).await.unwrap();
    let mut frames = Vec::new();
    let mut soas = 0;
    loop {
        let mut len = [0u8; 2];
        let read = tokio::time::timeout(DEADLINE, stream.read_exact(&mut len))
            .await
            .expect("a frame or the end of the stream in time");
        if read.is_err() {
            return (frames, true);
        }
        let mut frame = vec![0u8; usize::from(u16::from_be_bytes(len))];
        stream.read_exact(&mut frame).await.expect("a whole frame");
        let empty = frame.is_empty();
        soas += Message::from_vec(&frame).map_or(0, |m| {
            m.answers
                .iter()
                .filter(|r| r.record_type() == RecordType::SOA)
                .count()
        });
        frames.push(frame);
        if empty || soas == 2 {
            return (frames, false);
        }
    }
}

#[tokio::test]
async fn a_transfer_with_a_record_no_message_can_hold_is_aborted() {
    // Enough TXT records around it for several messages, and in the middle a TXT whose
    // text alone is longer than the 64 KiB a DNS message over TCP can be (RFC 1035
    // §4.2.2). Skipping it would leave a hole; truncating its message (TC) too.
    let filler = |prefix: &str| {
        let targets: Vec<String> = (0..600)
            .map(|i| format!("\"{prefix}{i:04}{}\"", "f".repeat(60)))
            .collect();
        targets.join(", ")
    };
    let huge = "x".repeat(70_000);
    let endpoint = format!(
        "---\napiVersion: externaldns.k8s.io/v1alpha1\nkind: DNSEndpoint\nmetadata: {{name: big, namespace: network}}\nspec:\n  endpoints:\n  - {{dnsName: a-filler.home.example, recordType: TXT, targets: [{}]}}\n  - {{dnsName: mid.home.example, recordType: TXT, targets: [\"{huge}\"]}}\n  - {{dnsName: z-filler.home.example, recordType: TXT, targets: [{}]}}\n",
        filler("a"),
        filler("z"),
    );
    let server =
        TestServer::start(&cluster(&endpoint), &["--transfer-allow", "127.0.0.1/32"]).await;
    let (frames, closed) = transfer_frames(server.addr, "home.example").await;
    // The messages before the record went out whole; then the server closed the
    // connection: no empty frame, no closing SOA, so the secondary retries.
    assert!(closed, "the connection is closed");
    assert!(frames.len() > 1, "{} frames", frames.len());
    let mut records = Vec::new();
    for frame in &frames {
        assert!(!frame.is_empty(), "an empty frame");
        let message = Message::from_vec(frame).expect("a whole message");
        assert_eq!(message.metadata.response_code, ResponseCode::NoError);
        assert!(
            !message.metadata.truncation,
            "a message with records left out"
        );
        records.extend(message.answers);
    }
    assert_eq!(records[0].record_type(), RecordType::SOA);
    let soas = records
        .iter()
        .filter(|r| r.record_type() == RecordType::SOA)
        .count();
    assert_eq!(soas, 1, "no closing SOA");
    assert!(
        records
            .iter()
            .all(|r| r.name.to_string() != "mid.home.example."),
        "the record that cannot be sent is not in it"
    );
    let metrics = scrape(&server);
    assert_eq!(
        sample(&metrics, "k8s_gateway_transfer_aborts_total", &[]),
        1.0,
        "{metrics}"
    );
    // The server goes on answering.
    let web = ask(
        server.addr,
        "web.home.example",
        RecordType::A,
        Transport::Tcp,
    )
    .await;
    assert_eq!(addresses(&web), ["192.168.1.10"]);
    server.stop().await;
}
