//! Shared by the integration tests: start the real server on 127.0.0.1:0 from manifests
//! in a temporary folder, and talk real DNS to it over UDP and TCP.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Parser;
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use k8s_gateway::app::Server;
use k8s_gateway::config::{Cli, Command, Config};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio_util::sync::CancellationToken;

/// How long a test waits for something that should happen (a reload, an answer).
pub const DEADLINE: Duration = Duration::from_secs(10);

/// A running server and the folder its manifests are read from.
pub struct TestServer {
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    pub server: Option<Server>,
    shutdown: CancellationToken,
}

impl TestServer {
    /// Starts the server on `manifests` (written to `objects.yaml` in a fresh folder),
    /// with `--domain home.example` unless `args` gives domains.
    pub async fn start(manifests: &str, args: &[&str]) -> TestServer {
        let dir = tempfile::tempdir().expect("temporary folder");
        std::fs::write(dir.path().join("objects.yaml"), manifests).expect("write manifests");
        let dir_arg = dir.path().to_string_lossy().to_string();
        TestServer::launch(dir, &["--manifests", &dir_arg], args).await
    }

    /// Starts the server on the cluster behind `api` (a kubeconfig in a fresh folder),
    /// with `--domain home.example` unless `args` gives domains. It serves SERVFAIL until
    /// every kind is listed: see [`TestServer::wait_ready`].
    pub async fn start_cluster(api: &crate::fake_api::FakeApi, args: &[&str]) -> TestServer {
        let dir = tempfile::tempdir().expect("temporary folder");
        let kubeconfig = api.write_kubeconfig(dir.path());
        let kubeconfig = kubeconfig.to_string_lossy().to_string();
        TestServer::launch(dir, &["--kubeconfig", &kubeconfig], args).await
    }

    /// Starts the server on several clusters, one `--cluster NAME=KUBECONFIG` per
    /// `(name, api)` in the order given (each kubeconfig in a folder of its own), with
    /// `--domain home.example` unless `args` gives domains.
    pub async fn start_clusters(
        clusters: &[(&str, &crate::fake_api::FakeApi)],
        args: &[&str],
    ) -> TestServer {
        let dir = tempfile::tempdir().expect("temporary folder");
        let mut source = Vec::new();
        for (name, api) in clusters {
            let folder = dir.path().join(name);
            std::fs::create_dir(&folder).expect("a folder per cluster");
            let kubeconfig = api.write_kubeconfig(&folder);
            source.push("--cluster".to_string());
            source.push(format!("{name}={}", kubeconfig.display()));
        }
        let source: Vec<&str> = source.iter().map(String::as_str).collect();
        TestServer::launch(dir, &source, args).await
    }

    /// Starts the server on zone files only (`(file name, text)`, written to a fresh
    /// folder), with `--domain home.example` unless `args` gives domains.
    pub async fn start_zone_files(files: &[(&str, &str)], args: &[&str]) -> TestServer {
        let dir = tempfile::tempdir().expect("temporary folder");
        let mut paths = Vec::new();
        for (name, text) in files {
            let path = dir.path().join(name);
            std::fs::write(&path, text).expect("write zone file");
            paths.push(path.to_string_lossy().to_string());
        }
        let joined = paths.join(",");
        TestServer::launch(dir, &["--zone-file", &joined], args).await
    }

    /// `serve` on ephemeral loopback ports, with `source` (options and their values) and
    /// then `args`.
    async fn launch(dir: tempfile::TempDir, source: &[&str], args: &[&str]) -> TestServer {
        let mut argv = vec![
            "k8s-gateway",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
        ];
        argv.extend_from_slice(source);
        argv.extend_from_slice(args);
        // Logs show with `RUST_LOG=debug cargo test -- --nocapture`.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        if !argv.contains(&"--debug-listen") {
            argv.extend(["--debug-listen", "127.0.0.1:0"]);
        }
        if !argv.contains(&"--domain") {
            argv.extend(["--domain", "home.example"]);
        }
        let Command::Serve(serve) = Cli::try_parse_from(argv).expect("valid arguments").command
        else {
            panic!("not serve");
        };
        let config = Config::from_args(serve).expect("valid config");
        let shutdown = CancellationToken::new();
        let server = Server::start(config, shutdown.clone())
            .await
            .expect("server starts");
        TestServer {
            addr: server.dns_addresses[0],
            dir,
            server: Some(server),
            shutdown,
        }
    }

    /// Waits until `/readyz` says ready (every kind listed).
    pub async fn wait_ready(&self) {
        let start = Instant::now();
        loop {
            if http_get(self, "/readyz").await.0 == 200 {
                return;
            }
            assert!(start.elapsed() < DEADLINE, "not ready in time");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            server.wait().await.expect("clean stop");
        }
    }

    /// Asks over UDP with EDNS, as a resolver would.
    pub async fn ask(&self, name: &str, rtype: RecordType) -> Message {
        ask(self.addr, name, rtype, Transport::Udp).await
    }

    /// Polls until `check` holds for the answer to `name`, or the deadline passes.
    pub async fn wait_for(
        &self,
        name: &str,
        rtype: RecordType,
        check: impl Fn(&Message) -> bool,
    ) -> Message {
        wait_answer(self.addr, name, rtype, check).await
    }
}

