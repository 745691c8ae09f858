//! DNS over TCP: the accept loop, each connection's framing (RFC 7766: pipelined
//! queries, answers in order) and the streaming of zone transfers.

use std::borrow::Cow;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::connections::{Connection, Connections, TCP_IDLE_TIMEOUT, TCP_IO_TIMEOUT};
use super::prepared::PreparedAnswers;
use super::response::{Outcome, Transport};
use super::{DnsContext, account, answer_signed, transfer, tsig};
use crate::metrics::{AcceptErrorLabels, DnsMetrics, RequestTimer};

/// How long a shutdown waits for TCP answers already being written.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

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
                        if !push_frame(&mut answers, &response) {
                            return;
                        }
                        account(
                            &ctx.metrics,
                            &timer,
                            Transport::Tcp,
                            peer,
                            &outcome,
                            response.len(),
                        );
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
    Transfer(RequestTimer, Box<Outcome>, usize, Option<Box<tsig::Signer>>),
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
            if !push_frame(answers, response) {
                return (used, Frames::Close);
            }
            account(
                &ctx.metrics,
                &timer,
                Transport::Tcp,
                peer,
                &outcome,
                response.len(),
            );
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

/// Appends `message` to `out` with its two-byte length before it (RFC 1035 §4.2.2);
/// `false`, appending nothing, for a message over 65,535 bytes, which cannot be framed.
fn push_frame(out: &mut Vec<u8>, message: &[u8]) -> bool {
    let Ok(len) = u16::try_from(message.len()) else {
        return false;
    };
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(message);
    true
}

/// Writes one length-prefixed message; `false` when it cannot be framed or sent, or the
/// connection must close.
async fn write_frame(stream: &mut TcpStream, message: &[u8], connection: &Connection) -> bool {
    // One write, so that the length and its message go out in one segment. NB:
    // `transfer` encodes at most 65,535 bytes per message, so framing always succeeds.
    let mut frame = Vec::with_capacity(2 + message.len());
    if !push_frame(&mut frame, message) {
        return false;
    }
    let written = tokio::select! {
        biased;
        _ = connection.close.cancelled() => return false,
        written = tokio::time::timeout(TCP_IDLE_TIMEOUT, stream.write_all(&frame)) => written,
    };
    // A long transfer is activity: it must not make this the longest-idle connection.
    connection.touch();
    matches!(written, Ok(Ok(())))
}

#[cfg(test)]
mod tests {
    use super::push_frame;

    #[test]
    fn a_frame_is_the_length_then_the_message_and_over_64_kib_is_refused_whole() {
        let mut out = vec![0xff];
        assert!(push_frame(&mut out, &[1, 2, 3]));
        assert_eq!(out, [0xff, 0, 3, 1, 2, 3]);
        assert!(push_frame(&mut out, &vec![7; 65_535]));
        assert_eq!(out.len(), 6 + 2 + 65_535);
        assert_eq!(out[6..8], [0xff, 0xff]);
        let before = out.len();
        assert!(!push_frame(&mut out, &vec![7; 65_536]));
        assert_eq!(out.len(), before, "nothing appended");
    }
}
