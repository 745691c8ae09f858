//! `--fallthrough`: names of our domains that the zone does not have are asked of an
//! upstream (Knot holding the "public" zone, a silent one, a misbehaving one, dnsmasq),
//! and names we have never are; floods of one name or of random names stay bounded.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Instant;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::rdata::opt::EdnsOption;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use k8s_gateway::dns::forward::{LOOP_MARKER, MAX_WAITERS};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use crate::peers::{Peer, cluster, free_port, start_answering, start_knot};
use crate::support::{
    DEADLINE, TestServer, Transport, addresses, ask, debug_get, have, query, rcode, sample, scrape,
};

/// The domain as the public DNS has it: other addresses for names we have, and names
/// only the public side has.
const PUBLIC_ZONE: &str = "$ORIGIN home.example.\n$TTL 300\n\
    @ SOA ns.public.example. hostmaster.home.example. 1 7200 1800 86400 30\n\
    @ NS ns.public.example.\n\
    blog A 203.0.113.7\n\
    alias CNAME web\n\
    web A 203.0.113.80\n\
    web HTTPS 1 . alpn=h2 ipv4hint=203.0.113.80\n";

/// Sends `message` and waits (up to the test deadline, longer than the upstream
/// timeout) for the answer.
async fn ask_patiently(addr: SocketAddr, message: &Message) -> Message {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket
        .send_to(&message.to_vec().unwrap(), addr)
        .await
        .unwrap();
    let mut buf = vec![0u8; 65535];
    let (len, _) = tokio::time::timeout(DEADLINE, socket.recv_from(&mut buf))
        .await
        .expect("an answer before the deadline")
        .unwrap();
    Message::from_vec(&buf[..len]).unwrap()
}

/// An upstream that reads every query and never answers; it reports each question.
async fn silent_upstream() -> (SocketAddr, mpsc::UnboundedReceiver<String>) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let (seen, receiver) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        while let Ok((len, _)) = socket.recv_from(&mut buf).await {
            if let Ok(message) = Message::from_vec(&buf[..len])
                && let Some(query) = message.queries.first()
            {
                let _ = seen.send(query.name().to_string());
            }
        }
    });
    (addr, receiver)
}

