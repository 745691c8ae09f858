//! DNS over UDP and TCP: sockets in, [`handler::respond`] for each request, bytes out.
//!
//! Each server takes an already bound socket and a shutdown token, so tests bind
//! `127.0.0.1:0` and nothing here knows about ports or globals. Queries read the current
//! zone with one atomic load: no lock, no wait for the sources. The one exception to
//! "answer at once" is `--fallthrough` ([`forward`]): a name we lack is handed off, and
//! its answer sent later, without holding up the loop.

#[cfg(target_os = "linux")]
mod batch_send;
pub mod cache;
pub mod connections;
pub mod forward;
pub mod handler;
pub mod notify;
pub mod prepared;
pub mod response;
pub mod transfer;
pub mod tsig;

use std::borrow::Cow;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::metrics::{AcceptErrorLabels, Answered, DnsMetrics, RequestTimer};
use crate::zone::{AddressRange, SharedZone};
use connections::{Connection, Connections, TCP_IDLE_TIMEOUT, TCP_IO_TIMEOUT};
pub use connections::{MAX_TCP_CONNECTIONS, MAX_TCP_PER_CLIENT};
use forward::Forwarder;
use response::{MAX_UDP_PAYLOAD, Outcome, Transport};
use prepared::PreparedAnswers;

/// How long a shutdown waits for TCP answers already being written.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Largest UDP datagram we read; anything longer is truncated by the kernel and then
/// fails to parse (FORMERR), which is the right answer for it.
const UDP_BUFFER: usize = 4096;

/// What every DNS server task shares. Cheap to clone.
#[derive(Clone)]
pub struct DnsContext {
    pub zone: SharedZone,
    /// The request metrics of this listening address.
    pub metrics: Arc<DnsMetrics>,
    /// Where names the zone does not have are asked (`--fallthrough`), if anywhere.
    pub forwarder: Option<Arc<Forwarder>>,
    /// Who may transfer our zones over TCP (`--transfer-allow`); empty: nobody.
    pub transfer_allow: Arc<[AddressRange]>,
    /// The TSIG keys (`--tsig-key`); empty: TSIG off, and a transfer needs only the
    /// address. With keys, it needs a signature with one of them too.
    pub tsig_keys: Arc<[tsig::Key]>,
}

/// With `--tsig-key`, a signed request is checked before it is answered (RFC 8945 §5.2):
/// a failed check is answered here (NOTAUTH), a good one is answered as if unsigned
/// and the answer signed. `None`: not signed, answer as usual.
fn answer_signed(
    ctx: &DnsContext,
    request: &[u8],
    transport: Transport,
    response: &mut Vec<u8>,
) -> Option<(Outcome, Option<tsig::Signer>)> {
    if ctx.tsig_keys.is_empty() {
        return None;
    }
    match tsig::check(&ctx.tsig_keys, request, tsig::now()) {
        tsig::Checked::Unsigned => None,
        tsig::Checked::Rejected {
            response: rejected,
            outcome,
            error,
        } => {
            ctx.metrics.tsig_rejected(error);
            *response = rejected;
            Some((outcome, None))
        }
        tsig::Checked::Signed {
            request,
            mut signer,
            udp_limit,
        } => {
            let zone = ctx.zone.load();
            let mut outcome = handler::respond(zone.as_deref(), &request, transport, response)?;
            // NB: a signed question is never handed to --fallthrough: the upstream
            // cannot sign its answer with our key.
            outcome.no_such_name = false;
            if transfer::is_transfer(&outcome) && transport == Transport::Tcp {
                return Some((outcome, Some(signer)));
            }
            let unsigned =
                (transport == Transport::Udp).then(|| (response.clone(), signer.clone()));
            let mut signed = signer.sign(response);
            if let Some((unsigned, mut signer)) = unsigned
                && response.len() > usize::from(udp_limit)
            {
                // The TSIG record made it too long: the question alone, with TC.
                outcome.truncated = true;
                *response = tsig::question_only(&unsigned).unwrap_or_default();
                signed = signer.sign(response);
            }
            if !signed {
                response.clear();
            }
            Some((outcome, None))
        }
    }
}

