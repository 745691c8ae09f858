//! `--fallthrough`: a name inside our domains that the zone does not have is asked of
//! upstream servers in turn, and their answer is passed on instead of our NXDOMAIN.
//!
//! [`super::handler::respond`] stays pure: it only marks such a question
//! ([`Outcome::no_such_name`]) and the transport hands the request here. The UDP loops
//! (blocking threads) spawn the work on the runtime and go on reading, and the answer is
//! sent from that task; a TCP connection awaits it in its own task. Names the zone has
//! never come here, whatever the type: a public HTTPS record must not leak public
//! address hints into a LAN answer.
//!
//! Concurrent identical questions share one upstream query, answers are cached by TTL
//! ([`super::cache`]), and what we send carries an EDNS option of our own so that a query
//! that comes back to us (an upstream that forwards the domain to us) is cut, not
//! forwarded again.
//!
//! A flood is bounded three ways, each answered SERVFAIL at once and counted: questions
//! upstream ([`MAX_IN_FLIGHT`]), clients waiting for one question ([`MAX_WAITERS`]), and
//! UDP answers pending in tasks ([`MAX_TASKS`]).

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, MessageType, Metadata, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use hickory_proto::rr::{LowerName, RData, Record, RecordType};
use hickory_proto::serialize::binary::BinEncoder;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::runtime::Handle;
use tokio::sync::oneshot;

use super::cache::{Cache, Key, Upstreamed};
use super::response::{MAX_UDP_PAYLOAD, Outcome, Transport, response_edns, size_limit};
use crate::metrics::{
    DnsMetrics, ForwardMetrics, IgnoredLabels, OverloadLabels, UpstreamLabels, UpstreamRcodeLabels,
};

use crate::zone::{Lookup, SharedZone, Zone};

/// How long one upstream has to answer before the next is asked.
pub const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);
/// Upstream queries in flight at most; a question that would need one more is answered
/// SERVFAIL (a loop or a flood must not grow without bound).
pub const MAX_IN_FLIGHT: usize = 100;
/// Clients waiting at most for one question in flight; one more is answered SERVFAIL at
/// once. A flood of one name (from many sockets, so no client's retries explain it)
/// would otherwise grow one list without end while the upstream is slow.
pub const MAX_WAITERS: usize = 64;
/// UDP questions handed to the forwarder and not yet answered, at most: every waiter of
/// every question in flight. Past it the UDP thread answers SERVFAIL itself and spawns
/// nothing, so a flood faster than the runtime cannot pile up tasks.
pub const MAX_TASKS: usize = MAX_IN_FLIGHT * MAX_WAITERS;
/// The EDNS option we add to what we forward, from the range RFC 6891 §9 leaves for
/// local and experimental use (65001–65534). A query that arrives with it has been
/// through us already.
pub const LOOP_MARKER: u16 = 65_053;
/// The UDP payload we offer upstream; a datagram longer than that is not an answer to us.
const UPSTREAM_PAYLOAD: u16 = MAX_UDP_PAYLOAD;
/// Waiters for one upstream question: everyone who asked it while it was in flight.
type Waiters = Vec<oneshot::Sender<Option<Arc<Upstreamed>>>>;

/// Asks the upstreams, caches and coalesces. Shared by every transport.
pub struct Forwarder {
    upstreams: Vec<Upstream>,
    /// Our zone, to keep our names ours inside an upstream's CNAME chain.
    zone: SharedZone,
    /// Sharded on its own: a hit takes no lock of ours.
    cache: Cache,
    /// Questions being asked upstream right now (at most [`MAX_IN_FLIGHT`]), with the
    /// clients waiting for each (at most [`MAX_WAITERS`]).
    pending: Mutex<HashMap<Key, Waiters>>,
    /// UDP answers pending in tasks (at most [`MAX_TASKS`]).
    tasks: TaskSlots,
    metrics: ForwardMetrics,
    timeout: Duration,
    runtime: Handle,
}

struct Upstream {
    address: SocketAddr,
    /// The `to` label, as CoreDNS writes it (`192.0.2.1:53`).
    label: String,
}

/// A count of tasks with a limit: a slot is taken before a task is spawned and given back
/// when the task ends, however it ends (finished, or dropped at shutdown).
struct TaskSlots {
    taken: Arc<AtomicUsize>,
    limit: usize,
}

