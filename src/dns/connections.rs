//! The table of open TCP connections: who may stay when a new client needs room.
//!
//! RFC 7766 §6.2.3 asks servers to manage their connections so that idle clients cannot
//! starve new ones. As Knot DNS and NSD do, a full table never refuses a client: the
//! connection idle the longest is closed to admit it; one client address holds at most
//! `--tcp-max-per-client` connections (its own longest-idle one makes room for its next);
//! and the idle timeout shrinks as the table fills. The table is locked only when a
//! connection opens or closes; a request marks activity with one atomic store.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

/// The default of `--tcp-max-connections`: at the limit, the longest-idle connection is
/// closed to admit a new one.
pub const MAX_TCP_CONNECTIONS: usize = crate::config::DEFAULT_TCP_MAX_CONNECTIONS as usize;
/// The default of `--tcp-max-per-client`.
pub const MAX_TCP_PER_CLIENT: usize = crate::config::DEFAULT_TCP_MAX_PER_CLIENT as usize;
/// A TCP connection idle for this long is closed while the table is at most half full
/// (RFC 7766 §6.2.3 suggests seconds); shorter as it fills, down to
/// [`TCP_IDLE_TIMEOUT_FULL`].
pub const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// The idle timeout when the table is full.
pub const TCP_IDLE_TIMEOUT_FULL: Duration = Duration::from_secs(1);
/// How long the rest of a message that has begun to arrive may take (Knot's
/// `tcp-io-timeout`): a client that stalls half-way through a message is dropped.
pub const TCP_IO_TIMEOUT: Duration = Duration::from_millis(500);

/// The open connections of one listener. Shared by the accept loop and every connection
/// (in an `Arc`).
pub struct Connections {
    limit: usize,
    per_client: usize,
    /// Activity times are milliseconds since this instant.
    epoch: Instant,
    open: AtomicUsize,
    slots: Mutex<Slots>,
}

#[derive(Default)]
struct Slots {
    next_id: u64,
    entries: Vec<Slot>,
}

struct Slot {
    id: u64,
    client: IpAddr,
    activity: Arc<AtomicU64>,
    close: CancellationToken,
    evicted: CancellationToken,
}

/// One admitted connection. Dropping it frees its place in the table.
pub struct Connection {
    table: Arc<Connections>,
    id: u64,
    activity: Arc<AtomicU64>,
    /// Fires when the connection must end: evicted to admit another, or shutdown.
    pub close: CancellationToken,
    /// Fires on eviction only. Writes and waits end on it too (a client that does not
    /// read would otherwise keep its socket past its eviction, and the limit would not
    /// bound sockets); a shutdown lets them finish, within its grace.
    pub evicted: CancellationToken,
}

impl Connections {
    /// A table of at most `limit` connections, `per_client` from one address.
    pub fn new(limit: usize, per_client: usize) -> Arc<Self> {
        Arc::new(Connections {
            limit: limit.max(1),
            per_client: per_client.max(1),
            epoch: Instant::now(),
            open: AtomicUsize::new(0),
            slots: Mutex::new(Slots::default()),
        })
    }