/// Binds `count` UDP sockets to the same address, one per worker. On Linux each has
/// `SO_REUSEPORT`, so the kernel spreads the queries over them by a hash of the client's
/// address and port, and no two workers contend for one socket's queue (as Knot DNS and
/// NSD do). With port 0 the first socket picks the port and the others join it.
/// Elsewhere one socket is shared by every worker.
pub fn bind_udp(address: SocketAddr, count: usize) -> io::Result<Vec<Arc<std::net::UdpSocket>>> {
    #[cfg(target_os = "linux")]
    {
        let first = reuse_port::bind(address)?;
        let bound = first.local_addr()?;
        let mut sockets = vec![Arc::new(first)];
        for _ in 1..count.max(1) {
            sockets.push(Arc::new(reuse_port::bind(bound)?));
        }
        Ok(sockets)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let socket = Arc::new(std::net::UdpSocket::bind(address)?);
        Ok(vec![socket; count.max(1)])
    }
}

#[cfg(target_os = "linux")]
mod reuse_port {
    use std::io;
    use std::net::{SocketAddr, UdpSocket};
    use std::os::fd::AsRawFd;

    use nix::sys::socket::{
        AddressFamily, SockFlag, SockType, SockaddrStorage, bind as bind_fd, setsockopt, socket,
        sockopt,
    };

    /// A blocking UDP socket with `SO_REUSEPORT`, bound to `address`.
    pub fn bind(address: SocketAddr) -> io::Result<UdpSocket> {
        let family = match address {
            SocketAddr::V4(_) => AddressFamily::Inet,
            SocketAddr::V6(_) => AddressFamily::Inet6,
        };
        let fd = socket(family, SockType::Datagram, SockFlag::SOCK_CLOEXEC, None)?;
        setsockopt(&fd, sockopt::ReusePort, &true)?;
        bind_fd(fd.as_raw_fd(), &SockaddrStorage::from(address))?;
        Ok(UdpSocket::from(fd))
    }
}

/// How often a UDP worker blocked in `recv_from` checks for a shutdown.
const UDP_SHUTDOWN_CHECK: Duration = Duration::from_millis(200);

/// Answers UDP queries on `socket` until `shutdown` fires. Runs on a thread of its own,
/// blocked in the kernel: no task wake-up per datagram, which measured faster than an
/// async loop. [`bind_udp`] gives each worker a socket of its own. `batch_wait` is
/// `--udp-batch-wait` (Linux; [`batched::serve`] says what it does).
pub fn serve_udp(
    socket: Arc<std::net::UdpSocket>,
    ctx: DnsContext,
    batch_wait: Duration,
    shutdown: CancellationToken,
) {
    if socket.set_read_timeout(Some(UDP_SHUTDOWN_CHECK)).is_err() {
        return;
    }
    #[cfg(target_os = "linux")]
    batched::serve(&socket, &ctx, batch_wait, &shutdown);
    #[cfg(not(target_os = "linux"))]
    {
        let _ = batch_wait; // one datagram per call: there is no batch to fill
        serve_udp_one_by_one(&socket, &ctx, &shutdown);
    }
}

/// One datagram per system call: the portable loop.
#[cfg(not(target_os = "linux"))]
fn serve_udp_one_by_one(
    socket: &Arc<std::net::UdpSocket>,
    ctx: &DnsContext,
    shutdown: &CancellationToken,
) {
    let mut request = vec![0u8; UDP_BUFFER];
    let mut response = Vec::with_capacity(MAX_UDP_RESPONSE);
    let mut prepared = PreparedAnswers::new();
    while !shutdown.is_cancelled() {
        let (len, peer) = match socket.recv_from(&mut request) {
            Ok(received) => received,
            // A timeout (time to check for shutdown), or an ICMP error from an earlier
            // send surfacing here on Linux: neither is ours to fix.
            Err(_) => continue,
        };
        let timer = ctx.metrics.start();
        if let Some(outcome) = answer(ctx, &mut prepared, &request[..len], &mut response) {
            let request = &request[..len];
            let outcome = match hand_off(ctx, socket, request, peer, &outcome, timer, &mut response)
            {
                HandOff::Taken => continue,
                HandOff::Ours => outcome,
                HandOff::Overloaded(servfail) => Cow::Owned(servfail),
            };
            // Counted before sending: a scrape that follows the answer sees it.
            account(
                &ctx.metrics,
                &timer,
                Transport::Udp,
                peer,
                &outcome,
                response.len(),
            );
            if socket.send_to(&response, peer).is_err() {
                ctx.metrics.sockets().udp_send_errors.inc();
            }
        }
    }
}

