//! The names and records of one domain, stored compactly.
//!
//! With 100,000 Services a zone holds some 300,000 names; as hickory `Record`s in a map
//! of `LowerName`s that took several times the heap (`cargo bench --bench zone_heap`;
//! the figures are in the README's Performance section). Here a name is its lower-case wire
//! labels in one byte arena (relative to the domain, so the domain is not repeated), a
//! record is a small [`Data`] with the TTL kept once per RRset, and the objects behind the
//! records are indices into one table. Lookups hash the name's bytes into a
//! `hashbrown::HashTable` of node indices (4 bytes and a control byte a slot). Hickory `Record`s are made only when something
//! reads them: an answer, a transfer, `/zone`, `/explain`.

use std::hash::BuildHasher;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use foldhash::fast::RandomState;
use hashbrown::HashTable;
use hickory_proto::rr::rdata::{A, AAAA, CNAME, NS, PTR, SRV, TXT};
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::BinDecodable;

use super::ObjectRef;
use std::collections::HashMap;

/// Longest TXT character-string (RFC 1035 §3.3).
const TXT_CHUNK: usize = 255;

/// Longest name in wire form, root label included (RFC 1035 §2.3.4).
const MAX_WIRE: usize = 255;

/// A name in the byte arena: absolute wire labels, without the root label.
#[derive(Clone, Copy, Debug)]
struct Span {
    at: u32,
    len: u8,
}

/// The data of one record. Names are spans of the arena; TXT keeps its text whole and
/// is split into character-strings when a `Record` is made.
#[derive(Clone, Debug)]
enum Data {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Cname(Span),
    Ns(Span),
    Ptr(Span),
    Txt(Box<str>),
    Srv {
        priority: u16,
        weight: u16,
        port: u16,
        target: Span,
    },
}

/// One name: its relative labels in the arena and the first of its RRsets (they run
/// to the next node's first).
#[derive(Clone, Copy, Debug)]
struct NodeSlot {
    name: u32,
    len: u8,
    sets: u32,
}

/// One RRset: its type, its TTL (one per RRset, RFC 2181 §5.2) and the first of its
/// records (they run to the next set's first).
#[derive(Clone, Copy, Debug)]
struct SetSlot {
    rtype: RecordType,
    ttl: u32,
    records: u32,
}

/// What the builder hands over for one record, before it is stored.
#[derive(Clone, Debug)]
pub(super) enum Value {
    Address(IpAddr),
    /// Stored lower-case.
    Cname(Name),
    /// Stored as given: the name server names keep the case they were configured in.
    Ns(Name),
    /// Stored lower-case.
    Ptr(Name),
    Txt(String),
    /// The target is stored lower-case.
    Srv {
        priority: u16,
        weight: u16,
        port: u16,
        target: Name,
    },
}

/// One RRset as the builder hands it over: `records[i]` with the objects that claimed
/// it (empty for the records the zone makes itself).
#[derive(Clone, Debug)]
pub(super) struct PendingSet {
    pub rtype: RecordType,
    pub ttl: u32,
    pub records: Vec<(Value, Vec<ObjectRef>)>,
}

/// The names and records of one domain. Immutable once built.
#[derive(Clone, Debug)]
pub(super) struct Store {
    /// The domain's lower-case wire labels, without the root label.
    origin: Box<[u8]>,
    /// Node names (relative to the origin) and record targets (absolute), end to end.
    bytes: Box<[u8]>,
    /// One per name, and one past the last (its `sets` ends the last name's RRsets).
    nodes: Box<[NodeSlot]>,
    /// Node indices by the hash of their name.
    table: HashTable<u32>,
    hasher: RandomState,
    /// One per RRset, and one past the last.
    sets: Box<[SetSlot]>,
    data: Box<[Data]>,
    /// Per record, the run of `objects` that claimed it.
    record_runs: Box<[u32]>,
    /// Run `r` is `objects[runs[r]..runs[r + 1]]`; run 0 is empty (the records the zone
    /// makes itself).
    runs: Box<[u32]>,
    /// Every object behind a record of this domain, in runs: one per distinct list of
    /// objects claiming a record (a Service's A and SRV share one).
    objects: Box<[ObjectRef]>,
    has_wildcards: bool,
}