    /// Admits a connection from `client`, closing the longest-idle connection of that
    /// client when it holds its share, else the longest-idle of all when the table is
    /// full. `shutdown` closes every connection.
    pub fn admit(self: &Arc<Self>, client: IpAddr, shutdown: &CancellationToken) -> Connection {
        let now = self.now();
        let activity = Arc::new(AtomicU64::new(now));
        let close = shutdown.child_token();
        let evicted = CancellationToken::new();
        // NB: a poisoned lock only means a panic elsewhere while holding it; the table
        // itself is always consistent, so keep using it.
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let from_client = slots.entries.iter().filter(|s| s.client == client).count();
        if from_client >= self.per_client {
            slots.evict_longest_idle(|s| s.client == client);
        } else if slots.entries.len() >= self.limit {
            slots.evict_longest_idle(|_| true);
        }
        let id = slots.next_id;
        slots.next_id += 1;
        slots.entries.push(Slot {
            id,
            client,
            activity: activity.clone(),
            close: close.clone(),
            evicted: evicted.clone(),
        });
        self.open.store(slots.entries.len(), Ordering::Relaxed);
        drop(slots);
        Connection {
            table: self.clone(),
            id,
            activity,
            close,
            evicted,
        }
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

impl Slots {
    fn evict_longest_idle(&mut self, among: impl Fn(&Slot) -> bool) {
        let oldest = self
            .entries
            .iter()
            .enumerate()
            .filter(|(_, s)| among(s))
            .min_by_key(|(_, s)| (s.activity.load(Ordering::Relaxed), s.id))
            .map(|(index, _)| index);
        if let Some(index) = oldest {
            let slot = self.entries.swap_remove(index);
            slot.evicted.cancel();
            slot.close.cancel();
        }
    }
}

impl Connection {
    /// Marks the connection active now: it moves to the back of the eviction order.
    pub fn touch(&self) {
        self.activity.store(self.table.now(), Ordering::Relaxed);
    }

    /// How long this connection may wait for its next request, given how full the table
    /// is now.
    pub fn idle_timeout(&self) -> Duration {
        idle_timeout(self.table.open(), self.table.limit)
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        let mut slots = self.table.slots.lock().unwrap_or_else(|e| e.into_inner());
        // An evicted connection is no longer in the table.
        if let Some(index) = slots.entries.iter().position(|s| s.id == self.id) {
            slots.entries.swap_remove(index);
        }
        self.table
            .open
            .store(slots.entries.len(), Ordering::Relaxed);
    }
}

/// The idle timeout with `open` of `limit` connections in use: [`TCP_IDLE_TIMEOUT`] up
/// to half full, then shrinking in proportion to the room left, to
/// [`TCP_IDLE_TIMEOUT_FULL`] when full (NSD shortens its timeout the same way).
pub fn idle_timeout(open: usize, limit: usize) -> Duration {
    let half = (limit / 2).max(1);
    let room = limit.saturating_sub(open);
    if room >= half {
        return TCP_IDLE_TIMEOUT;
    }
    let scaled = TCP_IDLE_TIMEOUT.mul_f64(room as f64 / half as f64);
    scaled.max(TCP_IDLE_TIMEOUT_FULL)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    #[test]
    fn a_full_table_closes_the_longest_idle_connection() {
        let table = Connections::new(3, 3);
        let shutdown = CancellationToken::new();
        let first = table.admit(ip(1), &shutdown);
        let second = table.admit(ip(2), &shutdown);
        let third = table.admit(ip(3), &shutdown);
        // The first is used again after the others: the second is now the longest idle.
        first.activity.store(u64::MAX / 2, Ordering::Relaxed);
        let fourth = table.admit(ip(4), &shutdown);
        assert!(
            second.close.is_cancelled() && second.evicted.is_cancelled(),
            "the longest-idle one is closed"
        );
        assert!(!first.close.is_cancelled() && !third.close.is_cancelled());
        assert!(!fourth.close.is_cancelled());
        assert_eq!(table.open(), 3);
        drop(second);
        assert_eq!(table.open(), 3, "an evicted connection frees nothing twice");
        drop(first);
        assert_eq!(table.open(), 2);
    }

    #[test]
    fn one_client_makes_room_among_its_own_connections() {
        let table = Connections::new(10, 2);
        let shutdown = CancellationToken::new();
        let other = table.admit(ip(9), &shutdown);
        let a = table.admit(ip(1), &shutdown);
        let b = table.admit(ip(1), &shutdown);
        let c = table.admit(ip(1), &shutdown);
        assert!(a.close.is_cancelled(), "its own oldest goes");
        assert!(!b.close.is_cancelled() && !c.close.is_cancelled());
        assert!(!other.close.is_cancelled(), "other clients keep theirs");
    }

    #[test]
    fn shutdown_closes_every_connection() {
        let table = Connections::new(10, 10);
        let shutdown = CancellationToken::new();
        let a = table.admit(ip(1), &shutdown);
        shutdown.cancel();
        assert!(a.close.is_cancelled());
        assert!(
            !a.evicted.is_cancelled(),
            "writes may finish within the grace"
        );
    }

    #[test]
    fn the_idle_timeout_shrinks_as_the_table_fills() {
        assert_eq!(idle_timeout(0, 512), TCP_IDLE_TIMEOUT);
        assert_eq!(idle_timeout(256, 512), TCP_IDLE_TIMEOUT);
        assert_eq!(idle_timeout(384, 512), TCP_IDLE_TIMEOUT / 2);
        assert_eq!(idle_timeout(500, 512), TCP_IDLE_TIMEOUT_FULL);
        assert_eq!(idle_timeout(512, 512), TCP_IDLE_TIMEOUT_FULL);
        let mut last = TCP_IDLE_TIMEOUT;
        for open in 0..=512 {
            let timeout = idle_timeout(open, 512);
            assert!(timeout <= last, "never longer as the table fills ({open})");
            last = timeout;
        }
    }
}