/// The answer to one UDP request, or `None` when nothing is to be sent.
fn answer<'a>(
    ctx: &DnsContext,
    prepared: &'a mut PreparedAnswers,
    request: &[u8],
    response: &mut Vec<u8>,
) -> Option<Cow<'a, Outcome>> {
    if let Some((outcome, _)) = answer_signed(ctx, request, Transport::Udp, response) {
        return (!response.is_empty()).then_some(Cow::Owned(outcome));
    }
    let zone = ctx.zone.load();
    let outcome = prepared.respond(zone.as_deref(), request, Transport::Udp, response)?;
    (!response.is_empty()).then_some(outcome)
}

/// What became of a UDP question after [`hand_off`].
enum HandOff {
    /// The forwarder sends the answer later.
    Taken,
    /// The answer in hand is the one to send.
    Ours,
    /// For the forwarder, which has no room ([`forward::MAX_TASKS`]): the SERVFAIL now
    /// in the response buffer is the one to send.
    Overloaded(Outcome),
}

/// `--fallthrough`: a UDP question whose name the zone does not have goes to the
/// forwarder, which sends the answer later from a task of its own, so this thread goes
/// on reading.
fn hand_off(
    ctx: &DnsContext,
    socket: &Arc<std::net::UdpSocket>,
    request: &[u8],
    peer: SocketAddr,
    outcome: &Outcome,
    timer: RequestTimer,
    response: &mut Vec<u8>,
) -> HandOff {
    let Some(forwarder) = ctx.forwarder.as_ref().filter(|_| outcome.no_such_name) else {
        return HandOff::Ours;
    };
    let (task_forwarder, socket, metrics) =
        (forwarder.clone(), socket.clone(), ctx.metrics.clone());
    let owned = request.to_vec();
    let spawned = forwarder.try_spawn(async move {
        let mut response = Vec::new();
        let outcome = task_forwarder
            .answer(&owned, Transport::Udp, &metrics, &mut response)
            .await;
        if response.is_empty() {
            return;
        }
        account(
            &metrics,
            &timer,
            Transport::Udp,
            peer,
            &outcome,
            response.len(),
        );
        if !send_without_waiting(&socket, &response, peer) {
            metrics.sockets().udp_send_errors.inc();
        }
    });
    if spawned {
        HandOff::Taken
    } else {
        HandOff::Overloaded(forwarder.answer_overloaded(request, response))
    }
}

/// Sends one datagram from a runtime task on the blocking UDP socket: a full send buffer
/// drops the answer (the client retries) rather than stall the runtime. `false` when it
/// was not sent.
fn send_without_waiting(socket: &std::net::UdpSocket, message: &[u8], peer: SocketAddr) -> bool {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let address = nix::sys::socket::SockaddrStorage::from(peer);
        nix::sys::socket::sendto(
            socket.as_raw_fd(),
            message,
            &address,
            nix::sys::socket::MsgFlags::MSG_DONTWAIT,
        )
        .is_ok()
    }
    #[cfg(not(target_os = "linux"))]
    socket.send_to(message, peer).is_ok()
}

/// Linux: up to [`batched::BATCH`] datagrams per `recvmmsg` and their answers in one
/// `sendmmsg`, as Knot DNS does: under load, system calls are most of the cost. Answers
/// of one length to one client go segmented ([`batch_send`]).
#[cfg(target_os = "linux")]
mod batched {
    use std::io::IoSliceMut;
    use std::net::{SocketAddr, UdpSocket};
    use std::os::fd::{AsFd, AsRawFd};
    use std::sync::Arc;
    use std::time::Duration;