#[tokio::test]
async fn public_only_names_come_from_the_upstream_and_ours_never_do() {
    if !have("knotd") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (_knot, upstream) = start_answering(dir.path(), |port, log| {
        start_knot(dir.path(), port, PUBLIC_ZONE, log)
    })
    .await;
    let to = upstream.to_string();
    let server = TestServer::start(&cluster(), &["--fallthrough", &to]).await;

    // A name only the public side has: its answer, not authoritative, TTL from upstream.
    for transport in [Transport::Udp, Transport::Tcp] {
        let blog = ask(server.addr, "blog.home.example", RecordType::A, transport).await;
        assert_eq!(rcode(&blog), ResponseCode::NoError, "{transport:?}");
        assert!(!blog.metadata.authoritative, "{transport:?}: AA off");
        assert_eq!(addresses(&blog), ["203.0.113.7"], "{transport:?}");
        assert!(
            blog.answers[0].ttl <= 300,
            "{transport:?}: {:?}",
            blog.answers
        );
    }
    // dig agrees: the upstream's address, and no aa flag.
    if have("dig") {
        let addr = server.addr;
        let out = tokio::task::spawn_blocking(move || {
            crate::peers::dig("dig", addr, &["blog.home.example", "A"])
        })
        .await
        .unwrap();
        assert!(out.contains("status: NOERROR"), "{out}");
        assert!(out.contains("203.0.113.7"), "{out}");
        let flags = out
            .lines()
            .find(|l| l.contains("flags:"))
            .unwrap_or_default();
        assert!(!flags.contains(" aa"), "AA off: {out}");
    }
    // Names we have: our addresses, authoritative, although upstream has others; and a
    // type we lack is our NODATA, never the public HTTPS record with its address hints.
    let web = ask(
        server.addr,
        "web.home.example",
        RecordType::A,
        Transport::Udp,
    )
    .await;
    assert!(web.metadata.authoritative);
    assert_eq!(addresses(&web), ["192.168.1.10", "192.168.1.11"]);
    let https = ask(
        server.addr,
        "web.home.example",
        RecordType::HTTPS,
        Transport::Udp,
    )
    .await;
    assert_eq!(rcode(&https), ResponseCode::NoError);
    assert!(
        https.metadata.authoritative && https.answers.is_empty(),
        "{https:?}"
    );
    // A public CNAME to a name we have: the chain goes on with our addresses, never the
    // public ones (a resolver would cache those for web.home.example itself).
    let alias = ask(
        server.addr,
        "alias.home.example",
        RecordType::A,
        Transport::Udp,
    )
    .await;
    assert_eq!(
        addresses(&alias),
        ["192.168.1.10", "192.168.1.11"],
        "{alias:?}"
    );
    assert!(
        alias
            .answers
            .iter()
            .any(|r| r.record_type() == RecordType::CNAME),
        "{alias:?}"
    );
    // Neither side has it: the upstream's NXDOMAIN with its SOA, AA off.
    for _ in 0..2 {
        let none = ask(
            server.addr,
            "none.home.example",
            RecordType::A,
            Transport::Udp,
        )
        .await;
        assert_eq!(rcode(&none), ResponseCode::NXDomain);
        assert!(!none.metadata.authoritative);
        assert!(
            none.authorities
                .iter()
                .any(|r| r.data.to_string().starts_with("ns.public.example.")),
            "the upstream's SOA: {none:?}"
        );
    }

    // Three questions went upstream; the repeated ones came from the cache.
    let metrics = scrape(&server);
    let to_label = [("to", to.as_str())];
    assert_eq!(
        sample(&metrics, "coredns_forward_requests_total", &to_label),
        3.0,
        "{metrics}"
    );
    assert_eq!(
        sample(
            &metrics,
            "coredns_forward_responses_total",
            &[("to", &to), ("rcode", "NOERROR")]
        ),
        2.0
    );
    assert_eq!(
        sample(
            &metrics,
            "coredns_forward_request_duration_seconds_count",
            &[("to", &to), ("rcode", "NXDOMAIN")]
        ),
        1.0
    );
    assert_eq!(sample(&metrics, "coredns_cache_misses_total", &[]), 3.0);
    // blog over TCP, and again with dig when it is installed.
    let dug = if have("dig") { 1.0 } else { 0.0 };
    assert_eq!(
        sample(&metrics, "coredns_cache_hits_total", &[("type", "success")]),
        1.0 + dug
    );
    assert_eq!(
        sample(
            &metrics,
            "coredns_cache_hits_total",
            &[("type", "denial"), ("zones", "home.example.")]
        ),
        1.0
    );

    // The forward and cache families pass promtool with samples in them.
    if have("promtool") {
        let text = crate::support::http_get(&server, "/metrics").await.1;
        crate::support::promtool_check_metrics(&text);
    }

    // /explain says where a name we do not have goes, and says nothing of it otherwise.
    let (_, body) = debug_get(&server, "/explain?name=blog.home.example").await;
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["status"], "NXDOMAIN");
    assert_eq!(json["fallthrough"], serde_json::json!([to]), "{body}");
    let (_, body) = debug_get(&server, "/explain?name=web.home.example").await;
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(json.get("fallthrough").is_none(), "{body}");
    server.stop().await;
}