/// A name's lower-case wire labels, on the stack: what a question is looked up by.
pub(super) struct Wire {
    buf: [u8; MAX_WIRE],
    len: usize,
}

impl Wire {
    /// The labels of `name`, lower-cased; `None` for a name too long to be stored.
    pub fn of(name: &Name) -> Option<Wire> {
        let mut wire = Wire {
            buf: [0; MAX_WIRE],
            len: 0,
        };
        for label in name.iter() {
            wire.push(label)?;
        }
        Some(wire)
    }

    /// Wire labels (as stored), lower-cased.
    pub fn of_wire(bytes: &[u8]) -> Option<Wire> {
        let mut wire = Wire {
            buf: [0; MAX_WIRE],
            len: 0,
        };
        for label in labels(bytes) {
            wire.push(label)?;
        }
        Some(wire)
    }

    fn push(&mut self, label: &[u8]) -> Option<()> {
        let end = self.len + 1 + label.len();
        // One byte stays free for the root label.
        if end >= MAX_WIRE {
            return None;
        }
        self.buf[self.len] = u8::try_from(label.len()).ok()?;
        for (to, from) in self.buf[self.len + 1..end].iter_mut().zip(label) {
            *to = from.to_ascii_lowercase();
        }
        self.len = end;
        Some(())
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// The labels of wire bytes, first to last.
fn labels(mut wire: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        let (&len, rest) = wire.split_first()?;
        let (label, rest) = rest.split_at_checked(usize::from(len))?;
        wire = rest;
        Some(label)
    })
}

/// The wire bytes of the parent name (the first label removed); `None` at the root.
pub(super) fn parent(wire: &[u8]) -> Option<&[u8]> {
    let (&len, rest) = wire.split_first()?;
    rest.get(usize::from(len)..)
}

/// A hickory `Name` from absolute wire labels (`relative` then `suffix`), fully
/// qualified. The bytes were checked when stored, so decoding cannot fail; the root
/// stands in if it ever did.
fn name_from(relative: &[u8], suffix: &[u8]) -> Name {
    let mut buf = [0u8; MAX_WIRE + 1];
    let len = relative.len() + suffix.len();
    if len >= buf.len() {
        return Name::root();
    }
    buf[..relative.len()].copy_from_slice(relative);
    buf[relative.len()..len].copy_from_slice(suffix);
    Name::from_bytes(&buf[..=len]).unwrap_or_else(|_| Name::root())
}

/// TXT text split into character-strings of at most 255 bytes, on char boundaries.
pub(super) fn txt_chunks(text: &str) -> Vec<String> {
    let mut chunks = Vec::new();
    let mut current = String::new();
    for ch in text.chars() {
        if current.len() + ch.len_utf8() > TXT_CHUNK {
            chunks.push(std::mem::take(&mut current));
        }
        current.push(ch);
    }
    chunks.push(current);
    chunks
}

/// The relative name of `node`.
fn name_at<'a>(nodes: &[NodeSlot], bytes: &'a [u8], node: u32) -> &'a [u8] {
    let slot = &nodes[node as usize];
    let at = slot.name as usize;
    &bytes[at..at + usize::from(slot.len)]
}

impl Store {
    /// The node of `relative` (lower-case wire labels below the origin).
    pub fn find(&self, relative: &[u8]) -> Option<u32> {
        let hash = self.hasher.hash_one(relative);
        let found = self
            .table
            .find(hash, |&node| self.relative_name(node) == relative);
        found.copied()
    }

    /// How many names with records this store has that `other` (of the same domain) has
    /// not, or has only as an empty non-terminal.
    pub fn names_not_in(&self, other: &Store) -> usize {
        (0..self.node_count() as u32)
            .filter(|&node| !self.is_empty_non_terminal(node))
            .filter(|&node| {
                other
                    .same_node(self.relative_name(node), node)
                    .is_none_or(|theirs| other.is_empty_non_terminal(theirs))
            })
            .count()
    }

    /// [`Store::find`], trying the node at `likely` first. Zones built from the same
    /// objects in the same order hold their names in the same order: comparing two
    /// 100,000-name zones then reads both in order, not one at random.
    fn same_node(&self, relative: &[u8], likely: u32) -> Option<u32> {
        if (likely as usize) < self.node_count() && self.relative_name(likely) == relative {
            return Some(likely);
        }
        self.find(relative)
    }