/// A taken slot; dropping it gives it back.
struct TaskSlot(Arc<AtomicUsize>);

impl TaskSlots {
    fn new(limit: usize) -> Self {
        TaskSlots {
            taken: Arc::new(AtomicUsize::new(0)),
            limit,
        }
    }

    /// A slot, or `None` when all are taken.
    fn take(&self) -> Option<TaskSlot> {
        self.taken
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |taken| {
                (taken < self.limit).then_some(taken + 1)
            })
            .ok()?;
        Some(TaskSlot(self.taken.clone()))
    }
}

impl Drop for TaskSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Why a question was answered SERVFAIL without being asked (the label of
/// `k8s_gateway_forward_overload_rejects_total`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Overload {
    /// [`MAX_WAITERS`] clients wait for the same question already.
    Waiters,
    /// [`MAX_TASKS`] UDP answers are pending already.
    Tasks,
}

/// What every answer to one request shares: its question, the header and EDNS we answer
/// with, and how long the answer may be.
struct Reply {
    meta: Metadata,
    query: Query,
    edns: Option<Edns>,
    limit: u16,
    /// It carries our marker: it has been through us already.
    looped: bool,
}

impl Reply {
    /// `None` when `request` is not one query (`respond` parsed it already: this
    /// cannot fail, but must not panic either).
    fn of(request: &[u8], transport: Transport) -> Option<Reply> {
        let message = Message::from_vec(request).ok()?;
        let [query] = &message.queries[..] else {
            return None;
        };
        Some(Reply {
            meta: Metadata::response_from_request(&message.metadata),
            query: query.clone(),
            edns: message.edns.as_ref().map(response_edns),
            limit: size_limit(message.edns.as_ref(), transport),
            looped: message
                .edns
                .as_ref()
                .is_some_and(|e| e.option(EdnsCode::Unknown(LOOP_MARKER)).is_some()),
        })
    }

    fn question(&self) -> (LowerName, RecordType) {
        (LowerName::from(self.query.name()), self.query.query_type())
    }

    /// SERVFAIL, into `out`.
    fn servfail(&self, out: &mut Vec<u8>) {
        let mut meta = self.meta;
        meta.response_code = ResponseCode::ServFail;
        encode(
            &meta,
            &self.query,
            (&[], &[]),
            self.edns.as_ref(),
            self.limit,
            out,
        );
    }
}

/// A SERVFAIL outcome for `question`.
fn servfail_outcome(question: Option<(LowerName, RecordType)>) -> Outcome {
    Outcome {
        question,
        rcode: ResponseCode::ServFail,
        authoritative: false,
        truncated: false,
        no_such_name: false,
    }
}

/// Why an upstream packet was ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ignored {
    Malformed,
    Oversized,
    /// Another ID, another question, or not a response to a query.
    Mismatch,
}

impl Forwarder {
    /// A forwarder to `upstreams` (asked in this order), keeping at most `cache_entries`
    /// answers; its tasks run on `runtime`.
    pub fn new(
        zone: SharedZone,
        upstreams: &[SocketAddr],
        cache_entries: usize,
        timeout: Duration,
        metrics: ForwardMetrics,
        runtime: Handle,
    ) -> Self {
        Forwarder {
            zone,
            upstreams: upstreams
                .iter()
                .map(|address| Upstream {
                    address: *address,
                    label: address.to_string(),
                })
                .collect(),
            cache: Cache::new(cache_entries),
            pending: Mutex::new(HashMap::new()),
            tasks: TaskSlots::new(MAX_TASKS),
            metrics,
            timeout,
            runtime,
        }
    }

    /// Where the questions go, in order.
    pub fn upstreams(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.upstreams.iter().map(|u| u.address)
    }

    /// Runs `task` on the runtime: for the UDP threads, which must not wait. `false`
    /// (and nothing spawned) when [`MAX_TASKS`] are pending already: answer with
    /// [`Forwarder::answer_overloaded`] instead.
    pub fn try_spawn(&self, task: impl Future<Output = ()> + Send + 'static) -> bool {
        let Some(slot) = self.tasks.take() else {
            return false;
        };
        self.runtime.spawn(async move {
            let _slot = slot;
            task.await;
        });
        true
    }