#[tokio::test]
async fn a_silent_upstream_gives_servfail_without_stalling_other_queries() {
    let (upstream, mut seen) = silent_upstream().await;
    let server = TestServer::start(&cluster(), &["--fallthrough", &upstream.to_string()]).await;
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    // More distinct questions than we allow in flight: the rest are refused at once.
    const ASKED: usize = 110;
    for i in 0..ASKED {
        let mut message = query(&format!("missing{i}.home.example"), RecordType::A);
        message.metadata.id = i as u16;
        client
            .send_to(&message.to_vec().unwrap(), server.addr)
            .await
            .unwrap();
    }
    let started = Instant::now();
    let mut forwarded = 0;
    while forwarded < 100 {
        tokio::time::timeout(DEADLINE, seen.recv())
            .await
            .expect("the upstream gets the questions")
            .unwrap();
        forwarded += 1;
    }
    // The upstream holds 100 questions: every UDP worker is free to answer ours.
    for transport in [Transport::Udp, Transport::Tcp] {
        let web = ask(server.addr, "web.home.example", RecordType::A, transport).await;
        assert_eq!(addresses(&web), ["192.168.1.10", "192.168.1.11"]);
    }
    let mut buf = vec![0u8; 4096];
    let mut ids = std::collections::HashSet::new();
    for _ in 0..ASKED {
        let (len, _) = tokio::time::timeout(DEADLINE, client.recv_from(&mut buf))
            .await
            .expect("every question is answered")
            .unwrap();
        let answer = Message::from_vec(&buf[..len]).unwrap();
        assert_eq!(rcode(&answer), ResponseCode::ServFail);
        assert!(!answer.metadata.authoritative);
        ids.insert(answer.metadata.id);
    }
    assert_eq!(ids.len(), ASKED);
    eprintln!("110 SERVFAILs after {:?}", started.elapsed());
    let metrics = scrape(&server);
    assert_eq!(
        sample(
            &metrics,
            "coredns_forward_max_concurrent_rejects_total",
            &[]
        ),
        (ASKED - 100) as f64,
        "{metrics}"
    );
    assert_eq!(
        sample(&metrics, "coredns_forward_requests_total", &[]),
        100.0
    );
    assert!(seen.try_recv().is_err(), "never more than 100 in flight");
    server.stop().await;
}

/// An upstream that answers each query with garbage, an oversized datagram, an answer
/// with another ID and one for another question (each carrying a poisoned address),
/// and only then the real answer.
async fn misbehaving_upstream() -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        while let Ok((len, peer)) = socket.recv_from(&mut buf).await {
            let Ok(request) = Message::from_vec(&buf[..len]) else {
                continue;
            };
            let answer = |id: u16, name: &Name, address: [u8; 4]| {
                let mut message = Message::new(id, MessageType::Response, OpCode::Query);
                message.add_query(Query::query(name.clone(), RecordType::A));
                message.add_answer(Record::from_rdata(
                    name.clone(),
                    120,
                    RData::A(A::from(std::net::Ipv4Addr::from(address))),
                ));
                message.to_vec().unwrap()
            };
            let name = request.queries[0].name().clone();
            let other = Name::from_ascii("other.home.example.").unwrap();
            let id = request.metadata.id;
            for packet in [
                b"\x12\x34\x81\x80junk".to_vec(),
                vec![0u8; 2000],
                answer(id.wrapping_add(1), &name, [6, 6, 6, 6]),
                answer(id, &other, [6, 6, 6, 6]),
                answer(id, &name, [203, 0, 113, 9]),
            ] {
                let _ = socket.send_to(&packet, peer).await;
            }
        }
    });
    addr
}

