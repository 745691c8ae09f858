//! The DNS sockets hold up under abuse, seen from outside the server's own process: out
//! of file descriptors the TCP accept loop waits instead of spinning; a client that
//! never reads holds a bounded buffer and an evicted connection's socket is closed even
//! while the server is blocked writing to it.

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;
use tokio::net::{TcpSocket, TcpStream};

use crate::fixtures::lb_service;
use crate::support::{DEADLINE, Transport, exchange, get, query, sample};

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

    /// Resident memory in KiB (`VmRSS` of `/proc/PID/status`).
    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("the server is running");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
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

/// web.home.example, and big.home.example with 2,000 addresses: a 60 KiB answer over
/// TCP, so that a client that does not read fills the kernel's buffers in a few queries.
fn big_answers() -> String {
    let targets: Vec<String> = (0..2000)
        .map(|i| format!("10.1.{}.{}", i / 250, i % 250 + 1))
        .collect();
    format!(
        "{}---\napiVersion: externaldns.k8s.io/v1alpha1\nkind: DNSEndpoint\nmetadata: {{name: big, namespace: network}}\nspec:\n  endpoints:\n  - {{dnsName: big.home.example, recordType: A, targets: [{}]}}\n",
        lb_service("web", "apps", Some("web.home.example"), &["192.168.1.10"]),
        targets.join(", ")
    )
}

/// The query for the big answer, framed for TCP.
fn big_query() -> Vec<u8> {
    let request = query("big.home.example", RecordType::A).to_vec().unwrap();
    let mut framed = u16::try_from(request.len()).unwrap().to_be_bytes().to_vec();
    framed.extend_from_slice(&request);
    framed
}

/// Bytes waiting in the kernel for the TCP socket `local` connected to `remote`: its send
/// queue (not yet acknowledged) and receive queue (not yet read), from /proc/net/tcp.
fn tcp_queues(local: SocketAddr, remote: SocketAddr) -> (u64, u64) {
    let hex = |a: SocketAddr| match a.ip() {
        IpAddr::V4(ip) => format!("{:08X}:{:04X}", u32::from_ne_bytes(ip.octets()), a.port()),
        IpAddr::V6(_) => unreachable!("IPv4 only"),
    };
    let (local, remote) = (hex(local), hex(remote));
    let table = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp");
    table
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.len() > 4 && f[1] == local && f[2] == remote)
        .and_then(|f| {
            let (tx, rx) = f[4].split_once(':')?;
            Some((
                u64::from_str_radix(tx, 16).ok()?,
                u64::from_str_radix(rx, 16).ok()?,
            ))
        })
        .unwrap_or((0, 0))
}

/// A connection from the loopback address `from` that pipelines queries for the big
/// answer (`answer` bytes each) and never reads. It returns once the server is blocked
/// writing to it for good: the answers it owes for the queries it has read are more
/// than all it has written (the client reads nothing, so that is still in the kernel)
/// plus the most the kernel's buffers can take.
async fn stalled(from: [u8; 4], server: SocketAddr, answer: usize) -> TcpStream {
    // The most a socket's send buffer holds (tcp_wmem's maximum), and the client's
    // receive buffer, with room to spare.
    const KERNEL_MAX: u64 = 4 << 20 | 1 << 16;
    let socket = TcpSocket::new_v4().expect("a socket");
    socket
        .bind(SocketAddr::new(IpAddr::from(from), 0))
        .expect("bind a loopback source address");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    let stream = socket.connect(server).await.expect("connect");
    let client = stream.local_addr().expect("bound");
    let framed = big_query();
    let chunk = framed.repeat(16 * 1024 / framed.len());
    let mut sent = 0u64;
    let start = Instant::now();
    loop {
        assert!(
            start.elapsed() < DEADLINE,
            "the server blocks writing in time"
        );
        match stream.try_write(&chunk) {
            Ok(n) => sent += n as u64,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                let (client_unsent, written) = tcp_queues(client, server);
                let (server_unsent, server_unread) = tcp_queues(server, client);
                let read = sent.saturating_sub(client_unsent + server_unread);
                let owed = read / framed.len() as u64 * (answer as u64 + 2);
                if owed > written + server_unsent + KERNEL_MAX {
                    return stream;
                }
                let _ = tokio::time::timeout(Duration::from_millis(50), stream.writable()).await;
            }
            Err(e) => panic!("the connection failed while pipelining: {e}"),
        }
    }
}

