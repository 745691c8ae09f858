//! TSIG (RFC 8945) on transfers and NOTIFY: with `--tsig-key`, kdig, dig and hickory
//! verify our signatures on every message of a transfer; a wrong key, an unknown key, a
//! skewed clock and no signature get the RFC's answers, never the zone; Knot and BIND
//! secondaries holding the key transfer the zone (Knot also through a signed NOTIFY),
//! and Knot with the wrong secret does not.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::tsig::{TsigAlgorithm, TsigError};
use hickory_proto::rr::{Name, RData, Record, RecordType, TSigner};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::fixtures::lb_service;
use crate::peers::{KnotZone, Peer, answers_or_exits, dig, free_port, start_knot_keyed};
use crate::support::{DEADLINE, TestServer, Transport, addresses, ask, exchange, have};

const BIN: &str = env!("CARGO_BIN_EXE_k8s-gateway");

/// The key both ends hold (as `tsig-keygen -a hmac-sha256 xfr-key` writes it).
const NAME: &str = "xfr-key";
const SECRET: &str = "lv950t8wnG5MtF9x2NTP/ywP/akb5dCw9oifTgCCPCQ=";
/// A second key in the same file, with another algorithm.
const NAME_512: &str = "xfr-512";
const SECRET_512: &str =
    "Mx1NPs5UFJp0pTnvFlNVGCRofXEg8q1mxu3f+OBloqxD+YGTF+FUGAv5OYveQ6W9KQkmfKyiA0qrHtsET/ZIjw==";
/// An hmac-sha1 key (RFC 8945 §6: still mandatory to implement, for old secondaries).
const NAME_SHA1: &str = "xfr-sha1";
const SECRET_SHA1: &str = "c2hhMSBrZXkgb2YgdHdlbnR5IGI=";
/// The same key name with another secret.
const WRONG_SECRET: &str = "FKmLyY1iQuqjny8OLRzvNyvuX9UiDA/y7XT3p1Bvuns=";

fn key_file() -> String {
    format!(
        "key \"{NAME}\" {{\n\talgorithm hmac-sha256;\n\tsecret \"{SECRET}\";\n}};\n\
         key \"{NAME_512}\" {{\n\talgorithm hmac-sha512;\n\tsecret \"{SECRET_512}\";\n}};\n\
         key \"{NAME_SHA1}\" {{\n\talgorithm hmac-sha1;\n\tsecret \"{SECRET_SHA1}\";\n}};\n"
    )
}

/// `count` Services: with 1,500 the zone takes several messages to transfer.
fn services(count: usize) -> String {
    (0..count)
        .map(|i| {
            let ip = format!("10.0.{}.{}", i / 250, i % 250 + 1);
            lb_service(
                &format!("app{i}"),
                "apps",
                Some(&format!("app{i}.home.example")),
                &[&ip],
            )
        })
        .collect()
}

/// Our server with the key file, transfers allowed from 127.0.0.1 (`allow`).
async fn keyed_server(manifests: &str, allow: &str, extra: &[&str]) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tsig.key");
    std::fs::write(&path, key_file()).unwrap();
    let path = path.to_string_lossy().to_string();
    let mut args = vec!["--transfer-allow", allow, "--tsig-key", &path];
    args.extend_from_slice(extra);
    let server = TestServer::start(manifests, &args).await;
    // The key file is read at start; the folder may go.
    drop(dir);
    server
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn signer(name: &str, algorithm: TsigAlgorithm, secret: &str) -> TSigner {
    let secret = data_encoding::BASE64.decode(secret.as_bytes()).unwrap();
    TSigner::new(secret, algorithm, Name::from_ascii(name).unwrap(), 300).unwrap()
}

/// A request for `name`/`rtype` signed by `signer` at `time`, and the verifier of its
/// answers (hickory-proto's own TSIG code, not ours).
fn signed(
    name: &str,
    rtype: RecordType,
    signer: &TSigner,
    time: u64,
) -> (Vec<u8>, hickory_proto::rr::TSigVerifier) {
    let mut message = Message::new(0x5157, MessageType::Query, OpCode::Query);
    message.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
    let verifier = message.finalize(signer, time).unwrap().unwrap();
    (message.to_vec().unwrap(), verifier)
}

