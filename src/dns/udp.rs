//! DNS over UDP: the sockets, one blocking thread per socket reading queries and
//! sending their answers, and the hand-off of a name we lack to `--fallthrough`.

use std::borrow::Cow;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::prepared::PreparedAnswers;
use super::response::{MAX_UDP_PAYLOAD, Outcome, Transport};
use super::{DnsContext, account, answer_signed};
use crate::metrics::RequestTimer;

/// Largest UDP datagram we read; anything longer is truncated by the kernel and then
/// fails to parse (FORMERR), which is the right answer for it.
const UDP_BUFFER: usize = 4096;
const MAX_UDP_RESPONSE: usize = MAX_UDP_PAYLOAD as usize;

/// Binds `count` UDP sockets to the same address, one per worker. On Linux each has
/// `SO_REUSEPORT`, so the kernel spreads the queries over them by a hash of the client's
/// address and port, and no two workers contend for one socket's queue (as Knot DNS and
/// NSD do). With port 0 the first socket picks the port and the others join it.
/// Elsewhere one socket is shared by every worker.
pub fn bind_udp(address: SocketAddr, count: usize) -> io::Result<Vec<Arc<std::net::UdpSocket>>> {
    #[cfg(target_os = "linux")]
    {
        let first = bind_reusing_port(address)?;
        let bound = first.local_addr()?;
        let mut sockets = vec![Arc::new(first)];
        for _ in 1..count.max(1) {
            sockets.push(Arc::new(bind_reusing_port(bound)?));
        }
        Ok(sockets)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let socket = Arc::new(std::net::UdpSocket::bind(address)?);
        Ok(vec![socket; count.max(1)])
    }
}

/// A blocking UDP socket with `SO_REUSEPORT` (and close-on-exec), bound to `address`.
#[cfg(target_os = "linux")]
fn bind_reusing_port(address: SocketAddr) -> io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(
        Domain::for_address(address),
        Type::DGRAM,
        Some(Protocol::UDP),
    )?;
    socket.set_reuse_port(true)?;
    socket.bind(&address.into())?;
    Ok(socket.into())
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
    /// For the forwarder, which has no room ([`super::forward::MAX_TASKS`]): the SERVFAIL now
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
        let flags = libc::MSG_DONTWAIT;
        (socket2::SockRef::from(socket).send_to_with_flags(message, &peer.into(), flags)).is_ok()
    }
    #[cfg(not(target_os = "linux"))]
    socket.send_to(message, peer).is_ok()
}

/// Linux: up to [`batched::BATCH`] datagrams per `recvmmsg` and their answers in one
/// `sendmmsg`, as Knot DNS does: under load, system calls are most of the cost. Answers
/// of one length to one client go segmented ([`crate::dns::batch_send`]).
#[cfg(target_os = "linux")]
mod batched {
    use std::io::IoSliceMut;
    use std::net::{SocketAddr, UdpSocket};
    use std::os::fd::{AsFd, AsRawFd};
    use std::sync::Arc;
    use std::time::Duration;

    use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg};
    use tokio_util::sync::CancellationToken;

    use crate::dns::batch_send::{BatchSender, Outgoing};

    use super::{
        Cow, DnsContext, HandOff, MAX_UDP_RESPONSE, PreparedAnswers, Transport, UDP_BUFFER,
        account, answer, hand_off,
    };

    /// Datagrams per system call at most.
    pub const BATCH: usize = 32;

    /// A batch of at least this many datagrams, but short of [`BATCH`], means queries
    /// are arriving faster than one at a time, but the queue is empty: the worker waits
    /// `--udp-batch-wait` before the next `recvmmsg`. Below it (a light load: the README's
    /// Performance section gives the batch sizes) the worker reads again at once.
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
    /// is free meanwhile) so that the next batch is bigger: more answers for the same
    /// CPU (the README's Performance section, "Batch wait"). It costs at most the wait
    /// in latency, and only while batches are that big.
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
