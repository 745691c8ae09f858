//! The zone: an immutable snapshot of every record we serve, and the answer to a question.
//!
//! A `Zone` is built once per change by [`builder`], never mutated, and swapped in whole,
//! so a query always sees one consistent version and never waits for anything. It knows
//! nothing of Kubernetes or sockets: it answers "which records, which response code" for
//! a name and a type, and the DNS layer turns that into a message.

mod builder;
mod entry;
mod explain;
pub mod names;
pub mod outcome;
pub mod render;
mod reverse;
mod store;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use store::{SetRef, Store, Wire};

use arc_swap::ArcSwapOption;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};

pub use builder::{DEFAULT_APEX, DEFAULT_TTL, Settings, build, build_with};
pub use entry::{Entry, EntryName, Kind, ObjectRef, RecordData, Skip, Skipped};
pub use explain::{Explanation, explain_name};
pub use reverse::{AddressRange, ReverseZone, may_fall_through};

/// The zone being served, shared by the rebuild loop (the only writer) and every query.
/// `None` until the first zone is built. Cloning the `Arc` is cheap.
pub type SharedZone = Arc<ArcSwapOption<Zone>>;

/// Bound on CNAME links followed inside the zone, so that a loop is answered, not chased.
const MAX_CNAME_CHAIN: usize = 8;

/// Every domain we are authoritative for, with its records.
#[derive(Debug, Clone)]
pub struct Zone {
    /// Most specific (most labels) first, so the first that contains a name owns it.
    authorities: Vec<Authority>,
    serial: u32,
    /// Objects that claimed names but lost, or were skipped: for `/explain`, not queries.
    claims: Claims,
}

/// One configured domain: its SOA and its names.
#[derive(Debug, Clone)]
pub struct Authority {
    origin: LowerName,
    soa: Record,
    store: Store,
}

/// One name of a domain, as stored: read its records with [`NodeRef::records`].
#[derive(Clone, Copy)]
pub struct NodeRef<'z> {
    store: &'z Store,
    index: u32,
}

/// Everything known about who claimed which name, kept for debugging views.
#[derive(Debug, Clone, Default)]
pub struct Claims {
    /// Kinds that had records for a name but lost on precedence.
    pub shadowed: HashMap<LowerName, Vec<(Kind, ObjectRef)>>,
    /// Entries dropped while building (a name outside our domains, a CNAME beside
    /// addresses...), with the reason.
    pub dropped: Vec<Skipped>,
}

/// What the zone says about one question.
#[derive(Debug, PartialEq)]
pub enum Lookup<'z> {
    /// The name is outside every configured domain: not ours to answer.
    NotAuthoritative,
    /// The authoritative answer.
    Answer(Answer<'z>),
}

impl Lookup<'_> {
    /// Whether the name was ours to answer.
    pub fn is_answer(&self) -> bool {
        matches!(self, Lookup::Answer(_))
    }
}

/// An authoritative answer: response code and the three record sections.
#[derive(Debug, PartialEq)]
pub struct Answer<'z> {
    pub rcode: ResponseCode,
    /// Borrowed from the zone for a plain hit; owned when synthesised (wildcard owner
    /// names, CNAME chains).
    pub answers: Cow<'z, [Record]>,
    /// The SOA for negative answers (RFC 2308 §3), else empty.
    pub authorities: &'z [Record],
    /// Glue for NS answers.
    pub additionals: Cow<'z, [Record]>,
}

impl Zone {
    /// The serial in every SOA: changes whenever the records change, and never goes back.
    pub fn serial(&self) -> u32 {
        self.serial
    }

    pub fn authorities(&self) -> &[Authority] {
        &self.authorities
    }

    pub fn claims(&self) -> &Claims {
        &self.claims
    }

    /// The domain that owns `name`: the most specific configured domain containing it.
    pub fn authority_for(&self, name: &LowerName) -> Option<&Authority> {
        self.authorities.iter().find(|a| a.origin.zone_of(name))
    }

    /// Answers one question. Never fails: every name has an answer or is not ours.
    pub fn lookup(&self, name: &LowerName, rtype: RecordType) -> Lookup<'_> {
        match self.authority_for(name) {
            Some(authority) => Lookup::Answer(authority.lookup(name, rtype)),
            None => Lookup::NotAuthoritative,
        }
    }

    /// Number of names with records, over all domains (empty non-terminals excluded).
    pub fn name_count(&self) -> usize {
        self.authorities
            .iter()
            .map(|a| a.nodes().filter(|n| !n.is_empty_non_terminal()).count())
            .sum()
    }
}

impl Authority {
    pub fn origin(&self) -> &LowerName {
        &self.origin
    }

    pub fn soa(&self) -> &Record {
        &self.soa
    }