/// Every message of the TCP answer to `request`, up to the closing SOA of a transfer
/// (or the first message when it is an error or a plain answer).
async fn stream(addr: SocketAddr, request: &[u8]) -> Vec<Vec<u8>> {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let len = u16::try_from(request.len()).unwrap();
    tcp.write_all(&len.to_be_bytes()).await.unwrap();
    tcp.write_all(request).await.unwrap();
    let mut messages = Vec::new();
    let mut soas = 0;
    loop {
        let mut len = [0u8; 2];
        tokio::time::timeout(DEADLINE, tcp.read_exact(&mut len))
            .await
            .expect("the next message in time")
            .expect("the next message");
        let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
        tcp.read_exact(&mut buf).await.unwrap();
        let message = Message::from_vec(&buf).unwrap();
        soas += message
            .answers
            .iter()
            .filter(|r| r.record_type() == RecordType::SOA)
            .count();
        messages.push(buf);
        let transfer = message.queries.is_empty()
            || matches!(
                message.queries[0].query_type(),
                RecordType::AXFR | RecordType::IXFR
            );
        if message.metadata.response_code != ResponseCode::NoError || !transfer || soas >= 2 {
            return messages;
        }
    }
}

/// The TSIG record of an answer.
fn tsig_of(bytes: &[u8]) -> Record<hickory_proto::rr::rdata::TSIG> {
    *Message::from_vec(bytes)
        .unwrap()
        .signature
        .expect("a TSIG record")
}

#[test]
fn a_bad_key_file_exits_2_naming_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.key");
    // Line 3 lacks its `;`; the secret must not be echoed.
    std::fs::write(
        &bad,
        format!("key \"k\" {{\n\talgorithm hmac-sha256;\n\tsecret \"{SECRET}\"\n}};\n"),
    )
    .unwrap();
    let missing = dir.path().join("missing.key");
    let examples = crate::support::repo_path("examples");
    // (key file, what the line must say)
    let cases = [
        (bad.to_string_lossy().to_string(), "line 3"),
        (missing.to_string_lossy().to_string(), "No such file"),
    ];
    for (path, says) in cases {
        let out = Command::new(BIN)
            .args(["serve", "--domain", "home.example", "--manifests"])
            .arg(&examples)
            .args(["--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"])
            .args(["--tsig-key", &path])
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{path}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{path}: one line: {stderr:?}");
        assert!(stderr.contains(&path), "{stderr}");
        assert!(stderr.contains(says), "{stderr}");
        assert!(
            !stderr.contains(&SECRET[..8]),
            "the secret leaked: {stderr}"
        );
    }
}