    /// The node of an absolute name (lower-case wire labels), if it is in this domain.
    pub fn find_absolute(&self, absolute: &[u8]) -> Option<u32> {
        self.find(self.relative_part(absolute)?)
    }

    /// The labels of `absolute` below the origin; `None` when it is not under it.
    pub fn relative_part<'a>(&self, absolute: &'a [u8]) -> Option<&'a [u8]> {
        let mut at = 0;
        loop {
            if absolute[at..] == *self.origin {
                return Some(&absolute[..at]);
            }
            at += 1 + usize::from(*absolute.get(at)?);
            if at > absolute.len() {
                return None;
            }
        }
    }

    pub fn has_wildcards(&self) -> bool {
        self.has_wildcards
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len() - 1
    }

    fn relative_name(&self, node: u32) -> &[u8] {
        name_at(&self.nodes, &self.bytes, node)
    }

    /// The node's name, fully qualified and lower-case.
    pub fn name(&self, node: u32) -> Name {
        name_from(self.relative_name(node), &self.origin)
    }

    fn set_range(&self, node: u32) -> std::ops::Range<usize> {
        let node = node as usize;
        self.nodes[node].sets as usize..self.nodes[node + 1].sets as usize
    }

    fn record_range(&self, set: usize) -> std::ops::Range<usize> {
        self.sets[set].records as usize..self.sets[set + 1].records as usize
    }

    pub fn is_empty_non_terminal(&self, node: u32) -> bool {
        self.set_range(node).is_empty()
    }

    /// The node's RRsets, in their stored order (what ANY answers with first).
    pub fn sets(&self, node: u32) -> impl Iterator<Item = SetRef<'_>> {
        self.set_range(node)
            .map(move |index| SetRef { store: self, index })
    }

    /// The RRset of `rtype` at the node.
    pub fn set(&self, node: u32, rtype: RecordType) -> Option<SetRef<'_>> {
        self.sets(node).find(|s| s.rtype() == rtype)
    }

    fn target(&self, span: Span) -> &[u8] {
        let at = span.at as usize;
        &self.bytes[at..at + usize::from(span.len)]
    }

    fn rdata(&self, data: &Data) -> RData {
        match data {
            Data::A(ip) => RData::A(A(*ip)),
            Data::Aaaa(ip) => RData::AAAA(AAAA(*ip)),
            Data::Cname(span) => RData::CNAME(CNAME(name_from(self.target(*span), &[]))),
            Data::Ns(span) => RData::NS(NS(name_from(self.target(*span), &[]))),
            Data::Ptr(span) => RData::PTR(PTR(name_from(self.target(*span), &[]))),
            Data::Txt(text) => RData::TXT(TXT::new(txt_chunks(text))),
            Data::Srv {
                priority,
                weight,
                port,
                target,
            } => RData::SRV(SRV::new(
                *priority,
                *weight,
                *port,
                name_from(self.target(*target), &[]),
            )),
        }
    }

    fn record_origins(&self, record: usize) -> &[ObjectRef] {
        let run = self.record_runs[record] as usize;
        &self.objects[self.runs[run] as usize..self.runs[run + 1] as usize]
    }

    /// Whether both hold the same names, records and objects behind them (in any
    /// order of names): what keeps the serial when nothing changed.
    pub fn same_records(&self, other: &Store) -> bool {
        if self.origin != other.origin || self.node_count() != other.node_count() {
            return false;
        }
        (0..self.node_count() as u32).all(|node| {
            let Some(theirs) = other.same_node(self.relative_name(node), node) else {
                return false;
            };
            let (ours, theirs) = (self.set_range(node), other.set_range(theirs));
            ours.len() == theirs.len()
                && ours.zip(theirs).all(|(a, b)| {
                    let (sa, sb) = (&self.sets[a], &other.sets[b]);
                    let (ra, rb) = (self.record_range(a), other.record_range(b));
                    sa.rtype == sb.rtype
                        && sa.ttl == sb.ttl
                        && ra.len() == rb.len()
                        && ra.zip(rb).all(|(x, y)| {
                            self.same_data(&self.data[x], other, &other.data[y])
                                && self.record_origins(x) == other.record_origins(y)
                        })
                })
        })
    }

    fn same_data(&self, a: &Data, other: &Store, b: &Data) -> bool {
        match (a, b) {
            (Data::A(x), Data::A(y)) => x == y,
            (Data::Aaaa(x), Data::Aaaa(y)) => x == y,
            (Data::Cname(x), Data::Cname(y))
            | (Data::Ns(x), Data::Ns(y))
            | (Data::Ptr(x), Data::Ptr(y)) => self.target(*x) == other.target(*y),
            (Data::Txt(x), Data::Txt(y)) => x == y,
            (
                Data::Srv {
                    priority: p1,
                    weight: w1,
                    port: o1,
                    target: t1,
                },
                Data::Srv {
                    priority: p2,
                    weight: w2,
                    port: o2,
                    target: t2,
                },
            ) => (p1, w1, o1) == (p2, w2, o2) && self.target(*t1) == other.target(*t2),
            _ => false,
        }
    }
}

