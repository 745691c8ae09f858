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
pub mod render;
mod reverse;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwapOption;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};

pub use builder::{DEFAULT_APEX, DEFAULT_TTL, Settings, build, build_with};
pub use entry::{Entry, EntryName, Kind, ObjectRef, RecordData, Skip, Skipped};
pub use explain::{Explanation, explain_name};
pub use reverse::{AddressRange, ReverseZone};

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
    nodes: HashMap<LowerName, Node>,
    /// Whether any `*` name exists: lets a miss skip the closest-encloser walk.
    has_wildcards: bool,
}

/// The records at one name. A name with no records is an empty non-terminal.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Node {
    rrsets: Vec<RrSet>,
}

/// The records of one type at one name, with the objects that claimed each record.
#[derive(Debug, Clone, PartialEq)]
pub struct RrSet {
    pub rtype: RecordType,
    pub records: Vec<Record>,
    /// `origins[i]` lists the objects that claimed `records[i]` (several objects may
    /// publish the same address). Empty for the records the zone makes itself (NS).
    pub origins: Vec<Vec<ObjectRef>>,
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
            .map(|a| a.nodes.values().filter(|n| !n.rrsets.is_empty()).count())
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

    /// Every name and its node, in no particular order.
    pub fn nodes(&self) -> impl Iterator<Item = (&LowerName, &Node)> {
        self.nodes.iter()
    }

    pub fn node(&self, name: &LowerName) -> Option<&Node> {
        self.nodes.get(name)
    }

    fn lookup(&self, name: &LowerName, rtype: RecordType) -> Answer<'_> {
        if let Some(node) = self.nodes.get(name) {
            return self.answer_at(name, node, rtype, None);
        }
        if self.has_wildcards
            && let Some(wildcard) = self.covering_wildcard(name)
        {
            // RFC 4592 §3.3: the wildcard's records, with the query name as owner.
            return self.answer_at(name, wildcard, rtype, Some(name));
        }
        // RFC 2308 §3: NXDOMAIN carries the SOA in the authority section.
        self.negative(ResponseCode::NXDomain)
    }

    /// The answer at an existing node (or a wildcard node standing in for `qname`).
    fn answer_at<'z>(
        &'z self,
        qname: &LowerName,
        node: &'z Node,
        rtype: RecordType,
        synthesise_owner: Option<&LowerName>,
    ) -> Answer<'z> {
        let is_apex = *qname == self.origin;
        if is_apex && matches!(rtype, RecordType::SOA | RecordType::ANY) {
            return self.positive(Cow::Borrowed(std::slice::from_ref(&self.soa)));
        }
        if rtype != RecordType::CNAME
            && let Some(cname) = node.rrset(RecordType::CNAME)
        {
            let first = owned_as(&cname.records, synthesise_owner);
            return self.follow_cname(first, rtype);
        }
        let found = match rtype {
            // RFC 8482: a minimal answer to ANY: one RRset.
            RecordType::ANY => node.rrsets.first(),
            _ => node.rrset(rtype),
        };
        match found {
            Some(set) => {
                // NS: glue; SRV: the targets' addresses (RFC 2782, "Usage rules").
                let additionals = if matches!(rtype, RecordType::NS | RecordType::SRV) {
                    self.glue(&set.records)
                } else {
                    Cow::Borrowed(&[][..])
                };
                let answers = match synthesise_owner {
                    Some(owner) => Cow::Owned(owned_as(&set.records, Some(owner))),
                    None => Cow::Borrowed(&set.records[..]),
                };
                Answer {
                    additionals,
                    ..self.positive(answers)
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
            let target = LowerName::from(target);
            if !self.origin.zone_of(&target) {
                break; // the resolver follows names outside our domain itself
            }
            let node = match self.nodes.get(&target) {
                Some(node) => node,
                None => match self.covering_wildcard(&target) {
                    Some(node) => node,
                    // RFC 6604 §3: the chain ends at a name that does not exist:
                    // NXDOMAIN, the chain in the answer, the SOA in authority.
                    None => return self.negative_after(answers, ResponseCode::NXDomain),
                },
            };
            let owner = Some(&target);
            if let Some(next) = node.rrset(RecordType::CNAME) {
                answers.extend(owned_as(&next.records, owner));
                continue;
            }
            match self.rrset_at(&target, node, rtype) {
                Some(records) => answers.extend(owned_as(records, owner)),
                // RFC 2308 §3: a chain ending in no data (another type, an empty
                // non-terminal, a wildcard without that type) carries the SOA too.
                None => return self.negative_after(answers, ResponseCode::NoError),
            }
            break;
        }
        self.positive(Cow::Owned(answers))
    }

    /// The records of `rtype` at `name` (the SOA at the apex; one RRset for ANY).
    fn rrset_at<'z>(
        &'z self,
        name: &LowerName,
        node: &'z Node,
        rtype: RecordType,
    ) -> Option<&'z [Record]> {
        match rtype {
            RecordType::SOA if *name == self.origin => Some(std::slice::from_ref(&self.soa)),
            // RFC 8482: a minimal answer to ANY: one RRset.
            RecordType::ANY => node.rrsets.first().map(|s| &s.records[..]),
            _ => node.rrset(rtype).map(|s| &s.records[..]),
        }
    }

    /// RFC 4592 §3.3.1: the wildcard at the closest encloser, if that has one. An
    /// existing name or empty non-terminal is its own closest encloser, so it is never
    /// covered.
    fn covering_wildcard(&self, name: &LowerName) -> Option<&Node> {
        let mut encloser = name.base_name();
        while self.origin.zone_of(&encloser) {
            if self.nodes.contains_key(&encloser) {
                // NB: `into_wildcard` replaces the first label; the wildcard is a child.
                let wildcard = Name::from(&encloser).prepend_label("*").ok()?;
                return self.nodes.get(&LowerName::from(wildcard));
            }
            encloser = encloser.base_name();
        }
        None
    }

    /// The A/AAAA records of the NS targets that are in this domain.
    fn glue(&self, records: &[Record]) -> Cow<'_, [Record]> {
        let mut glue = Vec::new();
        for target in records.iter().filter_map(ns_target) {
            if let Some(node) = self.nodes.get(&LowerName::from(target)) {
                for rtype in [RecordType::A, RecordType::AAAA] {
                    if let Some(set) = node.rrset(rtype) {
                        glue.extend_from_slice(&set.records);
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

impl Node {
    pub fn rrset(&self, rtype: RecordType) -> Option<&RrSet> {
        self.rrsets.iter().find(|s| s.rtype == rtype)
    }

    pub fn rrsets(&self) -> &[RrSet] {
        &self.rrsets
    }

    /// An empty non-terminal: exists because a name below it does.
    pub fn is_empty_non_terminal(&self) -> bool {
        self.rrsets.is_empty()
    }
}

/// Copies records, renaming them to `owner` when one is given (wildcard synthesis).
fn owned_as(records: &[Record], owner: Option<&LowerName>) -> Vec<Record> {
    records
        .iter()
        .map(|r| {
            let mut r = r.clone();
            if let Some(owner) = owner {
                r.name = Name::from(owner);
            }
            r
        })
        .collect()
}

fn cname_target(record: &Record) -> Option<&Name> {
    match &record.data {
        RData::CNAME(cname) => Some(&cname.0),
        _ => None,
    }
}

/// The name an NS or SRV record points to, whose addresses go in the additional section.
fn ns_target(record: &Record) -> Option<&Name> {
    match &record.data {
        RData::NS(ns) => Some(&ns.0),
        RData::SRV(srv) => Some(&srv.target),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