    /// Writes into `out` the SERVFAIL for a UDP `request` that [`Forwarder::try_spawn`]
    /// had no room for, and counts it.
    pub fn answer_overloaded(&self, request: &[u8], out: &mut Vec<u8>) -> Outcome {
        self.overloaded(Overload::Tasks);
        out.clear();
        let Some(reply) = Reply::of(request, Transport::Udp) else {
            return servfail_outcome(None);
        };
        reply.servfail(out);
        servfail_outcome(Some(reply.question()))
    }

    fn overloaded(&self, reason: Overload) {
        let reason = match reason {
            Overload::Waiters => "waiters",
            Overload::Tasks => "tasks",
        };
        self.metrics
            .overload_rejects
            .get_or_create(&OverloadLabels { reason })
            .inc();
    }

    /// Writes into `out` the answer to `request`, a query whose name the zone does not
    /// have: the upstream's (from the cache or asked now), or SERVFAIL when none came,
    /// the request carries our marker, or too many questions are in flight.
    pub async fn answer(
        self: &Arc<Self>,
        request: &[u8],
        transport: Transport,
        dns: &DnsMetrics,
        out: &mut Vec<u8>,
    ) -> Outcome {
        out.clear();
        let Some(reply) = Reply::of(request, transport) else {
            return servfail_outcome(None);
        };
        let mut outcome = servfail_outcome(Some(reply.question()));
        let upstream = if reply.looped {
            // It went out from us and came back: asking again would go round forever.
            self.metrics.loops.inc();
            None
        } else {
            self.resolve(&reply.query, dns).await
        };
        let Some(upstream) = upstream else {
            reply.servfail(out);
            return outcome;
        };
        let Reply {
            mut meta,
            query,
            edns,
            limit,
            ..
        } = reply;
        let query = &query;
        // Not ours: AA off; the TTLs count down from when the upstream answered.
        meta.authoritative = false;
        meta.recursion_available = upstream.recursion_available;
        meta.response_code = upstream.rcode;
        outcome.rcode = upstream.rcode;
        let age = upstream.age(Instant::now());
        let aged = |records: &[Record]| -> Vec<Record> {
            records
                .iter()
                .map(|r| {
                    let mut r = r.clone();
                    r.ttl = r.ttl.saturating_sub(age);
                    r
                })
                .collect()
        };
        let answers = match self.zone.load().as_deref() {
            Some(zone) => keep_ours(zone, query.query_type(), aged(&upstream.answers)),
            None => aged(&upstream.answers),
        };
        let sections = (answers, aged(&upstream.authorities));
        if !encode(
            &meta,
            query,
            (&sections.0, &sections.1),
            edns.as_ref(),
            limit,
            out,
        ) {
            // RFC 2181 §9: rather than a partial set, the question and TC (retry over TCP).
            meta.truncation = true;
            outcome.truncated = true;
            encode(&meta, query, (&[], &[]), edns.as_ref(), limit, out);
        }
        outcome
    }

    /// The upstream answer to `query`: from the cache, or by joining the identical
    /// question in flight, or by asking. `None` when no upstream answered, or too many
    /// questions are in flight or clients wait for this one.
    async fn resolve(self: &Arc<Self>, query: &Query, dns: &DnsMetrics) -> Option<Arc<Upstreamed>> {
        let key = Key {
            name: LowerName::from(query.name()),
            rtype: query.query_type(),
            class: query.query_class(),
        };
        let now = Instant::now();
        // A hit takes no lock of ours.
        let hit = |hit: Arc<Upstreamed>| {
            dns.cache_lookup(&key.name, Some(hit.denial));
            Some(hit)
        };
        if let Some(cached) = self.cache.get(&key, now) {
            return hit(cached);
        }
        let receiver = {
            let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            // NB: asked again under the lock: `fetch` caches its answer before it takes
            // the question out of `pending`, so a question that finds neither is asked
            // anew, never missed.
            if let Some(cached) = self.cache.get(&key, now) {
                drop(pending);
                return hit(cached);
            }
            let (sender, receiver) = oneshot::channel();
            let in_flight = pending.len();
            match pending.get_mut(&key) {
                Some(waiters) if waiters.len() >= MAX_WAITERS => {
                    drop(pending);
                    dns.cache_lookup(&key.name, None);
                    self.overloaded(Overload::Waiters);
                    return None;
                }
                Some(waiters) => waiters.push(sender),
                None if in_flight >= MAX_IN_FLIGHT => {
                    drop(pending);
                    dns.cache_lookup(&key.name, None);
                    self.metrics.max_concurrent_rejects.inc();
                    return None;
                }
                None => {
                    pending.insert(key.clone(), vec![sender]);
                    // Its own task: it finishes (and fills the cache) even when the
                    // client that started it has gone.
                    self.runtime
                        .spawn(self.clone().fetch(key.clone(), query.clone()));
                }
            }
            receiver
        };
        dns.cache_lookup(&key.name, None);
        receiver.await.ok().flatten()
    }

