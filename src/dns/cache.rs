//! The cache of `--fallthrough` answers: bounded in entries, each served for its TTL (a
//! negative answer for its SOA minimum, RFC 2308 §5) with TTLs counted down.
//!
//! Only the forwarder touches it: names the zone has never get here. The store is
//! `quick_cache`'s: sharded (no lock of all), with O(1) insert and eviction, so a flood
//! of random names costs each insert what it costs in an empty cache, and since it
//! evicts by how often an entry was asked (CLOCK-Pro), names asked once do not push out
//! the ones asked all day.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{DNSClass, LowerName, RData, Record, RecordType};

/// Longest time an upstream answer is kept, whatever its TTL says (CoreDNS's cache caps
/// at an hour too): a record changed upstream is seen within that time.
pub const MAX_TTL: u32 = 3600;

/// What a cached answer answers.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct Key {
    pub name: LowerName,
    pub rtype: RecordType,
    pub class: DNSClass,
}

/// An upstream's answer as we keep and serve it: the response code and the answer and
/// authority sections (the additional section is not passed on).
#[derive(Debug)]
pub struct Upstreamed {
    pub rcode: ResponseCode,
    pub recursion_available: bool,
    pub answers: Vec<Record>,
    pub authorities: Vec<Record>,
    received: Instant,
    /// How long it may be served from the cache; `None`: not at all.
    lifetime: Option<Duration>,
    /// NXDOMAIN or NODATA (CoreDNS counts those as `denial` hits).
    pub denial: bool,
}

impl Upstreamed {
    /// Keeps what we pass on from an accepted upstream answer received at `received`.
    pub fn new(message: Message, received: Instant) -> Self {
        let rcode = message.metadata.response_code;
        let lifetime = cache_ttl(rcode, &message.answers, &message.authorities)
            .map(|ttl| Duration::from_secs(u64::from(ttl)));
        Upstreamed {
            rcode,
            recursion_available: message.metadata.recursion_available,
            denial: rcode == ResponseCode::NXDomain
                || (rcode == ResponseCode::NoError && message.answers.is_empty()),
            answers: message.answers,
            authorities: message.authorities,
            received,
            lifetime,
        }
    }

    /// Whole seconds since it was received: what its TTLs are counted down by.
    pub fn age(&self, now: Instant) -> u32 {
        u32::try_from(now.saturating_duration_since(self.received).as_secs()).unwrap_or(u32::MAX)
    }

    fn fresh(&self, now: Instant) -> bool {
        self.lifetime
            .is_some_and(|lifetime| now.saturating_duration_since(self.received) < lifetime)
    }
}

/// How long an answer may be cached, in seconds; `None` when it must not be.
///
/// Positive: the smallest TTL of the answer section. Negative (NXDOMAIN, or NOERROR with
/// no answer): the smaller of the SOA's TTL and its MINIMUM field (RFC 2308 §5); without
/// an SOA it is not cached (RFC 2308 §5: SHOULD NOT). Any other response code (SERVFAIL,
/// REFUSED...) is passed on but not kept.
fn cache_ttl(rcode: ResponseCode, answers: &[Record], authorities: &[Record]) -> Option<u32> {
    let negative = || {
        authorities.iter().find_map(|r| match &r.data {
            RData::SOA(soa) => Some(r.ttl.min(soa.minimum)),
            _ => None,
        })
    };
    let smallest = answers.iter().map(|r| r.ttl).min();
    let ttl = match rcode {
        ResponseCode::NoError if !answers.is_empty() => smallest,
        // A CNAME to a name that does not exist: the CNAME's TTL bounds it as well.
        ResponseCode::NoError | ResponseCode::NXDomain => {
            negative().map(|n| smallest.map_or(n, |s| s.min(n)))
        }
        _ => None,
    }?;
    (ttl > 0).then_some(ttl.min(MAX_TTL))
}

/// Upstream answers by question, at most `capacity` of them. Shared by reference: every
/// method takes `&self`.
pub struct Cache {
    /// `None` with a capacity of 0: nothing is kept.
    entries: Option<quick_cache::sync::Cache<Key, Arc<Upstreamed>>>,
}

impl Cache {
    pub fn new(capacity: usize) -> Self {
        Cache {
            entries: (capacity > 0).then(|| quick_cache::sync::Cache::new(capacity)),
        }
    }

    /// The cached answer to `key` if it has not expired. An expired one is dropped here;
    /// one never asked again is evicted in its turn, like any other.
    pub fn get(&self, key: &Key, now: Instant) -> Option<Arc<Upstreamed>> {
        let entries = self.entries.as_ref()?;
        let entry = entries.get(key)?;
        if entry.fresh(now) {
            return Some(entry);
        }
        // Unless a fresh answer has replaced it meanwhile.
        entries.remove_if(key, |entry| !entry.fresh(now));
        None
    }

    /// Keeps `answer` if it may be cached; when full, the cache evicts one entry, so the
    /// bound holds whatever the upstream sends.
    pub fn insert(&self, key: Key, answer: Arc<Upstreamed>, now: Instant) {
        if let Some(entries) = &self.entries
            && answer.fresh(now)
        {
            entries.insert(key, answer);
        }
    }