#[tokio::test]
async fn upstreams_are_asked_in_turn_and_bad_answers_are_ignored_and_counted() {
    let (silent, _seen) = silent_upstream().await;
    let bad = misbehaving_upstream().await;
    let server = TestServer::start(
        &cluster(),
        &[
            "--fallthrough",
            &silent.to_string(),
            "--fallthrough",
            &bad.to_string(),
        ],
    )
    .await;
    // The first upstream never answers: after its timeout the second is asked.
    let answer = ask_patiently(server.addr, &query("blog.home.example", RecordType::A)).await;
    assert_eq!(addresses(&answer), ["203.0.113.9"], "{answer:?}");
    assert!(!answer.metadata.authoritative);
    // The cache holds the real answer, not a poisoned one.
    let again = ask(
        server.addr,
        "blog.home.example",
        RecordType::A,
        Transport::Udp,
    )
    .await;
    assert_eq!(addresses(&again), ["203.0.113.9"]);
    // While cached, its TTL counts down from the upstream's 120.
    let aged = server
        .wait_for("blog.home.example", RecordType::A, |m| {
            m.answers.first().is_some_and(|r| r.ttl < 120)
        })
        .await;
    assert_eq!(addresses(&aged), ["203.0.113.9"]);

    let metrics = scrape(&server);
    let bad = bad.to_string();
    for (reason, count) in [("malformed", 1.0), ("oversized", 1.0), ("mismatch", 2.0)] {
        assert_eq!(
            sample(
                &metrics,
                "k8s_gateway_forward_ignored_answers_total",
                &[("to", &bad), ("reason", reason)]
            ),
            count,
            "{reason}: {metrics}"
        );
    }
    for to in [silent.to_string(), bad.clone()] {
        assert_eq!(
            sample(&metrics, "coredns_forward_requests_total", &[("to", &to)]),
            1.0,
            "{to}"
        );
    }
    assert_eq!(
        sample(
            &metrics,
            "coredns_forward_responses_total",
            &[("to", &silent.to_string())]
        ),
        0.0
    );
    server.stop().await;
}

#[tokio::test]
async fn a_query_carrying_our_marker_is_not_forwarded_again() {
    let (upstream, mut seen) = silent_upstream().await;
    let server = TestServer::start(&cluster(), &["--fallthrough", &upstream.to_string()]).await;
    let mut message = query("missing.home.example", RecordType::A);
    let mut edns = Edns::new();
    edns.set_max_payload(1232);
    edns.options_mut()
        .insert(EdnsOption::Unknown(LOOP_MARKER, Vec::new()));
    message.set_edns(edns);
    for transport in [Transport::Udp, Transport::Tcp] {
        let bytes = crate::support::exchange(server.addr, &message.to_vec().unwrap(), transport)
            .await
            .expect("an answer");
        let answer = Message::from_vec(&bytes).unwrap();
        assert_eq!(rcode(&answer), ResponseCode::ServFail, "{transport:?}");
    }
    let metrics = scrape(&server);
    assert_eq!(
        sample(&metrics, "k8s_gateway_forward_loops_total", &[]),
        2.0
    );
    assert_eq!(sample(&metrics, "coredns_forward_requests_total", &[]), 0.0);
    assert!(seen.try_recv().is_err(), "nothing went upstream");
    server.stop().await;
}

/// The Pi-hole loop: Pi-hole (dnsmasq) forwards the domain to us, and we fall through to
/// Pi-hole. The marker ends it at the first turn instead of circling until timeouts.
#[tokio::test]
async fn the_pihole_loop_is_cut_at_the_first_turn() {
    if !have("dnsmasq") {
        return;
    }
    let port = free_port();
    let pihole: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let server = TestServer::start(&cluster(), &["--fallthrough", &pihole.to_string()]).await;
    let dir = tempfile::tempdir().unwrap();
    let conf_path = dir.path().join("dnsmasq.conf");
    let conf = format!(
        "port={port}\nlisten-address=127.0.0.1\nbind-interfaces\nno-resolv\nno-hosts\nuser=root\n\
         server=/home.example/127.0.0.1#{}\n",
        server.addr.port()
    );
    std::fs::write(&conf_path, conf).unwrap();
    let _dnsmasq = Peer(
        Command::new("dnsmasq")
            .args(["-k", &format!("--conf-file={}", conf_path.display())])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dnsmasq"),
    );
    // Ready when a name we have comes back through it.
    let started = Instant::now();
    loop {
        let request = query("web.home.example", RecordType::A).to_vec().unwrap();
        if crate::support::exchange(pihole, &request, Transport::Udp)
            .await
            .is_some()
        {
            break;
        }
        assert!(started.elapsed() < DEADLINE, "dnsmasq never answered");
    }
    let answer = ask_patiently(pihole, &query("missing.home.example", RecordType::A)).await;
    assert_eq!(rcode(&answer), ResponseCode::ServFail, "{answer:?}");
    let metrics = scrape(&server);
    assert_eq!(
        sample(&metrics, "k8s_gateway_forward_loops_total", &[]),
        1.0,
        "the query came back once and stopped: {metrics}"
    );
    server.stop().await;
}

