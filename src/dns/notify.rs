//! NOTIFY (RFC 1996): tells each `--notify` secondary that a zone changed, so that it
//! transfers the zone at once instead of at the next SOA refresh.
//!
//! After every serial change, one task per (secondary, zone) sends a NOTIFY and waits for
//! the acknowledgement, retrying with a doubling wait until one comes (RFC 1996 §3.6). A
//! newer serial replaces the tasks of the previous one.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use hickory_proto::op::{Header, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::tsig::{Key, Signer};
use crate::metrics::{NotifyMetrics, UpstreamLabels};
use crate::zone::SharedZone;

/// The first wait for an acknowledgement; doubled after each silence.
const FIRST_WAIT: Duration = Duration::from_secs(1);
/// The longest wait between two tries (RFC 1996 §3.6 suggests about a minute).
const MAX_WAIT: Duration = Duration::from_secs(60);

/// Sends NOTIFY to `targets` for every zone each time the serial of the zone in `zone`
/// changes (and once at start, so a secondary that missed changes while we were down
/// catches up), until `shutdown`. `changes` wakes us after each rebuild; any watch will
/// do, as the serial is compared here. With `key` (the first `--tsig-key`) every NOTIFY
/// is signed.
pub async fn run<T>(
    targets: Vec<SocketAddr>,
    key: Option<Key>,
    zone: SharedZone,
    mut changes: watch::Receiver<T>,
    metrics: NotifyMetrics,
    shutdown: CancellationToken,
) {
    let ids = std::sync::Arc::new(AtomicU16::new(first_id()));
    let mut notified = None;
    // Replacing the set aborts the tries for an older serial.
    let mut tries: Option<JoinSet<()>> = None;
    loop {
        changes.borrow_and_update();
        if let Some(zone) = zone.load_full()
            && notified != Some(zone.serial())
        {
            notified = Some(zone.serial());
            let set = tries.insert(JoinSet::new());
            for target in &targets {
                for authority in zone.authorities() {
                    set.spawn(notify_until_acknowledged(
                        *target,
                        Name::from(authority.origin()),
                        authority.soa().clone(),
                        key.clone(),
                        ids.clone(),
                        metrics.clone(),
                    ));
                }
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            changed = changes.changed() => if changed.is_err() { return },
        }
    }
}

/// Sends one zone's NOTIFY to one secondary until it is acknowledged.
async fn notify_until_acknowledged(
    target: SocketAddr,
    origin: Name,
    soa: Record,
    key: Option<Key>,
    ids: std::sync::Arc<AtomicU16>,
    metrics: NotifyMetrics,
) {
    let labels = UpstreamLabels {
        to: target.to_string(),
    };
    let local: SocketAddr = if target.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let mut wait = FIRST_WAIT;
    loop {
        let id = ids.fetch_add(1, Ordering::Relaxed);
        let mut signer = key
            .clone()
            .map(|key| Signer::request(key, super::tsig::now()));
        let sent = match UdpSocket::bind(local).await {
            Ok(socket) => match notify_message(id, &origin, &soa, signer.as_mut()) {
                Some(bytes) if socket.send_to(&bytes, target).await.is_ok() => {
                    metrics.sent.get_or_create(&labels).inc();
                    Some(socket)
                }
                _ => None,
            },
            Err(_) => None,
        };
        if let Some(socket) = sent
            && wait_for_acknowledgement(
                &socket,
                target,
                id,
                signer.as_ref(),
                wait,
                &metrics,
                &labels,
            )
            .await
        {
            metrics.acknowledged.get_or_create(&labels).inc();
            tracing::debug!(%target, zone = %origin, serial = soa_serial(&soa), "NOTIFY acknowledged");
            return;
        }
        wait = (wait * 2).min(MAX_WAIT);
    }
}

/// Waits up to `wait` for the reply to NOTIFY `id`; other packets are ignored and counted.
/// A signed NOTIFY needs a reply signed with the same key (RFC 8945 §5.3), so that a
/// forged acknowledgement cannot stop the retries.
async fn wait_for_acknowledgement(
    socket: &UdpSocket,
    target: SocketAddr,
    id: u16,
    signer: Option<&Signer>,
    wait: Duration,
    metrics: &NotifyMetrics,
    labels: &UpstreamLabels,
) -> bool {
    let deadline = tokio::time::Instant::now() + wait;
    let mut buffer = [0u8; 512];
    loop {
        let received = tokio::time::timeout_at(deadline, socket.recv_from(&mut buffer)).await;
        let Ok(Ok((len, from))) = received else {
            return false; // silence (or a socket error): try again
        };
        if from != target {
            continue; // not the secondary we asked: not worth counting as its reply
        }
        let header = Header::read(&mut BinDecoder::new(&buffer[..len]));
        match header {
            // RFC 1996 §4.7: the response echoes the NOTIFY's ID and opcode.
            Ok(h)
                if h.metadata.id == id
                    && h.metadata.message_type == MessageType::Response
                    && h.metadata.op_code == OpCode::Notify
                    && signer.is_none_or(|s| s.verifies(&buffer[..len])) =>
            {
                return true;
            }
            _ => {
                metrics.ignored.get_or_create(labels).inc();
            }
        }
    }
}

/// RFC 1996 §3.7: opcode NOTIFY, AA, the zone's SOA as the question, and the new SOA in
/// the answer section as a hint; signed by `signer` when there is one (RFC 8945).
fn notify_message(
    id: u16,
    origin: &Name,
    soa: &Record,
    signer: Option<&mut Signer>,
) -> Option<Vec<u8>> {
    let mut message = Message::new(id, MessageType::Query, OpCode::Notify);
    message.metadata.authoritative = true;
    message.add_query(Query::query(origin.clone(), RecordType::SOA));
    message.answers.push(soa.clone());
    let mut bytes = message.to_vec().ok()?;
    if let Some(signer) = signer {
        signer.sign(&mut bytes).then_some(())?;
    }
    Some(bytes)
}

fn soa_serial(record: &Record) -> u32 {
    match &record.data {
        hickory_proto::rr::RData::SOA(soa) => soa.serial,
        _ => 0,
    }
}

/// A starting ID that differs between runs, so that a restarted server does not reuse
/// the IDs a secondary just saw.
fn first_id() -> u16 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    (nanos ^ (nanos >> 16)) as u16
}