    /// Asks the upstreams for `key`, caches the answer and hands it to every waiter.
    async fn fetch(self: Arc<Self>, key: Key, query: Query) {
        let answer = self.ask_upstreams(&query).await.map(Arc::new);
        if let Some(answer) = &answer {
            self.cache
                .insert(key.clone(), answer.clone(), Instant::now());
            let entries = i64::try_from(self.cache.len()).unwrap_or(i64::MAX);
            self.metrics.cache_entries.set(entries);
        }
        let waiters = self
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&key)
            .unwrap_or_default();
        for waiter in waiters {
            let _ = waiter.send(answer.clone());
        }
    }

    /// The first acceptable answer from the upstreams, asked in turn, each for at most
    /// the timeout.
    async fn ask_upstreams(&self, query: &Query) -> Option<Upstreamed> {
        for upstream in &self.upstreams {
            let to = upstream.label.clone();
            self.metrics
                .requests
                .get_or_create(&UpstreamLabels { to: to.clone() })
                .inc();
            let started = Instant::now();
            let Ok(Some(message)) =
                tokio::time::timeout(self.timeout, self.exchange(upstream, query)).await
            else {
                continue;
            };
            let labels = UpstreamRcodeLabels {
                to,
                rcode: ForwardMetrics::rcode_label(message.metadata.response_code),
            };
            self.metrics.responses.get_or_create(&labels).inc();
            self.metrics
                .durations
                .get_or_create(&labels)
                .observe(started.elapsed().as_secs_f64());
            return Some(Upstreamed::new(message, Instant::now()));
        }
        None
    }

    /// One question to one upstream: over UDP, then over TCP if the answer was truncated.
    async fn exchange(&self, upstream: &Upstream, query: &Query) -> Option<Message> {
        let id = random_id();
        let request = upstream_request(id, query)?;
        let answer = self.exchange_udp(upstream, id, query, &request).await?;
        if answer.metadata.truncation {
            return self.exchange_tcp(upstream, id, query, &request).await;
        }
        Some(answer)
    }

    async fn exchange_udp(
        &self,
        upstream: &Upstream,
        id: u16,
        query: &Query,
        request: &[u8],
    ) -> Option<Message> {
        let local = match upstream.address {
            SocketAddr::V4(_) => SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
            SocketAddr::V6(_) => SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)),
        };
        // A fresh socket (random port) per question, connected: the kernel drops
        // datagrams from anyone but the upstream.
        let socket = UdpSocket::bind(local).await.ok()?;
        socket.connect(upstream.address).await.ok()?;
        socket.send(request).await.ok()?;
        // Room for more than we allow, so that an oversized datagram is seen as one.
        let mut buffer = vec![0u8; usize::from(UPSTREAM_PAYLOAD) * 2];
        loop {
            // An error here is mostly "port unreachable": move on to the next upstream.
            let len = socket.recv(&mut buffer).await.ok()?;
            match accept(&buffer[..len], id, query, UPSTREAM_PAYLOAD) {
                Ok(answer) => return Some(answer),
                // Not our answer: keep waiting for it until the timeout.
                Err(reason) => self.ignored(upstream, reason),
            }
        }
    }

    async fn exchange_tcp(
        &self,
        upstream: &Upstream,
        id: u16,
        query: &Query,
        request: &[u8],
    ) -> Option<Message> {
        let mut stream = TcpStream::connect(upstream.address).await.ok()?;
        let mut framed = Vec::with_capacity(request.len() + 2);
        framed.extend_from_slice(&u16::try_from(request.len()).ok()?.to_be_bytes());
        framed.extend_from_slice(request);
        stream.write_all(&framed).await.ok()?;
        let len = stream.read_u16().await.ok()?;
        let mut buffer = vec![0u8; usize::from(len)];
        stream.read_exact(&mut buffer).await.ok()?;
        match accept(&buffer, id, query, u16::MAX) {
            Ok(answer) => Some(answer),
            Err(reason) => {
                self.ignored(upstream, reason);
                None
            }
        }
    }

    fn ignored(&self, upstream: &Upstream, reason: Ignored) {
        let reason = match reason {
            Ignored::Malformed => "malformed",
            Ignored::Oversized => "oversized",
            Ignored::Mismatch => "mismatch",
        };
        self.metrics
            .ignored
            .get_or_create(&IgnoredLabels {
                to: upstream.label.clone(),
                reason,
            })
            .inc();
    }
}