    use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg};
    use tokio_util::sync::CancellationToken;

    use super::batch_send::{BatchSender, Outgoing};

    use super::{
        Cow, DnsContext, HandOff, MAX_UDP_RESPONSE, PreparedAnswers, Transport, UDP_BUFFER,
        account, answer, hand_off,
    };

    /// Datagrams per system call at most.
    pub const BATCH: usize = 32;

    /// A batch of at least this many datagrams, but short of [`BATCH`], means queries
    /// are arriving faster than one at a time, but the queue is empty: the worker waits
    /// `--udp-batch-wait` before the next `recvmmsg`. Below it (a light load: at 20,000
    /// queries a second batches average 2.9) the worker reads again at once.
    const WAIT_FROM: usize = 4;

    /// The timer slack of a waiting worker's thread: the wait is what the flag says,
    /// give or take this (the kernel's default is 50 µs, as long as the default wait).
    const WAIT_SLACK_NS: u64 = 5_000;

    /// Answers queries in batches until `shutdown` fires.
    ///
    /// `batch_wait`: under load, each `recvmmsg`, `sendmmsg` and wake-up costs about
    /// the same whether it carries 3 datagrams or 10, and a fast worker empties its
    /// queue often, so its batches stay small. After a batch of [`WAIT_FROM`] or more
    /// that did not fill [`BATCH`], the worker sleeps this long (not spinning: the CPU
    /// is free meanwhile) so that the next batch is bigger. Measured on `dnsbench.sh`
    /// with 50 µs: 9–15 % more answers per second on a throttled core; it costs at
    /// most the wait in latency, and only while batches are that big.
    pub fn serve(
        socket: &Arc<UdpSocket>,
        ctx: &DnsContext,
        batch_wait: Duration,
        shutdown: &CancellationToken,
    ) {
        // The slack is per thread, and this one returns to the runtime's pool after.
        let slack = nix::sys::prctl::get_timerslack().ok();
        if !batch_wait.is_zero() {
            let _ = nix::sys::prctl::set_timerslack(WAIT_SLACK_NS);
        }
        serve_batches(socket, ctx, batch_wait, shutdown);
        if let Some(slack) = slack {
            let _ = nix::sys::prctl::set_timerslack(slack as u64);
        }
    }

    fn serve_batches(
        socket: &Arc<UdpSocket>,
        ctx: &DnsContext,
        batch_wait: Duration,
        shutdown: &CancellationToken,
    ) {
        let fd = socket.as_raw_fd();
        let mut requests = vec![vec![0u8; UDP_BUFFER]; BATCH];
        let mut responses: Vec<Vec<u8>> = (0..BATCH)
            .map(|_| Vec::with_capacity(MAX_UDP_RESPONSE))
            .collect();
        let mut receive_headers = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
        let mut sender = BatchSender::new(socket.as_fd(), BATCH);
        let mut received: Vec<(usize, Option<SockaddrStorage>)> = Vec::with_capacity(BATCH);
        let mut outgoing: Vec<Outgoing> = Vec::with_capacity(BATCH);
        let mut prepared = PreparedAnswers::new();
        while !shutdown.is_cancelled() {
            received.clear();
            {
                let mut buffers: Vec<[IoSliceMut<'_>; 1]> =
                    requests.iter_mut().map(|b| [IoSliceMut::new(b)]).collect();
                // MSG_WAITFORONE: block for the first datagram (up to the socket's read
                // timeout), then take what is already queued without waiting.
                match recvmmsg(
                    fd,
                    &mut receive_headers,
                    buffers.iter_mut(),
                    MsgFlags::MSG_WAITFORONE,
                    None,
                ) {
                    Ok(messages) => received.extend(messages.map(|m| (m.bytes, m.address))),
                    Err(_) => continue, // timeout (check for shutdown) or an ICMP error
                }
            }
            let timer = ctx.metrics.start();
            outgoing.clear();
            for (index, (len, address)) in received.iter().enumerate() {
                let Some((address, peer)) = address.and_then(|a| Some((a, socket_addr(&a)?)))
                else {
                    continue;
                };
                let request = &requests[index][..*len];
                // Answers are gathered at the front of `responses`, in order.
                let slot = outgoing.len();
                let response = &mut responses[slot];
                if let Some(outcome) = answer(ctx, &mut prepared, request, response) {
                    let outcome =
                        match hand_off(ctx, socket, request, peer, &outcome, timer, response) {
                            HandOff::Taken => continue,
                            HandOff::Ours => outcome,
                            HandOff::Overloaded(servfail) => Cow::Owned(servfail),
                        };
                    // Counted before sending: a scrape that follows an answer sees it.
                    account(
                        &ctx.metrics,
                        &timer,
                        Transport::Udp,
                        peer,
                        &outcome,
                        response.len(),
                    );
                    outgoing.push(Outgoing {
                        index: slot,
                        peer,
                        address,
                    });
                }
            }
            let dropped = sender.send(socket.as_fd(), &responses, &outgoing);
            if dropped > 0 {
                ctx.metrics.sockets().udp_send_errors.inc_by(dropped as u64);
            }
            if !batch_wait.is_zero() && (WAIT_FROM..BATCH).contains(&received.len()) {
                std::thread::sleep(batch_wait);
            }
        }
    }

    fn socket_addr(address: &SockaddrStorage) -> Option<SocketAddr> {
        if let Some(v4) = address.as_sockaddr_in() {
            return Some(SocketAddr::V4((*v4).into()));
        }
        address
            .as_sockaddr_in6()
            .map(|v6| SocketAddr::V6((*v6).into()))
    }
}

