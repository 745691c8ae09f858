//! DNS over UDP and TCP: sockets in, [`handler::respond`] for each request, bytes out.
//!
//! Each server takes an already bound socket and a shutdown token, so tests bind
//! `127.0.0.1:0` and nothing here knows about ports or globals. Queries read the current
//! zone with one atomic load: no lock, no wait for the sources.

pub mod handler;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::metrics::DnsMetrics;
use crate::sources::SharedZone;
use handler::{Transport, respond};

/// Open TCP connections at most; one more is closed at once (bounded memory).
pub const MAX_TCP_CONNECTIONS: usize = 512;
/// A TCP connection idle for this long is closed (RFC 7766 §6.2.3 suggests seconds).
pub const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
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
}

/// How often a UDP worker blocked in `recv_from` checks for a shutdown.
const UDP_SHUTDOWN_CHECK: Duration = Duration::from_millis(200);

/// Answers UDP queries on `socket` until `shutdown` fires. Runs on a thread of its own,
/// blocked in `recv_from`: a datagram costs two system calls and no task wake-up, which
/// measured faster than the async loop. Several threads may serve one socket.
pub fn serve_udp(socket: Arc<std::net::UdpSocket>, ctx: DnsContext, shutdown: CancellationToken) {
    let mut request = vec![0u8; UDP_BUFFER];
    let mut response = Vec::with_capacity(MAX_UDP_RESPONSE);
    if socket.set_read_timeout(Some(UDP_SHUTDOWN_CHECK)).is_err() {
        return;
    }
    while !shutdown.is_cancelled() {
        let (len, peer) = match socket.recv_from(&mut request) {
            Ok(received) => received,
            // A timeout (time to check for shutdown), or an ICMP error from an earlier
            // send surfacing here on Linux: neither is ours to fix.
            Err(_) => continue,
        };
        let timer = ctx.metrics.start();
        let zone = ctx.zone.load();
        let outcome = respond(
            zone.as_deref(),
            &request[..len],
            Transport::Udp,
            &mut response,
        );
        drop(zone);
        let Some(outcome) = outcome else { continue };
        if response.is_empty() {
            continue;
        }
        let _ = socket.send_to(&response, peer);
        ctx.metrics
            .observe(timer, Transport::Udp, peer, &outcome, response.len());
        log_query(Transport::Udp, peer, &outcome);
    }
}

const MAX_UDP_RESPONSE: usize = handler::MAX_UDP_PAYLOAD as usize;

/// Accepts TCP connections on `listener` until `shutdown` fires, then waits (briefly)
/// for answers already being written.
pub async fn serve_tcp(listener: TcpListener, ctx: DnsContext, shutdown: CancellationToken) {
    let slots = Arc::new(Semaphore::new(MAX_TCP_CONNECTIONS));
    let connections = TaskTracker::new();
    let stop = shutdown.cancelled();
    tokio::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            biased;
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(_) => continue,
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            drop(stream); // over the limit: refuse the connection rather than queue it
            continue;
        };
        connections.spawn(serve_connection(
            stream,
            peer,
            ctx.clone(),
            shutdown.clone(),
            slot,
        ));
    }
    drop(listener);
    connections.close();
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, connections.wait()).await;
}

/// One TCP connection: length-prefixed requests in, answers out, in order (RFC 7766).
async fn serve_connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    ctx: DnsContext,
    shutdown: CancellationToken,
    _slot: OwnedSemaphorePermit,
) {
    let _ = stream.set_nodelay(true);
    let mut request = Vec::new();
    let mut response = Vec::new();
    loop {
        // Waiting for the next request is where a shutdown or an idle client ends us.
        let len = tokio::select! {
            _ = shutdown.cancelled() => return,
            len = tokio::time::timeout(TCP_IDLE_TIMEOUT, stream.read_u16()) => match len {
                Ok(Ok(len)) => usize::from(len),
                _ => return,
            },
        };
        request.resize(len, 0);
        match tokio::time::timeout(TCP_IDLE_TIMEOUT, stream.read_exact(&mut request)).await {
            Ok(Ok(_)) => {}
            _ => return,
        }
        let timer = ctx.metrics.start();
        let zone = ctx.zone.load();
        let outcome = respond(zone.as_deref(), &request, Transport::Tcp, &mut response);
        drop(zone);
        // Nothing to answer (not a query, or no header): a stream that carries such
        // bytes is out of step, so end it rather than guess where the next frame starts.
        let Some(outcome) = outcome else { return };
        if response.is_empty() {
            continue;
        }
        if write_framed(&mut stream, &response).await.is_err() {
            return;
        }
        ctx.metrics
            .observe(timer, Transport::Tcp, peer, &outcome, response.len());
        log_query(Transport::Tcp, peer, &outcome);
    }
}

async fn write_framed(stream: &mut TcpStream, message: &[u8]) -> io::Result<()> {
    let len = u16::try_from(message.len()).map_err(|_| io::Error::other("answer over 64 KiB"))?;
    let mut framed = Vec::with_capacity(message.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(message);
    tokio::time::timeout(TCP_IDLE_TIMEOUT, stream.write_all(&framed))
        .await
        .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))?
}

/// The opt-in query log: `RUST_LOG=k8s_gateway::query=debug`. Off by default, and then it
/// costs one cached check per query.
fn log_query(transport: Transport, peer: SocketAddr, outcome: &handler::Outcome) {
    if let Some((name, rtype)) = &outcome.question {
        tracing::debug!(target: "k8s_gateway::query", %peer, proto = transport.as_str(), %name, %rtype, rcode = %outcome.rcode, "query");
    }
}
