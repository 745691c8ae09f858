//! The DNS sockets hold up under abuse, seen from outside the server's own process: out
//! of file descriptors the TCP accept loop waits instead of spinning; a client that
//! never reads holds a bounded buffer and an evicted connection's socket is closed even
//! while the server is blocked writing to it.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;
use tokio::net::TcpStream;

use crate::support::{DEADLINE, Transport, exchange, get, lb_service, query, sample};

const BIN: &str = env!("CARGO_BIN_EXE_k8s-gateway");

/// The binary in a process of its own (so that its descriptors, CPU time and memory
/// are its own), on loopback ports it picked and logged.
struct Spawned {
    child: Child,
    dns: SocketAddr,
    http: SocketAddr,
}

impl Spawned {
    /// `serve --domain home.example` on the manifests in `dir`, with one UDP worker and
    /// then `args`; with at most `nofile` open files when given (`ulimit -n`).
    fn start(dir: &Path, args: &[&str], nofile: Option<u32>) -> Spawned {
        let mut command = match nofile {
            Some(limit) => {
                let mut shell = Command::new("sh");
                shell.args([
                    "-c",
                    &format!("ulimit -n {limit} && exec \"$0\" \"$@\""),
                    BIN,
                ]);
                shell
            }
            None => Command::new(BIN),
        };
        let mut child = command
            .args([
                "serve",
                "--domain",
                "home.example",
                "--listen",
                "127.0.0.1:0",
            ])
            .args(["--http-listen", "127.0.0.1:0", "--debug-listen", "off"])
            .args(["--udp-workers", "1", "--manifests"])
            .arg(dir)
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the binary");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            // Read to the end: a full pipe would stall the server when it logs.
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                for (what, marker) in [
                    ("dns", "serving DNS over UDP and TCP address="),
                    ("http", "serving HTTP (/metrics /healthz /readyz) address="),
                ] {
                    if let Some(addr) = line.split(marker).nth(1) {
                        let _ = tx.send((what, addr.trim().to_string()));
                    }
                }
            }
        });
        let (mut dns, mut http) = (None, None);
        while dns.is_none() || http.is_none() {
            let (what, addr) = rx
                .recv_timeout(DEADLINE)
                .expect("the server logs the addresses it serves on");
            let addr: SocketAddr = addr.parse().expect("a socket address");
            match what {
                "dns" => dns = Some(addr),
                _ => http = Some(addr),
            }
        }
        Spawned {
            child,
            dns: dns.expect("DNS address"),
            http: http.expect("HTTP address"),
        }
    }

    /// CPU time used so far, user and system, in clock ticks (`/proc/PID/stat`).
    fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))
            .expect("the server is running");
        // After the command name in parentheses: state is field 3, utime 14, stime 15.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .expect("a stat line")
            .1
            .split_whitespace()
            .collect();
        let field = |n: usize| fields[n - 3].parse::<u64>().expect("a number of ticks");
        field(14) + field(15)
    }

    /// Descriptors the server has open (`/proc/PID/fd`).
    fn open_files(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .expect("the server is running")
            .count()
    }

    async fn metrics(&self) -> String {
        get(self.http, "/metrics").await.1
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Clock ticks a second (`getconf CLK_TCK`), the unit of `/proc/PID/stat`.
fn ticks_per_second() -> f64 {
    let out = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .expect("getconf");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a number")
}

/// A folder with `manifests` in it, for [`Spawned::start`].
fn manifests(manifests: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temporary folder");
    std::fs::write(dir.path().join("objects.yaml"), manifests).expect("write manifests");
    dir
}

/// Polls `check` every 20 ms until it holds; fails with `what` after [`DEADLINE`].
async fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < DEADLINE, "{what}: not in {DEADLINE:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether a TCP query for web.home.example is answered.
async fn answered_over_tcp(server: SocketAddr) -> bool {
    let request = query("web.home.example", RecordType::A).to_vec().unwrap();
    exchange(server, &request, Transport::Tcp).await.is_some()
}

/// Out of descriptors, every `accept` fails at once while the connection stays queued:
/// retrying at once spins a core. The loop must back off, count the error and, once
/// descriptors are free, accept again.
#[tokio::test]
async fn out_of_file_descriptors_the_accept_loop_waits_instead_of_spinning() {
    const LIMIT: u32 = 64;
    let dir = manifests(&lb_service(
        "web",
        "apps",
        Some("web.home.example"),
        &["192.168.1.10"],
    ));
    let server = Spawned::start(dir.path(), &[], Some(LIMIT));
    // More idle connections than it has descriptors: the kernel queues the rest (fewer
    // than the listener's backlog, else a connect would wait for the SYN's retry).
    let mut clients = Vec::new();
    for _ in 0..2 * LIMIT {
        clients.push(TcpStream::connect(server.dns).await.expect("connect"));
    }
    wait_until("the server uses every descriptor it may", || {
        server.open_files() >= LIMIT as usize
    })
    .await;
    // A short measurement: CPU time used while every accept fails.
    let (before, started) = (server.cpu_ticks(), Instant::now());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let used = (server.cpu_ticks() - before) as f64;
    let elapsed = started.elapsed().as_secs_f64() * ticks_per_second();
    assert!(
        used < elapsed / 2.0,
        "out of descriptors and otherwise idle, the server used {used} of {elapsed:.0} ticks"
    );
    // Descriptors free again: new clients are answered, and the errors were counted.
    drop(clients);
    let start = Instant::now();
    while !answered_over_tcp(server.dns).await {
        assert!(start.elapsed() < DEADLINE, "TCP answered again in time");
    }
    let metrics = server.metrics().await;
    let emfile = sample(
        &metrics,
        "k8s_gateway_tcp_accept_errors_total",
        &[("reason", "emfile")],
    );
    assert!(emfile >= 1.0, "EMFILE counted: {emfile}");
}