#[tokio::test]
async fn kdig_and_dig_verify_every_message_of_a_signed_transfer() {
    if !have("kdig") || !have("dig") {
        return;
    }
    let server = keyed_server(&services(1_500), "127.0.0.1/32", &[]).await;
    let addr = server.addr;
    let outputs = tokio::task::spawn_blocking(move || {
        let key = format!("hmac-sha256:{NAME}:{SECRET}");
        let key_512 = format!("hmac-sha512:{NAME_512}:{SECRET_512}");
        let key_sha1 = format!("hmac-sha1:{NAME_SHA1}:{SECRET_SHA1}");
        [
            dig("kdig", addr, &["-y", &key_sha1, "home.example", "AXFR"]),
            dig("kdig", addr, &["-y", &key, "home.example", "AXFR"]),
            dig("kdig", addr, &["-y", &key_512, "home.example", "AXFR"]),
            dig("dig", addr, &["-y", &key, "home.example", "AXFR"]),
            dig("kdig", addr, &["-y", &key, "home.example", "IXFR=1"]),
        ]
    })
    .await
    .unwrap();
    for output in &outputs {
        let tail = &output[output.len().saturating_sub(800)..];
        // kdig and dig check each message's MAC and stop at the first that fails
        // (RFC 8945 §5.3.1: each later MAC covers the one before).
        assert!(!output.contains(";; ERROR"), "{tail}");
        assert!(!output.contains("failure"), "{tail}");
        assert!(
            output.contains("app1499.home.example."),
            "the whole zone: {output}"
        );
        assert!(
            output.contains("ANY\tTSIG\thmac-sha"),
            "signed: {}",
            &output[output.len().saturating_sub(600)..]
        );
    }
    // Several messages, each signed (kdig counts them).
    let messages: usize = outputs[1]
        .lines()
        .find_map(|l| l.strip_prefix(";; Received "))
        .and_then(|l| l.split('(').nth(1))
        .and_then(|l| l.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("kdig's summary line");
    assert!(messages > 1, "{messages} messages");
    let tsigs = outputs[1]
        .lines()
        .filter(|l| l.contains("\tTSIG\t"))
        .count();
    assert_eq!(tsigs, messages, "one TSIG per message");

    // A signed question that is not a transfer is answered and signed (as Knot does).
    let soa = tokio::task::spawn_blocking(move || {
        let key = format!("hmac-sha256:{NAME}:{SECRET}");
        dig("kdig", addr, &["-y", &key, "home.example", "SOA"])
    })
    .await
    .unwrap();
    assert!(soa.contains("status: NOERROR"), "{soa}");
    assert!(soa.contains("TSIG PSEUDOSECTION"), "{soa}");
    server.stop().await;
}

#[tokio::test]
async fn hickory_verifies_the_stream_and_failures_get_the_rfc_errors() {
    let server = keyed_server(&services(1_500), "127.0.0.1/32", &[]).await;
    let good = signer(NAME, TsigAlgorithm::HmacSha256, SECRET);

    // RFC 8945 §5.3.1: every message verifies, each chained to the one before.
    let (request, mut verifier) = signed("home.example", RecordType::AXFR, &good, now());
    let messages = stream(server.addr, &request).await;
    assert!(messages.len() > 1, "{} messages", messages.len());
    let mut records = 0;
    for (index, bytes) in messages.iter().enumerate() {
        let answer = verifier
            .verify(bytes)
            .unwrap_or_else(|e| panic!("message {index} of {}: {e}", messages.len()));
        records += answer.answers.len();
    }
    // SOA, NS, 1,500 A, the name servers' A, SOA.
    assert!(records > 1_500, "{records}");

    // (signer, time offset, TSIG error): the answer is NOTAUTH, never the zone.
    let wrong = signer(NAME, TsigAlgorithm::HmacSha256, WRONG_SECRET);
    let unknown = signer("no-such-key", TsigAlgorithm::HmacSha256, SECRET);
    let other_algorithm = signer(NAME, TsigAlgorithm::HmacSha512, SECRET);
    let cases = [
        // §5.2.2: a MAC that does not verify.
        (&wrong, 0, TsigError::BadSig),
        // §5.2.1: a key we do not have, or not with this algorithm.
        (&unknown, 0, TsigError::BadKey),
        (&other_algorithm, 0, TsigError::BadKey),
    ];
    for (signer, offset, error) in cases {
        for rtype in [RecordType::AXFR, RecordType::SOA] {
            let (request, _) = signed("home.example", rtype, signer, now() + offset);
            let messages = stream(server.addr, &request).await;
            assert_eq!(messages.len(), 1);
            let answer = Message::from_vec(&messages[0]).unwrap();
            assert_eq!(answer.metadata.response_code, ResponseCode::NotAuth);
            assert!(answer.answers.is_empty(), "{error:?} {rtype}");
            let tsig = tsig_of(&messages[0]);
            assert_eq!(tsig.data.error, Some(error), "{rtype}");
            // §5.3.2: unsigned, an empty MAC.
            assert!(tsig.data.mac.is_empty(), "{error:?} {rtype}");
        }
    }

    // §5.2.3: a time outside the fudge: BADTIME, signed with the key (so the client can
    // trust it) and carrying our time in Other Data.
    let skewed = now() - 1_000;
    let (request, mut verifier) = signed("home.example", RecordType::AXFR, &good, skewed);
    let before = now();
    let messages = stream(server.addr, &request).await;
    let after = now();
    let answer = Message::from_vec(&messages[0]).unwrap();
    assert_eq!(answer.metadata.response_code, ResponseCode::NotAuth);
    assert!(answer.answers.is_empty());
    let tsig = tsig_of(&messages[0]);
    assert_eq!(tsig.data.error, Some(TsigError::BadTime));
    assert_eq!(tsig.data.time, skewed, "time signed is the request's");
    let mut ours = [0u8; 8];
    ours[2..].copy_from_slice(&tsig.data.other);
    let ours = u64::from_be_bytes(ours);
    assert!(
        (before..=after).contains(&ours),
        "{ours} in {before}..={after}"
    );
    verifier
        .verify(&messages[0])
        .expect("the BADTIME answer is signed");

    // Unsigned, with a key configured: REFUSED (as Knot answers), over TCP and UDP.
    for transport in [Transport::Tcp, Transport::Udp] {
        let answer = ask(server.addr, "home.example", RecordType::AXFR, transport).await;
        assert_eq!(
            answer.metadata.response_code,
            ResponseCode::Refused,
            "{transport:?}"
        );
        assert!(answer.answers.is_empty());
    }
    // Plain questions still get plain answers.
    let web = ask(
        server.addr,
        "app7.home.example",
        RecordType::A,
        Transport::Udp,
    )
    .await;
    assert_eq!(addresses(&web), ["10.0.0.8"]);
    assert!(
        Message::from_vec(
            &exchange(
                server.addr,
                &crate::support::query("app7.home.example", RecordType::A)
                    .to_vec()
                    .unwrap(),
                Transport::Udp
            )
            .await
            .unwrap()
        )
        .unwrap()
        .signature
        .is_none()
    );

    // A signed question over UDP is answered and signed.
    let (request, mut verifier) = signed("app7.home.example", RecordType::A, &good, now());
    let bytes = exchange(server.addr, &request, Transport::Udp)
        .await
        .unwrap();
    let answer = verifier.verify(&bytes).expect("a signed answer");
    assert_eq!(addresses(&answer), ["10.0.0.8"]);
    server.stop().await;

    // A good signature from an address outside --transfer-allow: REFUSED (signed).
    let server = keyed_server(&services(3), "127.0.0.2/32", &[]).await;
    let (request, mut verifier) = signed("home.example", RecordType::AXFR, &good, now());
    let messages = stream(server.addr, &request).await;
    let answer = verifier.verify(&messages[0]).expect("signed");
    assert_eq!(answer.metadata.response_code, ResponseCode::Refused);
    assert!(answer.answers.is_empty());
    server.stop().await;
}

/// Polls `addr` until it answers the SOA of `zone` with a serial equal to `wanted`.
async fn wait_for_serial(addr: SocketAddr, zone: &str, wanted: u32) {
    let start = Instant::now();
    loop {
        let answer = exchange(
            addr,
            &crate::support::query(zone, RecordType::SOA)
                .to_vec()
                .unwrap(),
            Transport::Udp,
        )
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

fn serial(message: &Message) -> Option<u32> {
    message.answers.iter().find_map(|r| match &r.data {
        RData::SOA(soa) => Some(soa.serial),
        _ => None,
    })
}

/// Our server (NOTIFY to Knot) and Knot as its secondary with `secret` for our key,
/// started again on another port when another test took Knot's.
async fn server_and_knot(dir: &std::path::Path, secret: &str) -> (TestServer, SocketAddr, Peer) {
    let log = dir.join("knot.log");
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    for _ in 0..5 {
        let port = free_port();
        let knot: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let notify = knot.to_string();
        let server = keyed_server(&services(3), "127.0.0.1/32", &["--notify", &notify]).await;
        let mut peer = start_knot_keyed(
            dir,
            port,
            &[KnotZone::Secondary("home.example.", server.addr)],
            Some((NAME, "hmac-sha256", secret)),
            Stdio::from(std::fs::File::create(&log).unwrap()),
        );
        if answers_or_exits(&mut peer, knot, "home.example", read_log).await {
            return (server, knot, peer);
        }
        server.stop().await;
    }
    panic!("Knot exited 5 times: {}", read_log());
}

#[tokio::test]
async fn knot_with_the_key_transfers_and_follows_a_signed_notify() {
    if !have("knotd") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (server, knot, _peer) = server_and_knot(dir.path(), SECRET).await;
    let first = serial(&server.ask("home.example", RecordType::SOA).await).unwrap();
    wait_for_serial(knot, "home.example", first).await;
    let app = ask(knot, "app2.home.example", RecordType::A, Transport::Udp).await;
    assert_eq!(addresses(&app), ["10.0.0.3"]);

    // A change: only the (signed) NOTIFY brings it before Knot's hourly refresh; Knot
    // drops a NOTIFY whose signature fails (its ACL requires the key).
    std::fs::write(
        server.path("objects.yaml"),
        services(3) + &lb_service("new", "apps", Some("new.home.example"), &["10.9.9.9"]),
    )
    .unwrap();
    server
        .wait_for("new.home.example", RecordType::A, |m| !m.answers.is_empty())
        .await;
    let second = serial(&server.ask("home.example", RecordType::SOA).await).unwrap();
    wait_for_serial(knot, "home.example", second).await;
    let new = ask(knot, "new.home.example", RecordType::A, Transport::Udp).await;
    assert_eq!(addresses(&new), ["10.9.9.9"]);
    // Knot's replies are signed and verify against our NOTIFY's MAC: acknowledged.
    let to = knot.to_string();
    let start = Instant::now();
    loop {
        let metrics = crate::support::scrape(&server);
        let labels = [("to", to.as_str())];
        if crate::support::sample(&metrics, "k8s_gateway_notify_acknowledged_total", &labels) >= 1.0
        {
            break;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "no NOTIFY acknowledged: {metrics}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    server.stop().await;
}

#[tokio::test]
async fn knot_with_a_wrong_secret_does_not_get_the_zone() {
    if !have("knotd") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (server, knot, _peer) = server_and_knot(dir.path(), WRONG_SECRET).await;
    // Knot's refresh (SOA query, signed with the wrong secret) gets BADSIG: wait until
    // we have answered it, then Knot still has no zone.
    let start = Instant::now();
    loop {
        let metrics = crate::support::scrape(&server);
        if crate::support::sample(
            &metrics,
            "k8s_gateway_tsig_rejected_total",
            &[("error", "BADSIG")],
        ) >= 1.0
        {
            break;
        }
        assert!(start.elapsed() < DEADLINE, "no BADSIG answered: {metrics}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let answer = ask(knot, "app2.home.example", RecordType::A, Transport::Udp).await;
    assert_ne!(answer.metadata.response_code, ResponseCode::NoError);
    assert!(answer.answers.is_empty(), "{answer:?}");
    server.stop().await;
}

/// BIND 9 as our secondary with `secret`: started on a port our server notifies (both
/// start again when another test took the port first).
async fn server_and_bind(dir: &std::path::Path, secret: &str) -> (TestServer, SocketAddr, Peer) {
    let key_path = dir.join("tsig.key");
    // The secondary's side as the README gives it: the key file included as tsig-keygen
    // wrote it, and the key named on the primary.
    std::fs::write(
        &key_path,
        format!("key \"{NAME}\" {{\n\talgorithm hmac-sha256;\n\tsecret \"{secret}\";\n}};\n"),
    )
    .unwrap();
    let d = dir.display();
    let log = dir.join("named.log");
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    for _ in 0..5 {
        let port = free_port();
        let notify = format!("127.0.0.1:{port}");
        let server = keyed_server(&services(3), "127.0.0.1/32", &["--notify", &notify]).await;
        let conf = format!(
            "options {{ directory \"{d}\"; pid-file \"{d}/named.pid\"; listen-on port {port} {{ 127.0.0.1; }};\n\
             listen-on-v6 {{ none; }}; recursion no; dnssec-validation no; notify no; }};\n\
             controls {{ }};\n\
             include \"{k}\";\n\
             zone \"home.example\" {{ type secondary; file \"{d}/home.example.db\";\n\
             primaries {{ 127.0.0.1 port {p} key \"{NAME}\"; }}; allow-notify {{ 127.0.0.1; }}; }};\n",
            k = key_path.display(),
            p = server.addr.port(),
        );
        std::fs::write(dir.join("named.conf"), conf).unwrap();
        let mut peer = Peer(
            Command::new("named")
                .args(["-g", "-c"])
                .arg(dir.join("named.conf"))
                .stdout(Stdio::null())
                .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
                .spawn()
                .expect("start named"),
        );
        let addr: SocketAddr = notify.parse().unwrap();
        if answers_or_exits(&mut peer, addr, "home.example", read_log).await {
            return (server, addr, peer);
        }
        server.stop().await;
    }
    panic!("named exited 5 times: {}", read_log());
}

/// BIND 9 with the key transfers the zone and follows a change through our signed
/// NOTIFY (RFC 8945 §5.3; RFC 1996): its refresh is an hour away, so only the NOTIFY
/// brings the change within the deadline.
#[tokio::test]
async fn bind_with_the_key_transfers_and_follows_a_signed_notify() {
    if !have("named") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (server, bind, _peer) = server_and_bind(dir.path(), SECRET).await;
    let read_log = || std::fs::read_to_string(dir.path().join("named.log")).unwrap_or_default();
    let ours = serial(&server.ask("home.example", RecordType::SOA).await).unwrap();
    wait_for_serial(bind, "home.example", ours).await;
    let app = ask(bind, "app1.home.example", RecordType::A, Transport::Udp).await;
    assert_eq!(addresses(&app), ["10.0.0.2"]);
    assert!(
        read_log().contains("Transfer status: success"),
        "{}",
        read_log()
    );
    // A new Service: our serial moves, the signed NOTIFY tells BIND, BIND transfers.
    std::fs::write(server.path("objects.yaml"), services(4)).unwrap();
    server
        .wait_for("app3.home.example", RecordType::A, |m| {
            !m.answers.is_empty()
        })
        .await;
    let next = serial(&server.ask("home.example", RecordType::SOA).await).unwrap();
    assert_ne!(next, ours);
    wait_for_serial(bind, "home.example", next).await;
    let new = ask(bind, "app3.home.example", RecordType::A, Transport::Udp).await;
    assert_eq!(addresses(&new), ["10.0.0.4"], "{}", read_log());
    server.stop().await;
}

/// BIND 9 with another secret under the same key name gets BADSIG (RFC 8945 §5.2.2),
/// never the zone.
#[tokio::test]
async fn bind_with_a_wrong_secret_does_not_get_the_zone() {
    if !have("named") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (server, bind, _peer) = server_and_bind(dir.path(), WRONG_SECRET).await;
    let start = Instant::now();
    loop {
        let metrics = crate::support::scrape(&server);
        if crate::support::sample(
            &metrics,
            "k8s_gateway_tsig_rejected_total",
            &[("error", "BADSIG")],
        ) >= 1.0
        {
            break;
        }
        assert!(start.elapsed() < DEADLINE, "no BADSIG answered: {metrics}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let answer = ask(bind, "app2.home.example", RecordType::A, Transport::Udp).await;
    assert_ne!(answer.metadata.response_code, ResponseCode::NoError);
    assert!(answer.answers.is_empty(), "{answer:?}");
    server.stop().await;
}

#[tokio::test]
async fn a_signed_udp_answer_stays_within_the_limit_with_tc() {
    // 29 A records on a 17-letter name fill exactly 512 bytes (no EDNS): the TSIG record
    // does not fit too, so the signed answer is the question alone with TC, signed, and
    // TCP has the whole answer, signed (RFC 8945 §5.3, RFC 1035 §4.2.1).
    let targets: Vec<String> = (1..=29).map(|i| format!("10.1.0.{i}")).collect();
    let manifests = format!(
        "apiVersion: externaldns.k8s.io/v1alpha1\nkind: DNSEndpoint\nmetadata: {{name: big, namespace: network}}\nspec:\n  endpoints:\n  - {{dnsName: a2345678901234567.home.example, recordType: A, targets: [{}]}}\n",
        targets.join(", ")
    );
    let server = keyed_server(&manifests, "127.0.0.1/32", &[]).await;
    let good = signer(NAME, TsigAlgorithm::HmacSha256, SECRET);
    let name = "a2345678901234567.home.example";
    let unsigned = ask(server.addr, name, RecordType::A, Transport::Udp).await;
    assert_eq!(unsigned.answers.len(), 29, "fits unsigned");
    let (request, mut verifier) = signed(name, RecordType::A, &good, now());
    let bytes = exchange(server.addr, &request, Transport::Udp)
        .await
        .unwrap();
    assert!(bytes.len() <= 512, "{} bytes", bytes.len());
    let answer = verifier.verify(&bytes).expect("signed");
    assert!(answer.metadata.truncation);
    assert!(answer.answers.is_empty());
    let (request, mut verifier) = signed(name, RecordType::A, &good, now());
    let bytes = exchange(server.addr, &request, Transport::Tcp)
        .await
        .unwrap();
    let answer = verifier.verify(&bytes).expect("signed");
    assert_eq!(answer.answers.len(), 29);
    server.stop().await;
}