#[tokio::test]
async fn reverse_zone_misses_are_ours_and_never_go_upstream() {
    let (upstream, mut seen) = silent_upstream().await;
    let server = TestServer::start(
        &cluster(),
        &[
            "--reverse-zone",
            "192.168.1.0/24",
            "--fallthrough",
            &upstream.to_string(),
        ],
    )
    .await;
    // An address of the pool that nothing has: our authoritative NXDOMAIN, at once.
    let ptr = ask(
        server.addr,
        "99.1.168.192.in-addr.arpa",
        RecordType::PTR,
        Transport::Udp,
    )
    .await;
    assert_eq!(rcode(&ptr), ResponseCode::NXDomain);
    assert!(ptr.metadata.authoritative);
    let (_, body) = debug_get(&server, "/explain?name=99.1.168.192.in-addr.arpa").await;
    assert!(!body.contains("fallthrough"), "{body}");
    let metrics = scrape(&server);
    assert_eq!(sample(&metrics, "coredns_forward_requests_total", &[]), 0.0);
    assert!(seen.try_recv().is_err(), "nothing went upstream");
    server.stop().await;
}

#[tokio::test]
async fn a_flood_of_one_name_is_bounded_per_question_and_other_names_still_answer() {
    let (upstream, mut seen) = silent_upstream().await;
    let server = TestServer::start(&cluster(), &["--fallthrough", &upstream.to_string()]).await;
    // One name from many sockets (so the kernel spreads it over every UDP worker), while
    // the upstream never answers.
    const SOCKETS: usize = 20;
    const EACH: usize = 10;
    const ASKED: usize = SOCKETS * EACH;
    let mut clients = Vec::new();
    for s in 0..SOCKETS {
        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        for i in 0..EACH {
            let mut message = query("flood.home.example", RecordType::A);
            message.metadata.id = (s * EACH + i) as u16;
            client
                .send_to(&message.to_vec().unwrap(), server.addr)
                .await
                .unwrap();
        }
        clients.push(client);
    }
    // Meanwhile our names are answered, over UDP and TCP, and another missing name
    // still goes upstream.
    for transport in [Transport::Udp, Transport::Tcp] {
        let web = ask(server.addr, "web.home.example", RecordType::A, transport).await;
        assert_eq!(addresses(&web), ["192.168.1.10", "192.168.1.11"]);
    }
    let other = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    other
        .send_to(
            &query("other.home.example", RecordType::A).to_vec().unwrap(),
            server.addr,
        )
        .await
        .unwrap();
    let mut flood_asked = 0;
    loop {
        let name = tokio::time::timeout(DEADLINE, seen.recv())
            .await
            .expect("the upstream gets the other question")
            .unwrap();
        if name == "other.home.example." {
            break;
        }
        flood_asked += usize::from(name == "flood.home.example.");
    }
    // Every flood question gets its SERVFAIL: those past the bound at once, the
    // waiters when the upstream times out.
    let mut ids = std::collections::HashSet::new();
    let mut buf = vec![0u8; 4096];
    for client in &clients {
        for _ in 0..EACH {
            let (len, _) = tokio::time::timeout(DEADLINE, client.recv_from(&mut buf))
                .await
                .expect("every question is answered")
                .unwrap();
            let answer = Message::from_vec(&buf[..len]).unwrap();
            assert_eq!(rcode(&answer), ResponseCode::ServFail);
            ids.insert(answer.metadata.id);
        }
    }
    assert_eq!(ids.len(), ASKED);
    while let Ok(name) = seen.try_recv() {
        flood_asked += usize::from(name == "flood.home.example.");
    }
    let metrics = scrape(&server);
    let rejected = sample(
        &metrics,
        "k8s_gateway_forward_overload_rejects_total",
        &[("reason", "waiters")],
    );
    // Asked once (the flood came in while the first question was upstream): all but
    // the waiters it may have were rejected. Asked again later: at least that many.
    if flood_asked == 1 {
        assert_eq!(rejected, (ASKED - MAX_WAITERS) as f64, "{metrics}");
    } else {
        assert!(
            rejected >= ASKED.saturating_sub(MAX_WAITERS * flood_asked) as f64 && rejected > 0.0,
            "{flood_asked} asked, {rejected} rejected: {metrics}"
        );
    }
    assert_eq!(
        sample(
            &metrics,
            "coredns_forward_max_concurrent_rejects_total",
            &[]
        ),
        0.0
    );
    server.stop().await;
}