/// The size of the big answer.
async fn big_answer_size(server: SocketAddr) -> usize {
    let framed = big_query();
    exchange(server, &framed[2..], Transport::Tcp)
        .await
        .expect("the big answer")
        .len()
}

/// Whether the server has ended `stream` (it reset it, having unread queries): told
/// without reading, which would let a blocked write go on.
fn reset_by_server(stream: &TcpStream) -> bool {
    match stream.try_write(&[0]) {
        Ok(_) => false,
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    }
}

/// An eviction ends a connection wherever it is, also while the server is blocked
/// writing answers its client does not read: the table's limit bounds sockets. (Only
/// the eviction: a connection blocked writing that was not evicted stays until its
/// write times out.)
#[tokio::test]
async fn an_evicted_connection_is_closed_while_the_server_is_blocked_writing_to_it() {
    const PER_CLIENT: usize = 2;
    let dir = manifests(&big_answers());
    let server = Spawned::start(
        dir.path(),
        &["--tcp-max-connections", "8", "--tcp-max-per-client", "2"],
        None,
    );
    let answer = big_answer_size(server.dns).await;
    let baseline = server.open_files();
    // The oldest: a client that stalls first, and is never evicted.
    let older = stalled([127, 0, 0, 40], server.dns, answer).await;
    // A client that holds its share, then opens as many again: its longest-idle ones are
    // evicted for them, while the server is blocked writing to each.
    let mut greedy = Vec::new();
    for _ in 0..2 * PER_CLIENT {
        greedy.push(stalled([127, 0, 0, 41], server.dns, answer).await);
    }
    for (i, evicted) in greedy[..PER_CLIENT].iter().enumerate() {
        wait_until(
            &format!("evicted connection {i} reset by the server"),
            || reset_by_server(evicted),
        )
        .await;
    }
    for (i, kept) in greedy[PER_CLIENT..].iter().enumerate() {
        assert!(
            !reset_by_server(kept),
            "connection {i} within the share is kept"
        );
    }
    assert!(
        !reset_by_server(&older),
        "the older stalled connection, not evicted, is kept"
    );
    let open = server.open_files();
    assert!(
        open <= baseline + 1 + PER_CLIENT,
        "the server holds {open} descriptors, {baseline} before: more than the connections kept"
    );
    // Other clients are answered meanwhile.
    assert!(answered_over_tcp(server.dns).await, "a new client answered");
}

/// Clients that pipeline queries and never read hold a bounded buffer in the server
/// each (about 32 KiB of answers and one answer), not the answers to everything it
/// read from them; other clients are answered meanwhile.
#[tokio::test]
async fn a_client_that_never_reads_holds_a_bounded_buffer() {
    const CLIENTS: u8 = 8;
    // Far more than the bound (under 100 KiB a client, and the kernel's buffers are not
    // the process's memory), far less than the answers to 16 KiB of queries (21 MB).
    const GROWTH_KIB: u64 = 8 * 1024;
    let dir = manifests(&big_answers());
    let server = Spawned::start(dir.path(), &[], None);
    let answer = big_answer_size(server.dns).await;
    let before = server.rss_kib();
    let mut clients = Vec::new();
    for i in 0..CLIENTS {
        clients.push(stalled([127, 0, 0, 50 + i], server.dns, answer).await);
    }
    let grown = server.rss_kib().saturating_sub(before);
    assert!(
        grown < GROWTH_KIB,
        "resident memory grew {grown} KiB with {CLIENTS} clients that do not read"
    );
    assert!(
        answered_over_tcp(server.dns).await,
        "a new TCP client answered"
    );
    let request = query("web.home.example", RecordType::A).to_vec().unwrap();
    assert!(
        exchange(server.dns, &request, Transport::Udp)
            .await
            .is_some(),
        "a UDP client answered"
    );
}