/// One RRset of a [`Store`].
#[derive(Clone, Copy)]
pub(super) struct SetRef<'s> {
    store: &'s Store,
    index: usize,
}

impl<'s> SetRef<'s> {
    pub fn rtype(&self) -> RecordType {
        self.store.sets[self.index].rtype
    }

    pub fn len(&self) -> usize {
        self.store.record_range(self.index).len()
    }

    /// The set's records, owned by `owner`.
    pub fn records<'a>(&'a self, owner: &'a Name) -> impl Iterator<Item = Record> + 'a {
        let ttl = self.store.sets[self.index].ttl;
        self.store.record_range(self.index).map(move |r| {
            Record::from_rdata(owner.clone(), ttl, self.store.rdata(&self.store.data[r]))
        })
    }

    /// Appends the set's records, owned by `owner`.
    pub fn extend_into(&self, owner: &Name, out: &mut Vec<Record>) {
        out.reserve(self.len());
        out.extend(self.records(owner));
    }

    /// Per record, the objects that claimed it.
    pub fn origins(&self) -> impl Iterator<Item = &'s [ObjectRef]> + use<'s> {
        let store = self.store;
        store
            .record_range(self.index)
            .map(move |r| store.record_origins(r))
    }

    /// Per record, the name its additional records are found at (NS and SRV targets:
    /// lower-case absolute wire labels); `None` for other types.
    pub fn targets(&self) -> impl Iterator<Item = &'s [u8]> + use<'s> {
        let store = self.store;
        store
            .record_range(self.index)
            .filter_map(move |r| match &store.data[r] {
                Data::Ns(span) | Data::Srv { target: span, .. } => Some(store.target(*span)),
                _ => None,
            })
    }
}

/// Fills a [`Store`]: names with their RRsets in any order, then the empty non-terminals
/// above them.
pub(super) struct StoreBuilder {
    origin: Box<[u8]>,
    bytes: Vec<u8>,
    nodes: Vec<NodeSlot>,
    table: HashTable<u32>,
    hasher: RandomState,
    sets: Vec<SetSlot>,
    data: Vec<Data>,
    record_runs: Vec<u32>,
    runs: Vec<u32>,
    objects: Vec<ObjectRef>,
    /// The run holding each distinct list of objects.
    run_of: HashMap<SameObjects, u32, RandomState>,
    /// How many nodes have records (those whose ancestors must exist).
    named: usize,
}

/// A list of objects keyed by the references' identity: the records of one object
/// share its reference, and hashing 100,000 lists by their strings cost a twentieth of
/// a build. Lists equal in content but made of separate references get runs of their
/// own, which only costs a few bytes.
struct SameObjects(Vec<ObjectRef>);

impl std::hash::Hash for SameObjects {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        for object in &self.0 {
            state.write_usize(object.identity());
        }
    }
}

impl PartialEq for SameObjects {
    fn eq(&self, other: &Self) -> bool {
        self.0.len() == other.0.len()
            && (self.0.iter().zip(&other.0)).all(|(a, b)| a.identity() == b.identity())
    }
}

impl Eq for SameObjects {}