/// An upstream that answers every question NXDOMAIN with its SOA (cached for the SOA
/// minimum, RFC 2308 §5).
async fn nxdomain_upstream() -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        while let Ok((len, peer)) = socket.recv_from(&mut buf).await {
            let Ok(request) = Message::from_vec(&buf[..len]) else {
                continue;
            };
            let mut answer =
                Message::new(request.metadata.id, MessageType::Response, OpCode::Query);
            answer.metadata.response_code = ResponseCode::NXDomain;
            answer.add_query(request.queries[0].clone());
            let origin = Name::from_ascii("home.example.").unwrap();
            let soa = hickory_proto::rr::rdata::SOA::new(
                Name::from_ascii("ns.public.example.").unwrap(),
                Name::from_ascii("hostmaster.home.example.").unwrap(),
                1,
                7200,
                1800,
                86400,
                300,
            );
            answer.add_authority(Record::from_rdata(origin, 300, RData::SOA(soa)));
            let _ = socket.send_to(&answer.to_vec().unwrap(), peer).await;
        }
    });
    addr
}

#[tokio::test]
async fn a_random_subdomain_flood_fills_the_cache_and_the_server_still_answers() {
    let upstream = nxdomain_upstream().await;
    const CACHE: usize = 64;
    let server = TestServer::start(
        &cluster(),
        &[
            "--fallthrough",
            &upstream.to_string(),
            "--fallthrough-cache",
            &CACHE.to_string(),
        ],
    )
    .await;
    // Names asked once each, ten times what the cache holds, in rounds of 50 so that no
    // socket buffer drops any.
    const NAMES: usize = CACHE * 10;
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut buf = vec![0u8; 4096];
    for round in (0..NAMES).collect::<Vec<_>>().chunks(50) {
        for i in round {
            let mut message = query(&format!("r{i}.home.example"), RecordType::A);
            message.metadata.id = *i as u16;
            client
                .send_to(&message.to_vec().unwrap(), server.addr)
                .await
                .unwrap();
        }
        for _ in round {
            let (len, _) = tokio::time::timeout(DEADLINE, client.recv_from(&mut buf))
                .await
                .expect("every question is answered")
                .unwrap();
            let answer = Message::from_vec(&buf[..len]).unwrap();
            assert_eq!(rcode(&answer), ResponseCode::NXDomain, "{answer:?}");
        }
    }
    // Every name went upstream once; the cache is full and holds its bound.
    let metrics = scrape(&server);
    assert_eq!(
        sample(&metrics, "coredns_forward_requests_total", &[]),
        NAMES as f64
    );
    let entries = sample(&metrics, "k8s_gateway_forward_cache_entries", &[]);
    assert!(
        entries > 0.0 && entries <= CACHE as f64,
        "{entries} entries: {metrics}"
    );
    // The server still answers: our names, and the last name (from the cache now).
    let web = ask(
        server.addr,
        "web.home.example",
        RecordType::A,
        Transport::Udp,
    )
    .await;
    assert_eq!(addresses(&web), ["192.168.1.10", "192.168.1.11"]);
    let last = ask(
        server.addr,
        &format!("r{}.home.example", NAMES - 1),
        RecordType::A,
        Transport::Udp,
    )
    .await;
    assert_eq!(rcode(&last), ResponseCode::NXDomain);
    let metrics = scrape(&server);
    assert_eq!(
        sample(&metrics, "coredns_cache_hits_total", &[("type", "denial")]),
        1.0
    );
    server.stop().await;
}