    pub fn len(&self) -> usize {
        self.entries.as_ref().map_or(0, |entries| entries.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use hickory_proto::op::{MessageType, OpCode};
    use hickory_proto::rr::Name;
    use hickory_proto::rr::rdata::{A, SOA};

    use super::*;

    fn name(text: &str) -> Name {
        Name::from_ascii(text).unwrap()
    }

    fn key(text: &str) -> Key {
        Key {
            name: LowerName::from(name(text)),
            rtype: RecordType::A,
            class: DNSClass::IN,
        }
    }

    fn soa(ttl: u32, minimum: u32) -> Record {
        let data = SOA::new(
            name("ns.example."),
            name("hostmaster.example."),
            1,
            7200,
            900,
            86400,
            minimum,
        );
        Record::from_rdata(name("example."), ttl, RData::SOA(data))
    }

    fn message(rcode: ResponseCode, answers: &[u32], soa: Option<Record>) -> Message {
        let mut message = Message::new(1, MessageType::Response, OpCode::Query);
        message.metadata.response_code = rcode;
        for ttl in answers {
            message.add_answer(Record::from_rdata(
                name("www.example."),
                *ttl,
                RData::A(A(Ipv4Addr::new(192, 0, 2, 1))),
            ));
        }
        if let Some(soa) = soa {
            message.add_authority(soa);
        }
        message
    }

    #[test]
    fn positive_answers_live_for_their_smallest_ttl_capped() {
        let now = Instant::now();
        let answer = Upstreamed::new(message(ResponseCode::NoError, &[300, 60], None), now);
        assert_eq!(answer.lifetime, Some(Duration::from_secs(60)));
        assert!(!answer.denial);
        let long = Upstreamed::new(message(ResponseCode::NoError, &[86400], None), now);
        assert_eq!(long.lifetime, Some(Duration::from_secs(u64::from(MAX_TTL))));
    }

    #[test]
    fn negative_answers_live_for_the_soa_minimum_rfc2308_section_5() {
        let now = Instant::now();
        // RFC 2308 §5: the lesser of the SOA's TTL and its MINIMUM field.
        let nxdomain = Upstreamed::new(
            message(ResponseCode::NXDomain, &[], Some(soa(3600, 30))),
            now,
        );
        assert_eq!(nxdomain.lifetime, Some(Duration::from_secs(30)));
        assert!(nxdomain.denial);
        let nodata = Upstreamed::new(message(ResponseCode::NoError, &[], Some(soa(20, 300))), now);
        assert_eq!(nodata.lifetime, Some(Duration::from_secs(20)));
        // Without an SOA a negative answer is not cached; nor is a SERVFAIL or a TTL 0.
        for uncached in [
            message(ResponseCode::NXDomain, &[], None),
            message(ResponseCode::ServFail, &[], Some(soa(60, 60))),
            message(ResponseCode::NoError, &[0], None),
        ] {
            assert_eq!(Upstreamed::new(uncached, now).lifetime, None);
        }
    }

    #[test]
    fn entries_expire_and_the_bound_holds() {
        let now = Instant::now();
        let cache = Cache::new(2);
        let short = Arc::new(Upstreamed::new(
            message(ResponseCode::NoError, &[5], None),
            now,
        ));
        let long = || {
            Arc::new(Upstreamed::new(
                message(ResponseCode::NoError, &[600], None),
                now,
            ))
        };
        cache.insert(key("a.example."), short, now);
        cache.insert(key("b.example."), long(), now);
        assert!(cache.get(&key("a.example."), now).is_some());
        // Past its TTL it is gone.
        let later = now + Duration::from_secs(5);
        assert!(cache.get(&key("a.example."), later).is_none());
        assert_eq!(cache.len(), 1);
        // A fresh answer replaces an expired one.
        let short = Arc::new(Upstreamed::new(
            message(ResponseCode::NoError, &[5], None),
            now,
        ));
        cache.insert(key("b.example."), short, now);
        assert!(cache.get(&key("b.example."), later).is_none());
        let again = Arc::new(Upstreamed::new(
            message(ResponseCode::NoError, &[60], None),
            later,
        ));
        cache.insert(key("b.example."), again, later);
        assert!(cache.get(&key("b.example."), later).is_some());
        // A flood of new names: the bound holds, the newest is served, and a name asked
        // often outlives names asked once.
        let cache = Cache::new(100);
        cache.insert(key("hot.example."), long(), now);
        for i in 0..10_000 {
            cache.insert(key(&format!("r{i}.example.")), long(), now);
            if i % 10 == 0 {
                assert!(cache.get(&key("hot.example."), now).is_some(), "{i}");
            }
            assert!(cache.len() <= 100, "{} entries", cache.len());
        }
        assert!(cache.get(&key("r9999.example."), now).is_some());
        // Nothing is kept with a capacity of 0, nor an answer that must not be cached.
        let none = Cache::new(0);
        none.insert(key("a.example."), long(), now);
        assert!(none.is_empty());
        assert!(none.get(&key("a.example."), now).is_none());
        let cache = Cache::new(4);
        let uncached = Arc::new(Upstreamed::new(
            message(ResponseCode::ServFail, &[], None),
            now,
        ));
        cache.insert(key("a.example."), uncached, now);
        assert!(cache.is_empty());
        // The age counts TTLs down in whole seconds.
        let answer = long();
        assert_eq!(answer.age(now + Duration::from_millis(2500)), 2);
    }
}