const MAX_UDP_RESPONSE: usize = MAX_UDP_PAYLOAD as usize;

/// Accepts TCP connections on `listener` until `shutdown` fires, then waits (briefly)
/// for answers already being written. At most `limit` connections are open at once,
/// `per_client` from one address (`--tcp-max-connections`, `--tcp-max-per-client`).
pub async fn serve_tcp(
    listener: TcpListener,
    ctx: DnsContext,
    (limit, per_client): (usize, usize),
    shutdown: CancellationToken,
) {
    let table = Connections::new(limit, per_client);
    let connections = TaskTracker::new();
    let mut backoff = AcceptBackoff::default();
    let stop = shutdown.cancelled();
    tokio::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            biased;
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    let Some(wait) = backoff.failed(&e, &ctx.metrics) else {
                        continue;
                    };
                    tokio::select! {
                        biased;
                        _ = &mut stop => break,
                        _ = tokio::time::sleep(wait) => continue,
                    }
                }
            },
        };
        backoff.succeeded();
        // RFC 7766 §6.2.3: never refuse for lack of room; the longest-idle connection
        // (of this client, when it holds its share) is closed instead.
        let connection = table.admit(peer.ip(), &shutdown);
        connections.spawn(serve_connection(stream, peer, ctx.clone(), connection));
    }
    drop(listener);
    connections.close();
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, connections.wait()).await;
}

/// The first wait after an `accept` that failed for want of resources; it doubles with
/// each failure in a row, up to [`ACCEPT_BACKOFF_MAX`].
const ACCEPT_BACKOFF_FIRST: Duration = Duration::from_millis(10);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// How the accept loop waits out a shortage. NB: out of descriptors (`EMFILE`), the
/// connection stays queued and the listener stays readable, so every `accept` fails at
/// once: retrying at once spins a core for as long as the shortage lasts. Waiting
/// instead lets connections that end free their descriptors; one warning per burst.
#[derive(Default)]
struct AcceptBackoff {
    /// The wait after the next failure; `None` outside a burst of failures.
    next: Option<Duration>,
}

impl AcceptBackoff {
    /// The wait before the next `accept`, or `None` when the error is the client's (it
    /// reset or aborted the connection before we took it): accept the next at once.
    fn failed(&mut self, error: &io::Error, metrics: &DnsMetrics) -> Option<Duration> {
        let reason = accept_error_reason(error)?;
        metrics
            .sockets()
            .tcp_accept_errors
            .get_or_create(&AcceptErrorLabels { reason })
            .inc();
        let wait = match self.next {
            Some(wait) => wait,
            None => {
                tracing::warn!(%error, reason, "cannot accept TCP connections; waiting before trying again");
                ACCEPT_BACKOFF_FIRST
            }
        };
        self.next = Some((wait * 2).min(ACCEPT_BACKOFF_MAX));
        Some(wait)
    }

    fn succeeded(&mut self) {
        if self.next.take().is_some() {
            tracing::info!("accepting TCP connections again");
        }
    }
}

/// The `reason` label of an `accept` error that calls for a wait, or `None` for one that
/// concerns only the connection being accepted (Linux passes a connection's pending
/// network errors on to `accept`, which its manual says to retry like `EAGAIN`).
fn accept_error_reason(error: &io::Error) -> Option<&'static str> {
    use io::ErrorKind::{ConnectionAborted, ConnectionReset, Interrupted, WouldBlock};
    if matches!(
        error.kind(),
        ConnectionAborted | ConnectionReset | Interrupted | WouldBlock
    ) {
        return None;
    }
    #[cfg(target_os = "linux")]
    match error.raw_os_error() {
        Some(libc::EMFILE) => return Some("emfile"),
        Some(libc::ENFILE) => return Some("enfile"),
        Some(libc::ENOBUFS) => return Some("enobufs"),
        Some(
            libc::EPROTO
            | libc::ENOPROTOOPT
            | libc::ENETDOWN
            | libc::ENETUNREACH
            | libc::EHOSTDOWN
            | libc::EHOSTUNREACH
            | libc::ENONET
            | libc::EOPNOTSUPP
            | libc::EPERM,
        ) => return None,
        _ => {}
    }
    Some("other")
}