/// The upstream's answer section with our names kept ours: a record owned by a name our
/// zone has is dropped, and a CNAME that leads to such a name is followed by our records
/// for it. So `blog CNAME web` at the public side answers with our addresses for `web`,
/// never the public ones (which a resolver would otherwise cache for `web` itself).
fn keep_ours(zone: &Zone, qtype: RecordType, answers: Vec<Record>) -> Vec<Record> {
    let ours = |name: &LowerName| {
        match zone.lookup(name, qtype) {
            Lookup::Answer(answer) => Some(answer),
            Lookup::NotAuthoritative => None,
        }
        .filter(|answer| answer.rcode != ResponseCode::NXDomain || !answer.answers.is_empty())
    };
    let mut kept = Vec::with_capacity(answers.len());
    let mut spliced: Vec<LowerName> = Vec::new();
    for record in answers {
        if ours(&LowerName::from(&record.name)).is_some() {
            continue;
        }
        let target = match &record.data {
            RData::CNAME(target) => Some(LowerName::from(&target.0)),
            _ => None,
        };
        kept.push(record);
        if let Some(target) = target
            && !spliced.contains(&target)
            && let Some(answer) = ours(&target)
        {
            kept.extend(answer.answers.iter().cloned());
            spliced.push(target);
        }
    }
    kept
}

/// Our query upstream: a fresh ID, RD set (the upstream may be a resolver), EDNS(0) with
/// our payload size and the loop marker. No DO bit: DNSSEC records are not passed on.
fn upstream_request(id: u16, query: &Query) -> Option<Vec<u8>> {
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = true;
    message.add_query(query.clone());
    let mut edns = Edns::new();
    edns.set_max_payload(UPSTREAM_PAYLOAD);
    edns.options_mut()
        .insert(EdnsOption::Unknown(LOOP_MARKER, Vec::new()));
    message.set_edns(edns);
    message.to_vec().ok()
}

/// The upstream packet if it is the answer to our query: at most `limit` bytes, well
/// formed, a response with our ID and exactly our question. Anything else is ignored,
/// so it can neither crash us nor put a wrong answer in the cache.
fn accept(bytes: &[u8], id: u16, query: &Query, limit: u16) -> Result<Message, Ignored> {
    if bytes.len() > usize::from(limit) {
        return Err(Ignored::Oversized);
    }
    let message = Message::from_vec(bytes).map_err(|_| Ignored::Malformed)?;
    let meta = &message.metadata;
    let same_question = matches!(&message.queries[..], [asked]
        if asked.query_type() == query.query_type()
            && asked.query_class() == query.query_class()
            && LowerName::from(asked.name()) == LowerName::from(query.name()));
    if meta.id != id
        || meta.message_type != MessageType::Response
        || meta.op_code != OpCode::Query
        || !same_question
    {
        return Err(Ignored::Mismatch);
    }
    Ok(message)
}

/// An unpredictable query ID (RFC 5452 §9.2): SipHash under the process's random keys
/// of a counter, so IDs neither repeat in order nor can be guessed from earlier ones.
fn random_id() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.finish() as u16
}

