//! Bad input in the manifests folder: a symbolic link loop, a FIFO, a 100 MB file, a
//! folder of 1,000 files (20,000 in an ignored test), a file rewritten while it is read.
//! Each bad file is reported (warning and `k8s_gateway_manifest_reload_errors_total`) and
//! the rest serves.

use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use crate::fixtures::{lb_service, serving_web_file};
use crate::support::{TestServer, addresses, rcode, sample, scrape};

fn reload_errors(server: &TestServer) -> f64 {
    sample(
        &scrape(server),
        "k8s_gateway_manifest_reload_errors_total",
        &[],
    )
}

#[tokio::test]
async fn a_symlink_loop_a_fifo_and_a_100_mb_file_are_skipped_and_the_rest_serves() {
    let server = serving_web_file().await;
    assert_eq!(reload_errors(&server), 0.0);
    let dir = server.dir.path();
    std::fs::create_dir(dir.join("sub")).unwrap();
    std::os::unix::fs::symlink("..", dir.join("sub/up")).unwrap();
    std::os::unix::fs::symlink("loop.yaml", dir.join("loop.yaml")).unwrap();
    // Opening a FIFO for reading waits for a writer: the loader must not.
    let status = std::process::Command::new("mkfifo")
        .arg(dir.join("pipe.yaml"))
        .status()
        .expect("mkfifo runs");
    assert!(status.success());
    // 300 MB, sparse: over the 256 MiB limit.
    std::fs::File::create(dir.join("huge.yaml"))
        .unwrap()
        .set_len(300_000_000)
        .unwrap();
    // Written last: once it serves, a reload has read everything above.
    std::fs::write(
        dir.join("sub/later.yaml"),
        lb_service("later", "apps", Some("later.home.example"), &["10.0.0.2"]),
    )
    .unwrap();
    server
        .wait_for("later.home.example", RecordType::A, |m| {
            addresses(m) == ["10.0.0.2"]
        })
        .await;
    assert_eq!(
        addresses(&server.ask("web.home.example", RecordType::A).await),
        ["10.0.0.1"]
    );
    // The loop, the link to itself, the FIFO and the big file, each at least once.
    let errors = reload_errors(&server);
    assert!(errors >= 4.0, "{errors} reload errors");
    server.stop().await;
}

#[tokio::test]
async fn a_folder_of_1000_files_serves_every_name() {
    a_folder_of_files_serves_every_name(1_000).await;
}

#[tokio::test]
#[ignore = "20,000 files: see the README, Scale tests"]
async fn a_folder_of_20000_files_serves_every_name() {
    a_folder_of_files_serves_every_name(20_000).await;
}

/// `count` files of one Service each, moved into the watched folder at once; one
/// name in twenty is asked, and the last.
async fn a_folder_of_files_serves_every_name(count: usize) {
    let server = serving_web_file().await;
    let many = server.path("many");
    // Filled beside the watched folder, then moved in whole: one reload of every file.
    let staging = tempfile::tempdir().unwrap();
    for i in 0..count {
        let text = lb_service(
            &format!("s{i}"),
            "apps",
            Some(&format!("s{i}.home.example")),
            &[&format!("10.1.{}.{}", i / 250, i % 250 + 1)],
        );
        std::fs::write(staging.path().join(format!("s{i:05}.yaml")), text).unwrap();
    }
    std::fs::rename(staging.path(), &many)
        .or_else(|_| copy_dir(staging.path(), &many))
        .unwrap();
    // Reading and building 20,000 objects takes an unoptimised test build longer than
    // the usual deadline: wait for the last name with a deadline of its own.
    let last = format!("s{}.home.example", count - 1);
    let start = Instant::now();
    loop {
        let answer = server.ask(&last, RecordType::A).await;
        if rcode(&answer) == ResponseCode::NoError && !answer.answers.is_empty() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(180),
            "{last} not served in time"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for i in (0..count).step_by(count / 20) {
        let name = format!("s{i}.home.example");
        let want = format!("10.1.{}.{}", i / 250, i % 250 + 1);
        assert_eq!(
            addresses(&server.ask(&name, RecordType::A).await),
            [want],
            "{name}"
        );
    }
    assert_eq!(reload_errors(&server), 0.0);
    server.stop().await;
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        std::fs::copy(entry.path(), to.join(entry.file_name()))?;
    }
    Ok(())
}

#[tokio::test]
async fn a_file_rewritten_while_it_is_read_never_takes_the_rest_down() {
    let server = serving_web_file().await;
    let churn = server.path("churn.yaml");
    let temporary = server.path(".churn.yaml.tmp");
    for round in 0..100u32 {
        let ip = format!("10.2.0.{}", round % 250 + 1);
        let text = lb_service("churn", "apps", Some("churn.home.example"), &[&ip]);
        if round % 2 == 0 {
            // In place: truncated, then written in two halves, as a plain `>` does.
            let (head, tail) = text.split_at(text.len() / 2);
            std::fs::write(&churn, head).unwrap();
            std::fs::OpenOptions::new()
                .append(true)
                .open(&churn)
                .and_then(|mut f| std::io::Write::write_all(&mut f, tail.as_bytes()))
                .unwrap();
        } else {
            // Atomically, as editors and ConfigMap mounts do.
            std::fs::write(&temporary, &text).unwrap();
            std::fs::rename(&temporary, &churn).unwrap();
        }
        // Whatever the reload saw of churn.yaml, the other file still serves.
        let answer = server.ask("web.home.example", RecordType::A).await;
        assert_eq!(addresses(&answer), ["10.0.0.1"], "round {round}");
    }
    // And the last version is served once the writes stop.
    server
        .wait_for("churn.home.example", RecordType::A, |m| {
            addresses(m) == ["10.2.0.100"]
        })
        .await;
    server.stop().await;
}