/// Polls the server at `addr` over UDP until `check` holds for the answer to `name`,
/// or the deadline passes.
pub async fn wait_answer(
    addr: SocketAddr,
    name: &str,
    rtype: RecordType,
    check: impl Fn(&Message) -> bool,
) -> Message {
    let start = Instant::now();
    loop {
        let answer = ask(addr, name, rtype, Transport::Udp).await;
        if check(&answer) {
            return answer;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "no such answer for {name} {rtype} in time; last: {answer:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// A query as resolvers send it: RD set, EDNS(0) with a 1232-byte payload.
pub fn query(name: &str, rtype: RecordType) -> Message {
    let mut message = Message::new(0x4b1d, MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(Name::from_ascii(name).expect("name"), rtype));
    let mut edns = Edns::new();
    edns.set_max_payload(1232);
    message.set_edns(edns);
    message
}

pub async fn ask(addr: SocketAddr, name: &str, rtype: RecordType, transport: Transport) -> Message {
    let bytes = exchange(
        addr,
        &query(name, rtype).to_vec().expect("encode"),
        transport,
    )
    .await
    .expect("an answer");
    Message::from_vec(&bytes).expect("a well-formed answer")
}

/// Sends raw bytes and returns the raw answer, or `None` if none came within a second
/// (UDP) or the connection closed (TCP).
pub async fn exchange(addr: SocketAddr, request: &[u8], transport: Transport) -> Option<Vec<u8>> {
    match transport {
        Transport::Udp => {
            let local = if addr.is_ipv6() {
                "[::1]:0"
            } else {
                "127.0.0.1:0"
            };
            let socket = UdpSocket::bind(local).await.expect("bind");
            socket.send_to(request, addr).await.expect("send");
            let mut buf = vec![0u8; 65535];
            match tokio::time::timeout(Duration::from_secs(1), socket.recv_from(&mut buf)).await {
                Ok(Ok((len, _))) => Some(buf[..len].to_vec()),
                _ => None,
            }
        }
        Transport::Tcp => {
            let mut stream = TcpStream::connect(addr).await.expect("connect");
            let len = u16::try_from(request.len()).expect("short request");
            stream.write_all(&len.to_be_bytes()).await.expect("write");
            stream.write_all(request).await.expect("write");
            let mut len = [0u8; 2];
            tokio::time::timeout(DEADLINE, stream.read_exact(&mut len))
                .await
                .ok()?
                .ok()?;
            let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
            stream.read_exact(&mut buf).await.ok()?;
            Some(buf)
        }
    }
}

/// The answer section as "name type data" lines.
pub fn answers(message: &Message) -> Vec<String> {
    message
        .answers
        .iter()
        .map(|r| format!("{} {} {}", r.name, r.record_type(), r.data))
        .collect()
}

/// The addresses in the answer section, sorted.
pub fn addresses(message: &Message) -> Vec<String> {
    let mut list: Vec<String> = message
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.to_string()),
            RData::AAAA(a) => Some(a.to_string()),
            _ => None,
        })
        .collect();
    list.sort();
    list
}

pub fn rcode(message: &Message) -> ResponseCode {
    message.metadata.response_code
}

/// The repository's own folder, for tests that run bundled examples.
pub fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// The server's metrics in the text exposition format, as `/metrics` serves them.
pub fn scrape(server: &TestServer) -> String {
    let mut text = String::new();
    let registry = &server.server.as_ref().expect("running").registry;
    prometheus_client::encoding::text::encode(&mut text, registry).expect("encode metrics");
    text
}

/// A plain HTTP/1.1 GET on `--http-listen` (`/metrics`, `/healthz`, `/readyz`): status
/// code and body.
pub async fn http_get(server: &TestServer, path: &str) -> (u16, String) {
    let addr = server.server.as_ref().and_then(|s| s.http_address);
    get(addr.expect("HTTP endpoint on"), path).await
}

/// A plain HTTP/1.1 GET on `--debug-listen` (`/`, `/zone`, `/explain`).
pub async fn debug_get(server: &TestServer, path: &str) -> (u16, String) {
    let addr = server.server.as_ref().and_then(|s| s.debug_address);
    get(addr.expect("debug views on"), path).await
}

/// A plain HTTP/1.1 GET: status code and body.
pub async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    tokio::time::timeout(DEADLINE, stream.read_to_end(&mut raw))
        .await
        .expect("in time")
        .expect("read");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status line");
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// The value of the sample of `family` whose labels include every `labels` pair
/// (`0` when there is no such sample).
pub fn sample(metrics: &str, family: &str, labels: &[(&str, &str)]) -> f64 {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(&format!("{family}{{")) || l.starts_with(&format!("{family} ")))
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Whether `tool` is installed. Missing under CI is a failure (`.ci/run` installs every
/// peer); elsewhere the test says it is skipped.
pub fn have(tool: &str) -> bool {
    let found = std::process::Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "{tool} is missing on CI: .ci/run installs it"
        );
        eprintln!("SKIPPED: {tool} is not installed");
    }
    found
}

/// Runs `promtool check metrics` on a `/metrics` text and fails the test on any error or
/// lint finding.
pub fn promtool_check_metrics(text: &str) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start promtool");
    child
        .stdin
        .take()
        .expect("promtool stdin")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool runs");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool: {report}\n{text}");
    assert!(report.trim().is_empty(), "promtool lint: {report}");
}