    /// Every name, in no particular order.
    pub fn nodes(&self) -> impl Iterator<Item = NodeRef<'_>> {
        (0..self.store.node_count() as u32).map(|index| NodeRef {
            store: &self.store,
            index,
        })
    }

    /// How many names with records this domain has that `other`, the same domain in
    /// another zone, has not (a rebuild's log line).
    pub fn names_not_in(&self, other: &Authority) -> usize {
        self.store.names_not_in(&other.store)
    }

    pub fn node(&self, name: &LowerName) -> Option<NodeRef<'_>> {
        let wire = Wire::of(name)?;
        let index = self.store.find_absolute(wire.as_bytes())?;
        Some(NodeRef {
            store: &self.store,
            index,
        })
    }

    /// Every name: the apex first, then by name as printed, so that two renders of one
    /// zone are the same and a diff of two reads well (`/zone`, the status page, zone
    /// transfers). Each name is printed once for its key, not twice per comparison.
    pub fn nodes_in_order(&self) -> Vec<NodeRef<'_>> {
        let mut names: Vec<(bool, String, NodeRef<'_>)> = self
            .nodes()
            .map(|node| {
                let name = node.name();
                (name != *self.origin, name.to_string(), node)
            })
            .collect();
        names.sort_unstable_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        names.into_iter().map(|(_, _, node)| node).collect()
    }

    /// Every record but the SOA with the objects behind it, in [`Self::nodes_in_order`],
    /// made one name at a time.
    pub fn records_in_order(&self) -> impl Iterator<Item = (Record, &[ObjectRef])> {
        self.nodes_in_order()
            .into_iter()
            .flat_map(|node| node.records())
    }

    fn lookup(&self, name: &LowerName, rtype: RecordType) -> Answer<'_> {
        let relative = Wire::of(name);
        let relative = relative
            .as_ref()
            .and_then(|w| self.store.relative_part(w.as_bytes()));
        if let Some(relative) = relative {
            if let Some(node) = self.store.find(relative) {
                return self.answer_at(name, node, rtype);
            }
            if self.store.has_wildcards()
                && let Some(wildcard) = self.covering_wildcard(relative)
            {
                // RFC 4592 §3.3: the wildcard's records, with the query name as owner.
                return self.answer_at(name, wildcard, rtype);
            }
        }
        // RFC 2308 §3: NXDOMAIN carries the SOA in the authority section.
        self.negative(ResponseCode::NXDomain)
    }

    /// The answer at an existing node (or a wildcard node standing in for `qname`),
    /// with `qname` as the owner of its records.
    fn answer_at(&self, qname: &LowerName, node: u32, rtype: RecordType) -> Answer<'_> {
        let is_apex = *qname == self.origin;
        if is_apex && matches!(rtype, RecordType::SOA | RecordType::ANY) {
            return self.positive(Cow::Borrowed(std::slice::from_ref(&self.soa)));
        }
        if rtype != RecordType::CNAME
            && let Some(cname) = self.store.set(node, RecordType::CNAME)
        {
            let mut first = Vec::new();
            cname.extend_into(&Name::from(qname), &mut first);
            return self.follow_cname(first, rtype);
        }
        let found = match rtype {
            // RFC 8482: a minimal answer to ANY: one RRset.
            RecordType::ANY => self.store.sets(node).next(),
            _ => self.store.set(node, rtype),
        };
        match found {
            Some(set) => {
                // NS: glue; SRV: the targets' addresses (RFC 2782, "Usage rules").
                let additionals = if matches!(rtype, RecordType::NS | RecordType::SRV) {
                    self.glue(set)
                } else {
                    Cow::Borrowed(&[][..])
                };
                let mut answers = Vec::new();
                set.extend_into(&Name::from(qname), &mut answers);
                Answer {
                    additionals,
                    ..self.positive(Cow::Owned(answers))
                }
            }
            // RFC 2308 §2.2: NODATA: NOERROR, no answer, SOA in authority.
            None => self.negative(ResponseCode::NoError),
        }
    }

    /// Follows a CNAME chain inside this domain, appending each target's records. The
    /// response code and authority section are those of the last name in the chain
    /// (RFC 6604 §3, RFC 2308 §2.1 and §2.2).
    fn follow_cname(&self, mut answers: Vec<Record>, rtype: RecordType) -> Answer<'_> {
        for _ in 0..MAX_CNAME_CHAIN {
            let Some(target) = answers.last().and_then(cname_target) else {
                break;
            };
            // RFC 2181 §5: an RRset has no duplicates, so a name already in the chain (a
            // loop, possibly through a wildcard: compare the expanded owner, never `*`)
            // ends it; we answer what we have.
            if answers.iter().any(|r| r.name == *target) {
                break;
            }
            let target = target.clone();
            let Some(wire) = Wire::of(&target) else {
                break;
            };
            let Some(relative) = self.store.relative_part(wire.as_bytes()) else {
                break; // the resolver follows names outside our domain itself
            };
            let node = match self.store.find(relative) {
                Some(node) => node,
                None => match self.covering_wildcard(relative) {
                    Some(node) => node,
                    // RFC 6604 §3: the chain ends at a name that does not exist:
                    // NXDOMAIN, the chain in the answer, the SOA in authority.
                    None => return self.negative_after(answers, ResponseCode::NXDomain),
                },
            };
            if let Some(next) = self.store.set(node, RecordType::CNAME) {
                next.extend_into(&target, &mut answers);
                continue;
            }
            let found = match rtype {
                RecordType::SOA if relative.is_empty() => {
                    let mut soa = self.soa.clone();
                    soa.name = target;
                    answers.push(soa);
                    true
                }
                // RFC 8482: a minimal answer to ANY: one RRset.
                RecordType::ANY => self.store.sets(node).next().is_some_and(|set| {
                    set.extend_into(&target, &mut answers);
                    true
                }),
                _ => self.store.set(node, rtype).is_some_and(|set| {
                    set.extend_into(&target, &mut answers);
                    true
                }),
            };
            if !found {
                // RFC 2308 §3: a chain ending in no data (another type, an empty
                // non-terminal, a wildcard without that type) carries the SOA too.
                return self.negative_after(answers, ResponseCode::NoError);
            }
            break;
        }
        self.positive(Cow::Owned(answers))
    }

    /// The wildcard node that answers for `name`, if any (for `/explain`).
    fn wildcard_for(&self, name: &LowerName) -> Option<NodeRef<'_>> {
        let wire = Wire::of(name)?;
        let relative = self.store.relative_part(wire.as_bytes())?;
        let index = self.covering_wildcard(relative)?;
        Some(NodeRef {
            store: &self.store,
            index,
        })
    }

    /// RFC 4592 §3.3.1: the wildcard at the closest encloser, if that has one. An
    /// existing name or empty non-terminal is its own closest encloser, so it is never
    /// covered. `relative` is the name's wire labels below the origin.
    fn covering_wildcard(&self, relative: &[u8]) -> Option<u32> {
        let mut encloser = store::parent(relative)?;
        loop {
            if encloser.is_empty() || self.store.find(encloser).is_some() {
                let mut wildcard = [0u8; 256];
                let len = encloser.len() + 2;
                wildcard.get_mut(..2)?.copy_from_slice(b"\x01*");
                wildcard.get_mut(2..len)?.copy_from_slice(encloser);
                return self.store.find(&wildcard[..len]);
            }
            encloser = store::parent(encloser)?;
        }
    }

    /// The A/AAAA records of the NS (or SRV) targets that are in this domain.
    fn glue(&self, set: SetRef<'_>) -> Cow<'_, [Record]> {
        let mut glue = Vec::new();
        for target in set.targets() {
            let Some(wire) = Wire::of_wire(target) else {
                continue;
            };
            if let Some(node) = self.store.find_absolute(wire.as_bytes()) {
                let mut owner = None;
                for rtype in [RecordType::A, RecordType::AAAA] {
                    if let Some(set) = self.store.set(node, rtype) {
                        let owner = owner.get_or_insert_with(|| self.store.name(node));
                        set.extend_into(owner, &mut glue);
                    }
                }
            }
        }
        Cow::Owned(glue)
    }

    fn positive<'z>(&'z self, answers: Cow<'z, [Record]>) -> Answer<'z> {
        Answer {
            rcode: ResponseCode::NoError,
            answers,
            authorities: &[],
            additionals: Cow::Borrowed(&[]),
        }
    }

    fn negative(&self, rcode: ResponseCode) -> Answer<'_> {
        self.negative_after(Vec::new(), rcode)
    }

    /// A negative answer after a CNAME chain (empty for none): the SOA in authority.
    fn negative_after(&self, chain: Vec<Record>, rcode: ResponseCode) -> Answer<'_> {
        Answer {
            rcode,
            answers: Cow::Owned(chain),
            authorities: std::slice::from_ref(&self.soa),
            additionals: Cow::Borrowed(&[]),
        }
    }
}

impl<'z> NodeRef<'z> {
    /// The name, fully qualified and lower-case.
    pub fn name(&self) -> Name {
        self.store.name(self.index)
    }

    /// An empty non-terminal: exists because a name below it does.
    pub fn is_empty_non_terminal(&self) -> bool {
        self.store.is_empty_non_terminal(self.index)
    }

    /// The name's records, RRset by RRset, each with the objects that claimed it (none
    /// for the records the zone makes itself, NS).
    pub fn records(&self) -> Vec<(Record, &'z [ObjectRef])> {
        let owner = self.name();
        let mut records = Vec::new();
        for set in self.store.sets(self.index) {
            records.extend(set.records(&owner).zip(set.origins()));
        }
        records
    }

    /// Per record, the objects that claimed it: what counting needs, without making
    /// the records.
    pub fn origins(&self) -> impl Iterator<Item = &'z [ObjectRef]> + use<'z> {
        self.store.sets(self.index).flat_map(|set| set.origins())
    }
}

impl std::fmt::Debug for NodeRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeRef")
            .field("name", &self.name())
            .field("records", &self.records())
            .finish()
    }
}

fn cname_target(record: &Record) -> Option<&Name> {
    match &record.data {
        RData::CNAME(cname) => Some(&cname.0),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