impl StoreBuilder {
    /// A builder for the domain `origin`, sized for about `names` names.
    pub fn new(origin: &LowerName, names: usize) -> StoreBuilder {
        let origin = Wire::of(origin).map_or_else(Box::default, |w| w.as_bytes().into());
        StoreBuilder {
            origin,
            bytes: Vec::with_capacity(names * 24),
            nodes: Vec::with_capacity(names * 3 / 2),
            table: HashTable::with_capacity(names),
            hasher: RandomState::default(),
            sets: Vec::with_capacity(names),
            data: Vec::with_capacity(names),
            record_runs: Vec::with_capacity(names),
            runs: vec![0, 0],
            objects: Vec::new(),
            run_of: HashMap::with_hasher(RandomState::default()),
            named: 0,
        }
    }

    /// Adds `name` (under the origin, not yet added) with its RRsets.
    pub fn add(&mut self, name: &LowerName, sets: Vec<PendingSet>) {
        let Some(wire) = Wire::of(name) else {
            return;
        };
        let Some(relative) = wire.as_bytes().strip_suffix(&*self.origin) else {
            return;
        };
        self.insert(relative);
        for set in sets {
            self.sets.push(SetSlot {
                rtype: set.rtype,
                ttl: set.ttl,
                records: self.data.len() as u32,
            });
            for (value, objects) in set.records {
                let data = self.data_of(value);
                self.data.push(data);
                let run = self.run(objects);
                self.record_runs.push(run);
            }
        }
        self.named = self.nodes.len();
    }

    /// Makes every name between each added name and the origin exist, as an empty
    /// non-terminal when it has no records of its own, so that such names answer
    /// NODATA, not NXDOMAIN (RFC 8020). Then the store.
    pub fn finish(mut self) -> Store {
        let mut scratch = Vec::with_capacity(MAX_WIRE);
        for node in 0..self.named {
            let slot = self.nodes[node];
            scratch.clear();
            let at = slot.name as usize;
            scratch.extend_from_slice(&self.bytes[at..at + usize::from(slot.len)]);
            let mut ancestor = parent(&scratch);
            while let Some(name) = ancestor.filter(|n| !n.is_empty()) {
                if self.lookup(name).is_some() {
                    break; // it and the names above it exist already
                }
                self.insert(name);
                ancestor = parent(name);
            }
        }
        self.nodes.push(NodeSlot {
            name: self.bytes.len() as u32,
            len: 0,
            sets: self.sets.len() as u32,
        });
        self.sets.push(SetSlot {
            rtype: RecordType::NULL,
            ttl: 0,
            records: self.data.len() as u32,
        });
        let has_wildcards = (0..self.nodes.len() - 1).any(|n| {
            let slot = self.nodes[n];
            let at = slot.name as usize;
            self.bytes[at..at + usize::from(slot.len)].starts_with(b"\x01*")
        });
        let (nodes, bytes, hasher) = (&self.nodes, &self.bytes, &self.hasher);
        // The builder's size hint can be high (names claimed twice count twice).
        (self.table).shrink_to_fit(|&node| hasher.hash_one(name_at(nodes, bytes, node)));
        Store {
            origin: self.origin,
            bytes: self.bytes.into(),
            nodes: self.nodes.into(),
            table: self.table,
            hasher: self.hasher,
            sets: self.sets.into(),
            data: self.data.into(),
            record_runs: self.record_runs.into(),
            runs: self.runs.into(),
            objects: self.objects.into(),
            has_wildcards,
        }
    }

    fn lookup(&self, relative: &[u8]) -> Option<u32> {
        let hash = self.hasher.hash_one(relative);
        let found = (self.table).find(hash, |&node| {
            name_at(&self.nodes, &self.bytes, node) == relative
        });
        found.copied()
    }

    /// Appends a node for `relative` (absent so far) with no RRsets yet.
    fn insert(&mut self, relative: &[u8]) {
        let index = self.nodes.len() as u32;
        self.nodes.push(NodeSlot {
            name: self.bytes.len() as u32,
            len: relative.len() as u8,
            sets: self.sets.len() as u32,
        });
        self.bytes.extend_from_slice(relative);
        let (nodes, bytes, hasher) = (&self.nodes, &self.bytes, &self.hasher);
        let rehash = |&node: &u32| hasher.hash_one(name_at(nodes, bytes, node));
        (self.table).insert_unique(hasher.hash_one(relative), index, rehash);
    }

