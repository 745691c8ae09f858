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
        (
            vec![
                "serve",
                "--domain",
                "home.example",
                "--manifests",
                &examples,
                "--debug-listen",
                "localhost",
            ],
            "--debug-listen",
        ),
        (
            vec![
                "serve",
                "--domain",
                "home.example",
                "--manifests",
                &examples,
                "--fallthrough",
                "pihole.lan",
            ],
            "--fallthrough",
        ),
        (
            vec![
                "serve",
                "--domain",
                "home.example",
                "--manifests",
                &examples,
                "--fallthrough",
                "127.0.0.1:0",
            ],
            "--fallthrough",
        ),
        (
            vec![
                "serve",
                "--domain",
                "home.example",
                "--manifests",
                &examples,
                "--reverse-zone",
                "192.168.10.0/23",
            ],
            "--reverse-zone",
        ),
        (
            vec![
                "serve",
                "--domain",
                "home.example",
                "--manifests",
                &examples,
                "--transfer-allow",
                "pihole.lan",
            ],
            "--transfer-allow",
        ),
        (
            vec![
                "serve",
                "--domain",
                "home.example",
                "--manifests",
                &examples,
                "--notify",
                "pihole.lan:53",
            ],
            "--notify",
        ),
        // Files have no API to record Events on.
        (
            vec![
                "serve",
                "--domain",
                "home.example",
                "--manifests",
                &examples,
                "--events",
            ],
            "--events",
        ),
    ];
    for (args, mention) in cases {
        exits_2_with_one_line(&run(&args), mention, &format!("{args:?}"));
    }
}

/// A usage error: exit code 2 and one line on stderr that mentions `mention`.
fn exits_2_with_one_line(out: &std::process::Output, mention: &str, case: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{case}: {stderr}");
    assert_eq!(
        stderr.lines().count(),
        1,
        "{case}: one line, got {stderr:?}"
    );
    assert!(stderr.contains(mention), "{case}: {stderr}");
}

/// Every port on loopback and chosen by the kernel, the debug views off.
pub const LOOPBACK: [&str; 6] = [
    "--listen",
    "127.0.0.1:0",
    "--http-listen",
    "127.0.0.1:0",
    "--debug-listen",
    "off",
];

#[test]
fn bad_cluster_values_exit_2_with_one_line() {
    let readable = repo_path("Cargo.toml").to_string_lossy().to_string();
    let prod = format!("prod={readable}");
    let base = [&["serve", "--domain", "home.example"][..], &LOOPBACK].concat();
    // (--cluster arguments, K8S_GATEWAY_CLUSTER, what the line must mention)
    let cases: Vec<(Vec<&str>, Option<&str>, &str)> = vec![
        (vec!["--cluster", "prod"], None, "NAME=KUBECONFIG"),
        (
            vec!["--cluster", "Prod=x"],
            None,
            "\"Prod\" is not a cluster name",
        ),
        (vec!["--cluster", "prod_1=x"], None, "prod_1"),
        (vec!["--cluster", "prod=x:"], None, "context"),
        (
            vec!["--cluster", "prod=/nonexistent/kubeconfig"],
            None,
            "--cluster prod=/nonexistent/kubeconfig",
        ),
        (vec!["--cluster", &prod, "--cluster", &prod], None, "twice"),
        (
            vec!["--cluster", &prod, "--kubeconfig", &readable],
            None,
            "--kubeconfig",
        ),
        (
            vec!["--cluster", &prod, "--context", "x"],
            None,
            "--context",
        ),
        // Readable, but not a kubeconfig: named with its cluster when it is read.
        (vec!["--cluster", &prod], None, "--cluster prod="),
        (
            vec![],
            Some("lab=/nonexistent/lab,prod=/nonexistent/prod"),
            "--cluster lab=/nonexistent/lab",
        ),
    ];
    for (args, env, mention) in cases {
        let mut command = Command::new(BIN);
        command.args(&base).args(&args).env_remove("RUST_LOG");
        if let Some(env) = env {
            command.env("K8S_GATEWAY_CLUSTER", env);
        }
        let out = command.output().expect("run the binary");
        exits_2_with_one_line(&out, mention, &format!("{args:?} {env:?}"));
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
pub struct Running {
    pub child: Child,
    pub addr: SocketAddr,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(args: &[&str]) -> Running {
    start_with_env(args, &[])
}

/// The binary with `args` and `env` set, once it logs its DNS address.
pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Running {
    let mut child = Command::new(BIN)
        .args(args)
        .envs(env.iter().copied())
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
        .args(LOOPBACK)
        .args(["--log-format", "json"])
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

#[test]
fn explain_prints_a_table_and_exits_0_when_served_1_when_not() {
    let examples = repo_path("examples").to_string_lossy().to_string();
    let explain = |name: &str, extra: &[&str]| {
        let mut args = vec![
            "explain",
            name,
            "--domain",
            "home.example",
            "--manifests",
            &examples,
        ];
        args.extend_from_slice(extra);
        run(&args)
    };
    // (name, exit code, a line the table must hold)
    let cases = [
        // Served: the records and the object behind each.
        (
            "Immich.home.example",
            0,
            "  A     60   192.168.10.50  HTTPRoute photos/immich",
        ),
        // Served by a wildcard, which the summary names.
        (
            "pr-12.apps.home.example",
            0,
            "wildcard: *.apps.home.example.",
        ),
        // In our domain, but nothing publishes it.
        ("nope.home.example", 1, "status:  NXDOMAIN"),
        // Not ours at all.
        ("example.org", 1, "status:  REFUSED"),
    ];
    for (name, code, line) in cases {
        let out = explain(name, &[]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(code), "{name}: {text}");
        assert!(
            text.lines().any(|l| l == line),
            "{name}: no {line:?} in\n{text}"
        );
        // Logs stay out of the way: stderr is empty when nothing is wrong.
        assert!(
            out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // JSON is the /explain document.
    let out = explain("photos.home.example", &["--output", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["status"], "NOERROR");
    assert_eq!(json["records"][0]["type"], "CNAME");
    assert_eq!(
        json["records"][0]["objects"][0],
        "DNSEndpoint network/lan-records"
    );

    // Bad options: exit 2, one line.
    for (extra, mention) in [
        (vec!["--output", "yaml"], "yaml"),
        (vec!["--namespace", "apps"], "--namespace"),
    ] {
        let out = explain("immich.home.example", &extra);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(mention), "{err}");
    }
    let out = explain("bad name", &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("\"bad name\" is not a DNS name"));
}