/// Bytes read from a TCP connection at once: many pipelined queries per system call.
const TCP_READ: usize = 16 * 1024;
/// Answers held for one connection before they are written (and the rest of what was
/// read waits for the write). NB: 16 KiB of pipelined queries can ask for 20 MB of
/// answers (a 60 KiB answer each), which, held whole for a client that does not read,
/// would be the server's memory; this way a connection holds at most this plus one
/// answer (64 KiB), besides the kernel's buffers.
const TCP_FLUSH: usize = 32 * 1024;

thread_local! {
    /// The prepared answers of the TCP connections served on this thread: one table per
    /// runtime worker thread, so a hit takes no lock.
    static TCP_PREPARED: std::cell::RefCell<PreparedAnswers> =
        std::cell::RefCell::new(PreparedAnswers::new());
}

/// One TCP connection: length-prefixed requests in, answers out, in order (RFC 7766).
/// Each read takes whatever the client has sent (pipelined queries, RFC 7766 §6.2.1.1);
/// every complete request in it is answered, and the answers go out in one write: one
/// wake-up and two system calls per batch rather than three per query.
async fn serve_connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    ctx: DnsContext,
    connection: Connection,
) {
    let _ = stream.set_nodelay(true);
    // When the message begun in `received` must be complete (Knot's tcp-io-timeout).
    let mut message_deadline: Option<tokio::time::Instant> = None;
    let mut received: Vec<u8> = Vec::with_capacity(TCP_READ);
    let mut answers: Vec<u8> = Vec::new();
    let mut response = Vec::new();
    loop {
        let (used, next) = answer_frames(&ctx, peer, &received, &mut response, &mut answers);
        if used > 0 {
            message_deadline = None; // a message completed: the next one has its own time
        }
        // Counted before writing (in `answer_frames`): a scrape that follows sees them.
        if !answers.is_empty() {
            let write = tokio::time::timeout(TCP_IDLE_TIMEOUT, stream.write_all(&answers));
            let written = unless_evicted(&connection, write).await;
            answers.clear();
            if !matches!(written, Some(Ok(Ok(())))) {
                return;
            }
        }
        match next {
            Frames::Close => return,
            Frames::Forward(timer, start) => {
                // `--fallthrough`: only this connection waits for the upstream.
                let request = &received[start..used];
                if let Some(forwarder) = &ctx.forwarder {
                    let asked =
                        forwarder.answer(request, Transport::Tcp, &ctx.metrics, &mut response);
                    let Some(outcome) = unless_evicted(&connection, asked).await else {
                        return;
                    };
                    if !response.is_empty() {
                        let Ok(size) = u16::try_from(response.len()) else {
                            return;
                        };
                        account(
                            &ctx.metrics,
                            &timer,
                            Transport::Tcp,
                            peer,
                            &outcome,
                            response.len(),
                        );
                        answers.extend_from_slice(&size.to_be_bytes());
                        answers.extend_from_slice(&response);
                    }
                }
                received.drain(..used);
                continue;
            }
            Frames::Transfer(timer, outcome, start, signer) => {
                let request = received[start..used].to_vec();
                received.drain(..used);
                let transfer = Transfer {
                    request,
                    timer,
                    outcome: *outcome,
                    signer,
                };
                if !answer_transfer(&ctx, peer, transfer, &mut stream, &connection).await {
                    return;
                }
                continue;
            }
            Frames::Flush => {
                // Written above: answer the rest of what was read before reading more.
                received.drain(..used);
                continue;
            }
            Frames::More => received.drain(..used),
        };
        // Room for at least the rest of a request already begun (up to 64 KiB).
        let pending = match received[..] {
            [high, low, ..] => 2 + usize::from(u16::from_be_bytes([high, low])),
            _ => 2,
        };
        received.reserve(TCP_READ.max(pending.saturating_sub(received.len())));
        // Between messages a client may idle (less long as the table fills); a message
        // that has begun must be complete within TCP_IO_TIMEOUT of its first byte, so
        // a stalled half-sent message cannot hold a connection (RFC 7766 §6.2.3).
        let deadline = if received.is_empty() {
            message_deadline = None;
            tokio::time::Instant::now() + connection.idle_timeout()
        } else {
            *message_deadline.get_or_insert_with(|| tokio::time::Instant::now() + TCP_IO_TIMEOUT)
        };
        // Waiting for the next request is where a shutdown, an eviction or an idle
        // client ends us.
        let read = tokio::select! {
            biased;
            _ = connection.close.cancelled() => return,
            read = tokio::time::timeout_at(deadline, stream.read_buf(&mut received)) => read,
        };
        match read {
            Ok(Ok(n)) if n > 0 => connection.touch(),
            _ => return, // closed, failed or idle
        }
    }
}