    /// Stores a target name's labels (lower-cased unless `keep_case`).
    fn target(&mut self, name: &Name, keep_case: bool) -> Span {
        let at = self.bytes.len() as u32;
        for label in name.iter() {
            // Names are at most 255 bytes: every label fits a length byte.
            self.bytes.push(label.len() as u8);
            if keep_case {
                self.bytes.extend_from_slice(label);
            } else {
                self.bytes.extend(label.iter().map(u8::to_ascii_lowercase));
            }
        }
        let len = (self.bytes.len() - at as usize).min(usize::from(u8::MAX)) as u8;
        Span { at, len }
    }

    fn data_of(&mut self, value: Value) -> Data {
        match value {
            Value::Address(IpAddr::V4(ip)) => Data::A(ip),
            Value::Address(IpAddr::V6(ip)) => Data::Aaaa(ip),
            Value::Cname(name) => Data::Cname(self.target(&name, false)),
            Value::Ns(name) => Data::Ns(self.target(&name, true)),
            Value::Ptr(name) => Data::Ptr(self.target(&name, false)),
            Value::Txt(text) => Data::Txt(text.into_boxed_str()),
            Value::Srv {
                priority,
                weight,
                port,
                target,
            } => Data::Srv {
                priority,
                weight,
                port,
                target: self.target(&target, false),
            },
        }
    }