/// Encodes a response; `false` when it did not fit in `limit` bytes.
fn encode(
    meta: &Metadata,
    query: &Query,
    (answers, authorities): (&[Record], &[Record]),
    edns: Option<&Edns>,
    limit: u16,
    out: &mut Vec<u8>,
) -> bool {
    out.clear();
    let mut encoder = BinEncoder::new(out);
    encoder.set_max_size(limit);
    let fits = match hickory_proto::op::emit_message_parts(
        meta,
        &mut std::iter::once(query),
        &mut answers.iter(),
        &mut authorities.iter(),
        &mut [].iter() as &mut std::slice::Iter<'_, Record>,
        edns,
        None,
        &mut encoder,
    ) {
        Ok(header) => !header.metadata.truncation,
        Err(_) => false,
    };
    if !fits {
        out.clear();
    }
    fits
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use hickory_proto::rr::rdata::A;
    use hickory_proto::rr::{Name, RData, RecordType};

    use super::*;

    fn query() -> Query {
        Query::query(
            Name::from_ascii("blog.home.example.").unwrap(),
            RecordType::A,
        )
    }

    fn response(id: u16, name: &str) -> Vec<u8> {
        let mut message = Message::new(id, MessageType::Response, OpCode::Query);
        message.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
        message.add_answer(Record::from_rdata(
            Name::from_ascii(name).unwrap(),
            60,
            RData::A(A(Ipv4Addr::new(203, 0, 113, 7))),
        ));
        message.to_vec().unwrap()
    }

    #[test]
    fn only_the_answer_to_our_query_is_accepted() {
        let ours = response(7, "BLOG.home.example.");
        assert!(
            accept(&ours, 7, &query(), 1232).is_ok(),
            "case does not matter"
        );
        assert_eq!(
            accept(&ours, 8, &query(), 1232).unwrap_err(),
            Ignored::Mismatch
        );
        assert_eq!(
            accept(&response(7, "other.home.example."), 7, &query(), 1232).unwrap_err(),
            Ignored::Mismatch
        );
        assert_eq!(
            accept(&ours[..ours.len() - 3], 7, &query(), 1232).unwrap_err(),
            Ignored::Malformed
        );
        assert_eq!(
            accept(&ours, 7, &query(), 20).unwrap_err(),
            Ignored::Oversized
        );
        // Our own query is not an answer to it.
        let request = upstream_request(7, &query()).unwrap();
        assert_eq!(
            accept(&request, 7, &query(), 1232).unwrap_err(),
            Ignored::Mismatch
        );
    }

    #[test]
    fn mutated_upstream_packets_never_panic_and_never_pass_for_another_question() {
        let original = response(7, "blog.home.example.");
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = || {
            // xorshift64*: fixed seed, so a failure reproduces.
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            state.wrapping_mul(0x2545_f491_4f6c_dd1d)
        };
        for _ in 0..20_000 {
            let mut packet = original.clone();
            match next() % 3 {
                0 => {
                    for _ in 0..=(next() % 4) {
                        let at = (next() as usize) % packet.len();
                        packet[at] = next() as u8;
                    }
                }
                1 => packet.truncate((next() as usize) % packet.len()),
                _ => packet = (0..(next() % 1500)).map(|_| next() as u8).collect(),
            }
            if let Ok(accepted) = accept(&packet, 7, &query(), 1232) {
                assert_eq!(accepted.metadata.id, 7);
                assert_eq!(
                    LowerName::from(accepted.queries[0].name()),
                    LowerName::from(query().name())
                );
                assert_eq!(accepted.queries[0].query_type(), RecordType::A);
            }
        }
    }

    #[test]
    fn what_we_forward_carries_the_loop_marker() {
        let request = Message::from_vec(&upstream_request(9, &query()).unwrap()).unwrap();
        let edns = request.edns.expect("EDNS");
        assert!(edns.option(EdnsCode::Unknown(LOOP_MARKER)).is_some());
        assert!((65_001..=65_534).contains(&LOOP_MARKER), "RFC 6891 §9");
        assert!(request.metadata.recursion_desired);
    }

    #[test]
    fn task_slots_are_given_back_when_dropped() {
        let slots = TaskSlots::new(2);
        let first = slots.take().expect("a slot");
        let second = slots.take().expect("a slot");
        assert!(slots.take().is_none(), "both taken");
        drop(first);
        let third = slots.take().expect("the one given back");
        drop((second, third));
        assert_eq!(slots.taken.load(Ordering::Acquire), 0);
    }

    #[test]
    fn ids_vary() {
        let ids: std::collections::HashSet<u16> = (0..64).map(|_| random_id()).collect();
        assert!(ids.len() > 48, "{} distinct of 64", ids.len());
    }
}
