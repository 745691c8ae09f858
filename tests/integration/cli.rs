//! The binary as users run it: one-line errors with exit code 2, a clean stop on
//! SIGTERM, and the README's first command on the bundled examples.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use hickory_proto::rr::RecordType;

use crate::support::{DEADLINE, Transport, addresses, ask, repo_path};

const BIN: &str = env!("CARGO_BIN_EXE_k8s-gateway");

fn run(args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run the binary")
}

#[test]
fn bad_options_exit_2_with_one_line() {
    let examples = repo_path("examples").to_string_lossy().to_string();
    // (arguments, what the line must mention)
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "serve",
                "--domain",
                "home.example",
                "--manifests",
                &examples,
                "--bogus",
            ],
            "--bogus",
        ),
        (vec!["serve", "--manifests", &examples], "--domain"),
        (
            vec![
                "serve",
                "--domain",
                "home..example",
                "--manifests",
                &examples,
            ],
            "home..example",
        ),
        (
            vec![
                "serve",
                "--domain",
                "home.example",
                "--manifests",
                &examples,
                "--ttl",
                "-5",
            ],
            "-5",
        ),
        (
            vec![
                "serve",
                "--domain",
                "home.example",
                "--manifests",
                "/nonexistent/manifests",
            ],
            "/nonexistent/manifests",
        ),
        (
            vec![
                "serve",
                "--domain",
                "home.example",
                "--manifests",
                &examples,
                "--listen",
                "1.2.3.4",
            ],
            "1.2.3.4",
        ),
        (vec!["frobnicate"], "frobnicate"),
    ];
    for (args, mention) in cases {
        let out = run(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(
            stderr.lines().count(),
            1,
            "{args:?}: one line, got {stderr:?}"
        );
        assert!(stderr.contains(mention), "{args:?}: {stderr}");
    }
}

#[test]
fn environment_variables_configure_like_options() {
    let out = Command::new(BIN)
        .args(["serve", "--manifests", "/nonexistent/env"])
        .env("K8S_GATEWAY_DOMAIN", "home.example,bad domain")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("bad domain"), "{stderr}");
}

/// A server started as the README says, with the address it logged.
struct Running {
    child: Child,
    addr: SocketAddr,
}

fn start(args: &[&str]) -> Running {
    let mut child = Command::new(BIN)
        .args(args)
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("start the binary");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(addr) = line.split("serving DNS over UDP and TCP address=").nth(1) {
                let _ = tx.send(addr.trim().to_string());
            }
        }
    });
    let addr = rx
        .recv_timeout(DEADLINE)
        .expect("the server logs its address")
        .parse()
        .unwrap();
    Running { child, addr }
}

#[tokio::test]
async fn readme_command_serves_the_examples_and_sigterm_stops_cleanly() {
    let examples = repo_path("examples").to_string_lossy().to_string();
    let mut server = start(&[
        "serve",
        "--domain",
        "home.example",
        "--manifests",
        &examples,
        "--listen",
        "127.0.0.1:0",
        "--http-listen",
        "127.0.0.1:0",
        "--debug-listen",
        "127.0.0.1:0",
    ]);
    for transport in [Transport::Udp, Transport::Tcp] {
        let answer = ask(
            server.addr,
            "home-assistant.home.example",
            RecordType::A,
            transport,
        )
        .await;
        assert_eq!(addresses(&answer), ["192.168.10.21"], "{transport:?}");
    }
    let status = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = std::time::Instant::now() + DEADLINE;
    let code = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status.code();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still running after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(code, Some(0));
}

#[test]
fn render_prints_the_zone_files() {
    let examples = repo_path("examples").to_string_lossy().to_string();
    let out = run(&[
        "render",
        "--domain",
        "home.example",
        "--manifests",
        &examples,
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("$ORIGIN home.example.\n"), "{text}");
    assert!(
        text.contains(
            "home-assistant.home.example.\t60\tIN\tA\t192.168.10.21\t; Service home/home-assistant"
        ),
        "{text}"
    );
}

#[test]
fn json_logs_are_one_object_per_line() {
    let examples = repo_path("examples").to_string_lossy().to_string();
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--domain",
            "home.example",
            "--manifests",
            &examples,
        ])
        .args([
            "--listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            "--debug-listen",
            "off",
            "--log-format",
            "json",
        ])
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let first = lines.next().expect("a log line").unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let json: serde_json::Value =
        serde_json::from_str(&first).unwrap_or_else(|e| panic!("{first}: {e}"));
    assert_eq!(json["level"], "INFO", "{first}");
    assert_eq!(json["fields"]["message"], "zone changed", "{first}");
    assert!(json["fields"]["names"].as_u64().unwrap() > 0, "{first}");
}