    /// The run of `objects`, stored once per distinct list. `runs` holds the start of
    /// every run and the end of the last.
    fn run(&mut self, objects: Vec<ObjectRef>) -> u32 {
        if objects.is_empty() {
            return 0;
        }
        let objects = SameObjects(objects);
        if let Some(&run) = self.run_of.get(&objects) {
            return run;
        }
        let run = self.runs.len() as u32 - 1;
        // The objects' own references: shared with the object set, not copied.
        self.objects.extend(objects.0.iter().cloned());
        self.runs.push(self.objects.len() as u32);
        self.run_of.insert(objects, run);
        run
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(text: &str) -> Name {
        Name::from_ascii(text).unwrap()
    }

    fn lower(text: &str) -> LowerName {
        LowerName::from(name(text))
    }

    /// Every kind of value reads back as the hickory record the builder used to make:
    /// targets lower-cased (NS names as configured), TXT split at 255 bytes, the TTL of
    /// the set, the objects behind each record, empty non-terminals above the names.
    #[test]
    fn every_kind_of_value_reads_back_as_its_record() {
        let origin = lower("Home.Example.");
        let web = ObjectRef::new("Service", "apps", "web");
        let dns = ObjectRef::new("DNSEndpoint", "apps", "records");
        let long = "x".repeat(300);
        let mut builder = StoreBuilder::new(&origin, 1);
        builder.add(
            &lower("_http._tcp.web.apps.home.example."),
            vec![PendingSet {
                rtype: RecordType::SRV,
                ttl: 30,
                records: vec![(
                    Value::Srv {
                        priority: 0,
                        weight: 100,
                        port: 80,
                        target: name("Web.Apps.home.example."),
                    },
                    vec![web.clone()],
                )],
            }],
        );
        builder.add(
            &lower("web.apps.home.example."),
            vec![
                PendingSet {
                    rtype: RecordType::A,
                    ttl: 60,
                    records: vec![
                        (
                            Value::Address("192.168.1.10".parse().unwrap()),
                            vec![web.clone(), dns.clone()],
                        ),
                        (
                            Value::Address("192.168.1.11".parse().unwrap()),
                            vec![web.clone()],
                        ),
                    ],
                },
                PendingSet {
                    rtype: RecordType::AAAA,
                    ttl: 60,
                    records: vec![(
                        Value::Address("fd00::10".parse().unwrap()),
                        vec![web.clone()],
                    )],
                },
                PendingSet {
                    rtype: RecordType::TXT,
                    ttl: 5,
                    records: vec![(Value::Txt(long.clone()), vec![dns.clone()])],
                },
            ],
        );
        builder.add(
            &lower("*.lab.home.example."),
            vec![PendingSet {
                rtype: RecordType::CNAME,
                ttl: 60,
                records: vec![(
                    Value::Cname(name("Web.Apps.Home.Example.")),
                    vec![dns.clone()],
                )],
            }],
        );
        builder.add(
            &origin,
            vec![PendingSet {
                rtype: RecordType::NS,
                ttl: 60,
                records: vec![(Value::Ns(name("DNS1.kube-system.home.example.")), vec![])],
            }],
        );
        let store = builder.finish();

        let read = |text: &str| -> Vec<(String, Vec<String>)> {
            let wire = Wire::of(&name(text)).unwrap();
            let node = store.find_absolute(wire.as_bytes()).unwrap();
            let owner = store.name(node);
            store
                .sets(node)
                .flat_map(|set| {
                    set.records(&owner)
                        .zip(set.origins())
                        .map(|(r, o)| (r.to_string(), o.iter().map(ToString::to_string).collect()))
                        .collect::<Vec<_>>()
                })
                .collect()
        };
        let web_from = vec!["Service apps/web".to_string()];
        assert_eq!(
            read("_HTTP._tcp.web.apps.home.example."),
            [(
                "_http._tcp.web.apps.home.example. 30 IN SRV 0 100 80 web.apps.home.example."
                    .into(),
                web_from.clone()
            )]
        );
        let at_web = read("web.apps.home.example.");
        assert_eq!(
            at_web[..3],
            [
                (
                    "web.apps.home.example. 60 IN A 192.168.1.10".to_string(),
                    vec![
                        "Service apps/web".to_string(),
                        "DNSEndpoint apps/records".to_string()
                    ]
                ),
                (
                    "web.apps.home.example. 60 IN A 192.168.1.11".into(),
                    web_from.clone()
                ),
                (
                    "web.apps.home.example. 60 IN AAAA fd00::10".into(),
                    web_from.clone()
                ),
            ]
        );
        let node = store
            .find_absolute(
                Wire::of(&name("web.apps.home.example."))
                    .unwrap()
                    .as_bytes(),
            )
            .unwrap();
        let txt = store.set(node, RecordType::TXT).unwrap();
        let owner = store.name(node);
        let record = txt.records(&owner).next().unwrap();
        assert_eq!(record.ttl, 5);
        assert_eq!(
            record.data,
            RData::TXT(TXT::new(vec!["x".repeat(255), "x".repeat(45)]))
        );
        assert_eq!(
            read("*.lab.home.example."),
            [(
                "*.lab.home.example. 60 IN CNAME web.apps.home.example.".into(),
                vec!["DNSEndpoint apps/records".to_string()]
            )]
        );
        assert_eq!(
            read("home.example."),
            [(
                "home.example. 60 IN NS DNS1.kube-system.home.example.".into(),
                vec![]
            )]
        );
        // The names between a name and the domain exist, with no records.
        for ent in [
            "_tcp.web.apps.home.example.",
            "apps.home.example.",
            "lab.home.example.",
        ] {
            assert_eq!(read(ent), [], "{ent}");
        }
        assert_eq!(store.node_count(), 7);
        assert!(store.has_wildcards());
        assert!(
            store
                .find_absolute(Wire::of(&name("other.example.")).unwrap().as_bytes())
                .is_none()
        );
        assert!(
            store
                .find_absolute(Wire::of(&name("xhome.example.")).unwrap().as_bytes())
                .is_none()
        );
    }

    #[test]
    fn a_store_grows_past_its_size_hint() {
        let origin = lower("home.example.");
        let mut builder = StoreBuilder::new(&origin, 1);
        for i in 0..1000 {
            builder.add(
                &lower(&format!("app{i}.ns{}.home.example.", i % 7)),
                vec![PendingSet {
                    rtype: RecordType::A,
                    ttl: 60,
                    records: vec![(Value::Address(IpAddr::V4(Ipv4Addr::from(i))), vec![])],
                }],
            );
        }
        let store = builder.finish();
        assert_eq!(store.node_count(), 1000 + 7);
        for i in 0..1000u32 {
            let wire = Wire::of(&name(&format!("APP{i}.ns{}.home.example.", i % 7))).unwrap();
            let node = store.find_absolute(wire.as_bytes()).unwrap();
            let owner = store.name(node);
            let set = store.set(node, RecordType::A).unwrap();
            assert_eq!(
                set.records(&owner).next().unwrap().data,
                RData::A(A(Ipv4Addr::from(i)))
            );
        }
    }
}
