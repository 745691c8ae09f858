//! The manifests folder is watched: new, edited and removed files change the answers,
//! and the zone is swapped in whole.

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use crate::fixtures::lb_service;
use crate::support::{TestServer, addresses, rcode, sample, scrape};

fn serial(message: &hickory_proto::op::Message) -> u32 {
    match message.answers.first().map(|r| &r.data) {
        Some(hickory_proto::rr::RData::SOA(soa)) => soa.serial,
        other => panic!("no SOA: {other:?}"),
    }
}

#[tokio::test]
async fn new_edited_and_removed_files_reload_the_zone() {
    let server = TestServer::start(
        &lb_service("web", "apps", Some("web.home.example"), &["10.0.0.1"]),
        &[],
    )
    .await;
    let first_serial = serial(&server.ask("home.example", RecordType::SOA).await);

    // A new file.
    std::fs::write(
        server.path("more.yaml"),
        lb_service("new", "apps", Some("new.home.example"), &["10.0.0.2"]),
    )
    .unwrap();
    server
        .wait_for("new.home.example", RecordType::A, |m| {
            addresses(m) == ["10.0.0.2"]
        })
        .await;
    let second_serial = serial(&server.ask("home.example", RecordType::SOA).await);
    assert!(
        second_serial > first_serial,
        "serial {second_serial} after {first_serial}"
    );

    // An edit, written the way editors do: a temporary file renamed over the old one.
    let temporary = server.path(".objects.yaml.swp");
    std::fs::write(
        &temporary,
        lb_service("web", "apps", Some("web.home.example"), &["10.0.0.9"]),
    )
    .unwrap();
    std::fs::rename(&temporary, server.path("objects.yaml")).unwrap();
    server
        .wait_for("web.home.example", RecordType::A, |m| {
            addresses(m) == ["10.0.0.9"]
        })
        .await;

    // A removed file.
    std::fs::remove_file(server.path("more.yaml")).unwrap();
    server
        .wait_for("new.home.example", RecordType::A, |m| {
            rcode(m) == ResponseCode::NXDomain
        })
        .await;
    // What was not removed still serves.
    assert_eq!(
        addresses(&server.ask("web.home.example", RecordType::A).await),
        ["10.0.0.9"]
    );
    server.stop().await;
}

#[tokio::test]
async fn a_broken_edit_keeps_the_rest_serving() {
    let server = TestServer::start(
        &lb_service("web", "apps", Some("web.home.example"), &["10.0.0.1"]),
        &[],
    )
    .await;
    std::fs::write(server.path("broken.yaml"), "kind: [this is not yaml").unwrap();
    std::fs::write(
        server.path("good.yaml"),
        lb_service("good", "apps", Some("good.home.example"), &["10.0.0.3"]),
    )
    .unwrap();
    server
        .wait_for("good.home.example", RecordType::A, |m| {
            addresses(m) == ["10.0.0.3"]
        })
        .await;
    assert_eq!(
        addresses(&server.ask("web.home.example", RecordType::A).await),
        ["10.0.0.1"]
    );
    server.stop().await;
}

/// An editor's swap and backup files, and a save that changes nothing, rebuild nothing:
/// at 100,000 objects a build costs seconds. A broken file read in the same reload says
/// when the reload has been done; the change after it is the one build. (A rebuild for
/// nothing can still hide in the change's coalescing window: the unit tests of
/// `Feed::replace` and of the watch's path filter pin the rule itself.)
#[tokio::test]
async fn a_save_that_changes_nothing_rebuilds_nothing() {
    let web = |ip| lb_service("web", "apps", Some("web.home.example"), &[ip]);
    let server = TestServer::start(&web("10.0.0.1"), &[]).await;
    let counter = |family| sample(&scrape(&server), family, &[]);
    let builds = counter("k8s_gateway_zone_builds_total");
    std::fs::write(server.path(".objects.yaml.swp"), web("10.0.0.7")).unwrap();
    std::fs::write(server.path("objects.yaml~"), web("10.0.0.8")).unwrap();
    std::fs::write(server.path("objects.yaml"), web("10.0.0.1")).unwrap();
    std::fs::write(server.path("broken.yaml"), "kind: [this is not yaml").unwrap();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while counter("k8s_gateway_manifest_reload_errors_total") < 1.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the broken file was never read"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    std::fs::write(server.path("objects.yaml"), web("10.0.0.2")).unwrap();
    server
        .wait_for("web.home.example", RecordType::A, |m| {
            addresses(m) == ["10.0.0.2"]
        })
        .await;
    assert_eq!(counter("k8s_gateway_zone_builds_total"), builds + 1.0);
    server.stop().await;
}
