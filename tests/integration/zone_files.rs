//! `--zone-file`: RFC 1035 records served beside the objects, below every kind, each
//! named by its file and line, a bad record costing only itself, reloaded on change.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};
use serde_json::Value;

use crate::fixtures::lb_service;
use crate::peers::{KnotZone, assert_answers_like_knot, start_answering, start_knot_zones};
use crate::support::{
    DEADLINE, TestServer, Transport, addresses, answers, ask, debug_get, have, rcode, sample,
    scrape,
};

/// A zone of every served type, TXT with decimal escapes (`\059` is `;`, `\034` a quote).
const HOME: &str = "$ORIGIN home.example.\n$TTL 300\n\
@ IN SOA ns1 hostmaster 1 3600 600 1209600 60\n\
@ IN NS ns1\n\
ns1 A 192.168.1.53\n\
nas 120 IN A 192.168.1.20\n\
\tAAAA fd00::20\n\
files CNAME nas\n\
note TXT \"a\\059b\\034quoted\\034\"\n\
_smb._tcp SRV 0 5 445 nas\n";

fn reload_errors(server: &TestServer) -> f64 {
    sample(
        &scrape(server),
        "k8s_gateway_manifest_reload_errors_total",
        &[],
    )
}

fn txt(message: &hickory_proto::op::Message) -> Vec<Vec<u8>> {
    message
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::TXT(txt) => Some(txt.txt_data.concat()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_zone_file_alone_answers_every_served_type_over_udp_and_tcp() {
    let server = TestServer::start_zone_files(&[("home.zone", HOME)], &[]).await;
    for transport in [Transport::Udp, Transport::Tcp] {
        let a = ask(server.addr, "nas.home.example", RecordType::A, transport).await;
        assert_eq!(addresses(&a), ["192.168.1.20"], "{transport:?}");
        assert_eq!(a.answers[0].ttl, 120, "{transport:?}: the record's own TTL");
        let aaaa = ask(server.addr, "nas.home.example", RecordType::AAAA, transport).await;
        assert_eq!(addresses(&aaaa), ["fd00::20"], "{transport:?}");
        assert_eq!(aaaa.answers[0].ttl, 300, "{transport:?}: $TTL");
        let cname = ask(server.addr, "files.home.example", RecordType::A, transport).await;
        assert_eq!(
            answers(&cname)[0],
            "files.home.example. CNAME nas.home.example.",
            "{transport:?}"
        );
        let note = ask(server.addr, "note.home.example", RecordType::TXT, transport).await;
        assert_eq!(txt(&note), [b"a;b\"quoted\"".to_vec()], "{transport:?}");
        let srv = ask(
            server.addr,
            "_smb._tcp.home.example",
            RecordType::SRV,
            transport,
        )
        .await;
        assert_eq!(
            answers(&srv),
            ["_smb._tcp.home.example. SRV 0 5 445 nas.home.example."],
            "{transport:?}"
        );
    }
    // The file's SOA is not ours: our apex serves our own.
    let soa = server.ask("home.example", RecordType::SOA).await;
    let RData::SOA(soa) = &soa.answers[0].data else {
        panic!("no SOA");
    };
    assert_ne!(soa.serial, 1);
    assert_eq!(reload_errors(&server), 0.0);
    server.stop().await;
}

#[tokio::test]
async fn a_zone_file_answers_like_knot_loading_the_same_file() {
    if !have("knotd") {
        return;
    }
    let server = TestServer::start_zone_files(&[("home.zone", HOME)], &[]).await;
    let dir = tempfile::tempdir().unwrap();
    let (_peer, knot) = start_answering(dir.path(), |port, log| {
        start_knot_zones(
            dir.path(),
            port,
            &[KnotZone::File("home.example.", HOME)],
            log,
        )
    })
    .await;
    // Positive answers of each type (the apex SOA and NS are ours, not the file's).
    let questions = [
        ("nas.home.example", RecordType::A),
        ("nas.home.example", RecordType::AAAA),
        ("files.home.example", RecordType::A),
        ("files.home.example", RecordType::CNAME),
        ("note.home.example", RecordType::TXT),
        ("_smb._tcp.home.example", RecordType::SRV),
        ("ns1.home.example", RecordType::A),
    ];
    assert_answers_like_knot(server.addr, knot, &questions).await;
    server.stop().await;
}

#[tokio::test]
async fn a_bad_record_and_an_unserved_type_are_one_warning_each_and_the_rest_serves() {
    let zone = "$ORIGIN home.example.\n\
good A 10.0.0.1\n\
bad A 10.0.0.300\n\
mail MX 10 good\n\
after A 10.0.0.2\n";
    let server = TestServer::start_zone_files(&[("home.zone", zone)], &[]).await;
    assert_eq!(
        addresses(&server.ask("good.home.example", RecordType::A).await),
        ["10.0.0.1"]
    );
    assert_eq!(
        addresses(&server.ask("after.home.example", RecordType::A).await),
        ["10.0.0.2"]
    );
    for name in ["bad.home.example", "mail.home.example"] {
        let answer = server.ask(name, RecordType::MX).await;
        assert_eq!(rcode(&answer), ResponseCode::NXDomain, "{name}");
    }
    assert_eq!(reload_errors(&server), 2.0);
    server.stop().await;
}

#[tokio::test]
async fn the_warnings_name_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("home.zone");
    std::fs::write(
        &file,
        "$ORIGIN home.example.\ngood A 10.0.0.1\nbad A 10.0.0.300\nmail MX 10 good\n",
    )
    .unwrap();
    let other = dir.path().join("other.zone");
    std::fs::write(&other, "$ORIGIN other.example.\nweb A 10.0.0.9\n").unwrap();
    let paths = format!("{},{}", file.display(), other.display());
    let mut child = Command::new(env!("CARGO_BIN_EXE_k8s-gateway"))
        .args(["serve", "--domain", "home.example", "--zone-file", &paths])
        .args(["--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"])
        .args(["--debug-listen", "off"])
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("start the binary");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut logged = Vec::new();
    // Everything the first load warns comes before the server listens.
    while let Ok(line) = rx.recv_timeout(DEADLINE) {
        let listening = line.contains("serving DNS over UDP and TCP");
        logged.push(line);
        if listening {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let warnings: Vec<&String> = logged.iter().filter(|l| l.contains("WARN")).collect();
    let named = |text: &str| warnings.iter().filter(|l| l.contains(text)).count();
    let home = file.display().to_string();
    assert_eq!(
        named(&format!("{home}: line 3: A record")),
        1,
        "{logged:#?}"
    );
    assert_eq!(
        named(&format!("{home}: line 4: type MX is not served")),
        1,
        "{logged:#?}"
    );
    let other = other.display().to_string();
    assert_eq!(
        named(&format!(
            "{other}: its origin other.example. is none of the domains"
        )),
        1,
        "{logged:#?}"
    );
    assert_eq!(warnings.len(), 3, "{logged:#?}");
}

#[tokio::test]
async fn an_object_publishing_the_same_name_wins_and_explain_shows_the_file_as_the_loser() {
    let zones = tempfile::tempdir().unwrap();
    let file = zones.path().join("home.zone");
    std::fs::write(
        &file,
        "$ORIGIN home.example.\nweb A 10.0.0.99\nonly A 10.0.0.98\n",
    )
    .unwrap();
    let path = file.to_string_lossy().to_string();
    let server = TestServer::start(
        &lb_service("web", "apps", Some("web.home.example"), &["10.0.0.1"]),
        &["--zone-file", &path],
    )
    .await;
    assert_eq!(
        addresses(&server.ask("web.home.example", RecordType::A).await),
        ["10.0.0.1"]
    );
    assert_eq!(
        addresses(&server.ask("only.home.example", RecordType::A).await),
        ["10.0.0.98"]
    );
    let (_, body) = debug_get(&server, "/explain?name=web.home.example").await;
    let json: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["winner"], "Service", "{body}");
    assert_eq!(json["shadowed"][0]["kind"], "ZoneFile", "{body}");
    assert_eq!(
        json["shadowed"][0]["object"],
        format!("ZoneFile {path}/line 2"),
        "{body}"
    );
    let (_, body) = debug_get(&server, "/explain?name=only.home.example").await;
    let json: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["winner"], "ZoneFile", "{body}");
    assert_eq!(
        json["records"][0]["objects"][0],
        format!("ZoneFile {path}/line 3"),
        "{body}"
    );
    let (_, zone) = debug_get(&server, "/zone").await;
    assert!(zone.contains(&format!("ZoneFile {path}/line 3")), "{zone}");
    server.stop().await;
}

#[tokio::test]
async fn an_edited_zone_file_is_reloaded() {
    let server = TestServer::start_zone_files(
        &[("home.zone", "$ORIGIN home.example.\nnas A 10.0.0.1\n")],
        &[],
    )
    .await;
    assert_eq!(
        addresses(&server.ask("nas.home.example", RecordType::A).await),
        ["10.0.0.1"]
    );
    // As an editor saves: a new file renamed over the old one.
    let staged = server.path(".home.zone.tmp");
    std::fs::write(
        &staged,
        "$ORIGIN home.example.\nnas A 10.0.0.2\nnew A 10.0.0.3\n",
    )
    .unwrap();
    std::fs::rename(&staged, server.path("home.zone")).unwrap();
    server
        .wait_for("new.home.example", RecordType::A, |m| {
            addresses(m) == ["10.0.0.3"]
        })
        .await;
    assert_eq!(
        addresses(&server.ask("nas.home.example", RecordType::A).await),
        ["10.0.0.2"]
    );
    server.stop().await;
}

#[tokio::test]
async fn the_origin_is_the_origin_directive_else_the_soa_owner_and_one_not_ours_is_skipped() {
    let server = TestServer::start_zone_files(
        &[
            ("by-origin.zone", "$ORIGIN lab.home.example.\nweb A 10.0.1.1\n"),
            (
                "by-soa.zone",
                "home.example. 60 IN SOA ns1.home.example. hostmaster.home.example. 1 3600 600 1209600 60\nnas A 10.0.2.1\n",
            ),
            ("not-ours.zone", "$ORIGIN other.example.\nweb A 10.0.3.1\n"),
        ],
        &[],
    )
    .await;
    assert_eq!(
        addresses(&server.ask("web.lab.home.example", RecordType::A).await),
        ["10.0.1.1"]
    );
    assert_eq!(
        addresses(&server.ask("nas.home.example", RecordType::A).await),
        ["10.0.2.1"]
    );
    // Not ours: nothing of it is served, and the file is one error.
    let other = server.ask("web.other.example", RecordType::A).await;
    assert_eq!(rcode(&other), ResponseCode::Refused);
    assert_eq!(reload_errors(&server), 1.0);
    server.stop().await;
}

#[tokio::test]
async fn a_configmap_update_of_a_mounted_zone_file_is_reloaded() {
    // A ConfigMap as the kubelet mounts it: the file is a link through `..data`, which
    // an update points at a new timestamped folder (renamed over, then the old removed).
    let mount = tempfile::tempdir().unwrap();
    let version = |name: &str, text: &str| {
        std::fs::create_dir(mount.path().join(name)).unwrap();
        std::fs::write(mount.path().join(name).join("home.zone"), text).unwrap();
    };
    version("..2026_01", "$ORIGIN home.example.\nnas A 10.0.0.1\n");
    std::os::unix::fs::symlink("..2026_01", mount.path().join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/home.zone", mount.path().join("home.zone")).unwrap();
    let path = mount.path().join("home.zone").to_string_lossy().to_string();
    let server = TestServer::start("", &["--zone-file", &path]).await;
    assert_eq!(
        addresses(&server.ask("nas.home.example", RecordType::A).await),
        ["10.0.0.1"]
    );
    version("..2026_02", "$ORIGIN home.example.\nnas A 10.0.0.2\n");
    std::os::unix::fs::symlink("..2026_02", mount.path().join("..data_tmp")).unwrap();
    std::fs::rename(mount.path().join("..data_tmp"), mount.path().join("..data")).unwrap();
    std::fs::remove_dir_all(mount.path().join("..2026_01")).unwrap();
    server
        .wait_for("nas.home.example", RecordType::A, |m| {
            addresses(m) == ["10.0.0.2"]
        })
        .await;
    server.stop().await;
}

#[tokio::test]
async fn a_zone_file_beside_manifests_and_the_cluster_serves_below_both() {
    let api = crate::fake_api::FakeApi::reserve().await;
    api.serve_all();
    api.apply(
        "",
        "services",
        crate::fixtures::service("web", "apps", "web.home.example", "192.168.10.60"),
    );
    let files = tempfile::tempdir().unwrap();
    let nas = "---\napiVersion: externaldns.k8s.io/v1alpha1\nkind: DNSEndpoint\nmetadata: {name: lan, namespace: home}\nspec:\n  endpoints:\n  - {dnsName: nas.home.example, recordType: A, targets: [192.168.1.5]}\n";
    std::fs::create_dir(files.path().join("manifests")).unwrap();
    std::fs::write(files.path().join("manifests/lan.yaml"), nas).unwrap();
    // The file claims both names the objects publish, and one of its own.
    let zone = files.path().join("home.zone");
    std::fs::write(
        &zone,
        "$ORIGIN home.example.\nweb A 10.0.0.1\nnas A 10.0.0.2\nprinter A 192.168.1.30\n",
    )
    .unwrap();
    let manifests = files.path().join("manifests").to_string_lossy().to_string();
    let zone_arg = zone.to_string_lossy().to_string();
    let server = TestServer::start_cluster(
        &api,
        &[
            "--manifests",
            &manifests,
            "--zone-file",
            &zone_arg,
            "--watch-cluster",
        ],
    )
    .await;
    api.serve().await;
    server.wait_ready().await;
    for (name, address) in [
        ("web.home.example", "192.168.10.60"),
        ("nas.home.example", "192.168.1.5"),
        ("printer.home.example", "192.168.1.30"),
    ] {
        assert_eq!(
            addresses(&server.ask(name, RecordType::A).await),
            [address],
            "{name}"
        );
    }
    // The status page names the file's record by file and line.
    let (_, page) = debug_get(&server, "/").await;
    assert!(
        page.contains(&format!("ZoneFile {zone_arg}/line 4")),
        "{page}"
    );
    // An edit of the file reloads beside the cluster's names.
    std::fs::write(&zone, "$ORIGIN home.example.\nprinter A 192.168.1.31\n").unwrap();
    server
        .wait_for("printer.home.example", RecordType::A, |m| {
            addresses(m) == ["192.168.1.31"]
        })
        .await;
    assert_eq!(
        addresses(&server.ask("web.home.example", RecordType::A).await),
        ["192.168.10.60"]
    );
    server.stop().await;
}

#[tokio::test]
async fn kdig_reads_the_txt_escapes_as_knot_writes_them() {
    if !have("kdig") {
        return;
    }
    let server = TestServer::start_zone_files(&[("home.zone", HOME)], &[]).await;
    let port = server.addr.port().to_string();
    for transport in ["+notcp", "+tcp"] {
        let args = ["@127.0.0.1", "-p", &port, transport, "+short"].map(String::from);
        // Off the test's runtime thread, which the server's tasks share.
        let out = tokio::task::spawn_blocking(move || {
            Command::new("kdig")
                .args(args)
                .args(["note.home.example", "TXT"])
                .output()
                .expect("kdig runs")
        })
        .await
        .unwrap();
        assert!(out.status.success(), "{out:?}");
        // kdig prints `;` plainly and escapes the quotes.
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            r#""a;b\"quoted\"""#,
            "{transport}"
        );
    }
    server.stop().await;
}