/// `work`, unless the connection is evicted first (`None`): wherever a connection
/// waits, an eviction ends it, so that the table's limit bounds sockets.
async fn unless_evicted<T>(connection: &Connection, work: impl Future<Output = T>) -> Option<T> {
    tokio::select! {
        biased;
        _ = connection.evicted.cancelled() => None,
        done = work => Some(done),
    }
}

/// What a connection does after answering the complete requests it has.
enum Frames {
    /// Read more.
    More,
    /// Write the answers ([`TCP_FLUSH`] or more), then answer the rest of what was read.
    Flush,
    /// End the connection (out of step, or an answer that cannot be framed).
    Close,
    /// The last request consumed (from this offset) is for the forwarder (`--fallthrough`).
    Forward(RequestTimer, usize),
    /// The last request consumed (from this offset) is a zone transfer from an allowed
    /// peer (`--transfer-allow`), with the signer of its answer when it was signed.
    Transfer(
        RequestTimer,
        Box<Outcome>,
        usize,
        Option<Box<tsig::Signer>>,
    ),
}

/// Answers every complete request at the front of `received`, appending the framed
/// answers to `answers`. Returns the bytes consumed and what to do next.
fn answer_frames(
    ctx: &DnsContext,
    peer: SocketAddr,
    received: &[u8],
    response: &mut Vec<u8>,
    answers: &mut Vec<u8>,
) -> (usize, Frames) {
    TCP_PREPARED.with_borrow_mut(|prepared| {
        let mut used = 0;
        while let [high, low, rest @ ..] = &received[used..] {
            let len = usize::from(u16::from_be_bytes([*high, *low]));
            let Some(request) = rest.get(..len) else {
                break; // the rest has not arrived yet
            };
            used += 2 + len;
            let timer = ctx.metrics.start();
            let (outcome, signer) = match answer_signed(ctx, request, Transport::Tcp, response) {
                Some((outcome, signer)) => (Some(Cow::Owned(outcome)), signer),
                None => {
                    let zone = ctx.zone.load();
                    let outcome =
                        prepared.respond(zone.as_deref(), request, Transport::Tcp, response);
                    (outcome, None)
                }
            };
            // Nothing to answer (not a query, or no header): a stream that carries such
            // bytes is out of step, so end it rather than guess where the next frame starts.
            let Some(outcome) = outcome else {
                return (used, Frames::Close);
            };
            if outcome.no_such_name && ctx.forwarder.is_some() {
                return (used, Frames::Forward(timer, used - len));
            }
            // With keys, a transfer needs a good signature as well as the address; an
            // unsigned one is REFUSED, as BIND answers (Knot 3.2 says NOTAUTH).
            let signed = signer.is_some() || ctx.tsig_keys.is_empty();
            if transfer::is_transfer(&outcome)
                && transfer::allowed(&ctx.transfer_allow, peer.ip())
                && signed
            {
                let outcome = Box::new(outcome.into_owned());
                let signer = signer.map(Box::new);
                return (used, Frames::Transfer(timer, outcome, used - len, signer));
            }
            if let Some(mut signer) = signer
                && !signer.sign(response)
            {
                response.clear();
            }
            if response.is_empty() {
                continue;
            }
            let Ok(size) = u16::try_from(response.len()) else {
                return (used, Frames::Close); // over 64 KiB: cannot be framed
            };
            account(
                &ctx.metrics,
                &timer,
                Transport::Tcp,
                peer,
                &outcome,
                response.len(),
            );
            answers.extend_from_slice(&size.to_be_bytes());
            answers.extend_from_slice(response);
            if answers.len() >= TCP_FLUSH {
                return (used, Frames::Flush);
            }
        }
        (used, Frames::More)
    })
}

/// Messages of a zone transfer built ahead of the socket at most: enough to keep it
/// busy, few enough (~16 KiB each) that a slow secondary holds little memory.
const TRANSFER_AHEAD: usize = 4;

/// A zone transfer request from an allowed peer, as `answer_frames` found it, with the
/// signer of its answer when it was signed (`--tsig-key`).
struct Transfer {
    request: Vec<u8>,
    timer: RequestTimer,
    outcome: Outcome,
    signer: Option<Box<tsig::Signer>>,
}

/// Streams the answer to a zone transfer (RFC 5936 §2.2: a stream of messages) on
/// `stream`. The messages are built on a blocking thread, a few ahead of the socket, so
/// a large zone neither holds a runtime worker while it is encoded nor sits in memory
/// whole. The transfer counts as one request, before its last message is written. A
/// message that cannot be encoded aborts it: the messages before it went out whole, and
/// closing the connection tells the secondary to retry. `false`: end the connection.
async fn answer_transfer(
    ctx: &DnsContext,
    peer: SocketAddr,
    transfer: Transfer,
    stream: &mut TcpStream,
    connection: &Connection,
) -> bool {
    let Transfer {
        request,
        timer,
        mut outcome,
        mut signer,
    } = transfer;
    let zone = ctx.zone.load_full();
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<Vec<u8>>(TRANSFER_AHEAD);
    let build = tokio::task::spawn_blocking(move || {
        transfer::respond_transfer(zone.as_deref(), &request, &mut |message| {
            sender.blocking_send(message).is_ok()
        })
    });
    // One message is held back, so that the last one goes out after the count.
    let mut held: Option<Vec<u8>> = None;
    let mut size = 0;
    while let Some(mut message) = receiver.recv().await {
        // RFC 8945 §5.3.1: every message of the stream is signed, each MAC chained to
        // the one before, in the order they are sent.
        if let Some(signer) = signer.as_mut()
            && !signer.sign(&mut message)
        {
            return false;
        }
        size += message.len();
        if let Some(previous) = held.replace(message)
            && !write_frame(stream, &previous, connection).await
        {
            return false; // the builder stops at its next message
        }
    }
    let result = match build.await {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(panicked) => Err(panicked.to_string()),
    };
    let whole = result.is_ok();
    match result {
        Ok(rcode) => outcome.rcode = rcode,
        Err(error) => {
            let zone = outcome.question.as_ref().map(|(name, _)| name.to_string());
            tracing::warn!(%peer, zone = zone.unwrap_or_default(), %error, "zone transfer aborted before its closing SOA; the secondary will retry");
            ctx.metrics.transfer_aborted();
            outcome.rcode = hickory_proto::op::ResponseCode::ServFail;
        }
    }
    outcome.authoritative = outcome.rcode == hickory_proto::op::ResponseCode::NoError;
    account(&ctx.metrics, &timer, Transport::Tcp, peer, &outcome, size);
    let written = match held {
        Some(last) => write_frame(stream, &last, connection).await,
        None => true,
    };
    written && whole
}

/// Writes one length-prefixed message; `false` when it cannot be framed or sent, or the
/// connection must close.
async fn write_frame(stream: &mut TcpStream, message: &[u8], connection: &Connection) -> bool {
    // NB: `transfer` encodes at most 65,535 bytes per message, so this always holds.
    let Ok(len) = u16::try_from(message.len()) else {
        return false;
    };
    // One write, so that the length and its message go out in one segment.
    let mut frame = Vec::with_capacity(2 + message.len());
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(message);
    let written = tokio::select! {
        biased;
        _ = connection.close.cancelled() => return false,
        written = tokio::time::timeout(TCP_IDLE_TIMEOUT, stream.write_all(&frame)) => written,
    };
    // A long transfer is activity: it must not make this the longest-idle connection.
    connection.touch();
    matches!(written, Ok(Ok(())))
}

/// The opt-in query log: `RUST_LOG=k8s_gateway::query=debug`. Off by default, and then it
/// costs one cached check per query.
/// Counts one answer and writes its optional debug log line. Called before the answer is
/// sent, so that a scrape following an answer always includes it.
fn account(
    metrics: &DnsMetrics,
    timer: &RequestTimer,
    transport: Transport,
    peer: SocketAddr,
    outcome: &Outcome,
    size: usize,
) {
    let answered = Answered {
        question: outcome.question.as_ref(),
        rcode: outcome.rcode,
        proto: transport.as_str(),
        size,
    };
    metrics.observe(timer, peer, answered);
    log_query(transport, peer, outcome);
}

fn log_query(transport: Transport, peer: SocketAddr, outcome: &Outcome) {
    if let Some((name, rtype)) = &outcome.question {
        tracing::debug!(target: "k8s_gateway::query", %peer, proto = transport.as_str(), %name, %rtype, rcode = %outcome.rcode, "query");
    }
}
