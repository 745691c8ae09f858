//! Builds a [`Zone`] from the entries every source produced.
//!
//! The rules that decide what a name answers live here, in one place: which domain owns
//! a name, which kind wins when kinds disagree (precedence is the order of `--resources`),
//! union within a kind, a CNAME alone at its name, and the apex records.

use std::collections::BTreeMap;
use std::hash::BuildHasher;
use std::net::IpAddr;

use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};

use super::reverse::{ReverseZone, ptr_name};
use super::store::{PendingSet, StoreBuilder, Value};
use super::{
    Authority, Claims, Entry, EntryName, Kind, ObjectRef, RecordData, Skip, Skipped, Zone,
};

/// SOA timers for secondaries (RFC 1912 §2.2 ranges). NOTIFY tells them of a change at
/// once, so the refresh is only a safety net; the expire is two weeks, so a secondary
/// that cannot reach us (the cluster is down) keeps answering for days.
const SOA_REFRESH: i32 = 3600;
const SOA_RETRY: i32 = 600;
const SOA_EXPIRE: i32 = 1_209_600;

/// What the builder needs to know besides the entries. Cheap to clone.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// The domains we are authoritative for (fully qualified, any case).
    pub domains: Vec<Name>,
    /// TTL of every record without its own, and the SOA minimum (negative TTL).
    pub ttl: u32,
    /// The primary name server's name, relative to each domain.
    pub apex: Name,
    /// An optional second name server, relative to each domain.
    pub secondary: Option<Name>,
    /// The kinds that may publish names, first wins.
    pub precedence: Vec<Kind>,
    /// The `--cluster`s in the order given: when two claim a name, the first wins,
    /// before kinds are compared. Objects of no named cluster (the one cluster, the
    /// manifests, zone files) rank below every named one.
    pub clusters: Vec<String>,
    /// Address ranges whose reverse domains we serve, with a PTR per served address.
    pub reverse_zones: Vec<ReverseZone>,
}

/// The `--ttl` default: a minute, short enough that a moved app is found again quickly.
pub const DEFAULT_TTL: u32 = 60;
/// The `--apex` default, as k8s_gateway names its own server.
pub const DEFAULT_APEX: &str = "dns1.kube-system";

impl Settings {
    /// The documented defaults for `domains`: TTL 60, apex `dns1.kube-system`, no
    /// secondary, every kind in the default precedence order.
    pub fn with_defaults(domains: Vec<Name>) -> Self {
        Settings {
            domains,
            ttl: DEFAULT_TTL,
            apex: Name::from_ascii(DEFAULT_APEX).unwrap_or_default(),
            secondary: None,
            precedence: Kind::DEFAULT_ORDER.to_vec(),
            clusters: Vec::new(),
            reverse_zones: Vec::new(),
        }
    }

    /// Where a claim stands, lower first: its cluster's place in `--cluster` (no named
    /// cluster after every named one), then its kind's in the precedence. `None`: the
    /// kind does not publish.
    fn rank(&self, kind: Kind, object: &ObjectRef) -> Option<(usize, usize)> {
        let kind = self.precedence.iter().position(|k| *k == kind)?;
        let cluster = object
            .cluster
            .as_deref()
            .map_or(self.clusters.len(), |name| {
                self.clusters
                    .iter()
                    .position(|c| c == name)
                    .unwrap_or(self.clusters.len())
            });
        Some((cluster, kind))
    }

    /// A rank as one number, for the PTR order (clusters first, then kinds).
    fn flat_rank(&self, (cluster, kind): (usize, usize)) -> usize {
        cluster * (self.precedence.len() + 1) + kind
    }

    /// Every domain we answer for: the forward domains, then the reverse ones.
    pub fn origins(&self) -> Vec<Name> {
        self.domains
            .iter()
            .cloned()
            .chain(self.reverse_zones.iter().map(ReverseZone::origin))
            .collect()
    }
}

/// An address a forward name serves, as the reverse zones see it.
struct Published {
    ip: IpAddr,
    /// Where the name's winning claim stands (cluster, then kind): the PTR order.
    rank: usize,
    name: LowerName,
    ttl: u32,
    objects: Vec<ObjectRef>,
}

/// One name's claims before precedence: the kind that made them and what they say.
struct Claim {
    kind: Kind,
    data: RecordData,
    ttl: u32,
    object: ObjectRef,
}

/// An entry placed under one domain, in one flat list per domain. The claim is made
/// from the entry when its name's turn comes: a map from name to a list of claims would
/// cost a table slot and a small vector (4 claims' room) per name beside the entries,
/// and those vectors were most of a large zone's peak memory.
struct Placed {
    /// The name's hash: same names meet without comparing names.
    hash: u64,
    /// The entry's position: a name's claims keep the entries' order.
    entry: usize,
    name: LowerName,
}

/// No next placed entry of the same name.
const LAST: u32 = u32::MAX;

/// Links each placed entry to the next one of the same name, in the entries' order.
/// Returns the links, and which entries are their name's first. The names are found
/// through a table of hashes, in one pass in the entries' order, so the entries are
/// then read in the order they were made. Sorting by name read them in hash order: a
/// cache miss per entry in a large zone (`cargo bench --bench build`).
fn link_same_names(placed: &[Placed]) -> (Vec<u32>, Vec<bool>) {
    let mut next = vec![LAST; placed.len()];
    let mut first_of_name = vec![false; placed.len()];
    // Per slot: the hash's high half and the name's first placed entry, and per first
    // entry the last one so far (where the next of the same name is linked).
    let slots = (placed.len().max(4) * 2).next_power_of_two();
    let mask = slots - 1;
    let mut table: Vec<(u32, u32)> = vec![(0, LAST); slots];
    let mut last: Vec<u32> = (0..placed.len() as u32).collect();
    for (at, p) in placed.iter().enumerate() {
        let check = (p.hash >> 32) as u32;
        let mut slot = p.hash as usize & mask;
        loop {
            let (seen, first) = table[slot];
            if first == LAST {
                table[slot] = (check, at as u32);
                first_of_name[at] = true;
                break;
            }
            let first = first as usize;
            if seen == check && placed[first].hash == p.hash && placed[first].name == p.name {
                next[last[first] as usize] = at as u32;
                last[first] = at as u32;
                break;
            }
            slot = (slot + 1) & mask;
        }
    }
    (next, first_of_name)
}

/// The claims of each name, in the order of the names' first entries, each name's in
/// the entries' order; `next` and `first_of_name` are [`link_same_names`]'.
fn group_by_name<'a>(
    placed: Vec<Placed>,
    (next, first_of_name): (Vec<u32>, Vec<bool>),
    entries: &'a [Entry],
    origin: &'a LowerName,
    default_ttl: u32,
) -> impl Iterator<Item = (LowerName, Vec<Claim>)> + 'a {
    let claim = move |p: &Placed| {
        let entry = &entries[p.entry];
        Claim {
            kind: entry.kind,
            data: completed_target(entry, &p.name, origin),
            ttl: entry.ttl.unwrap_or(default_ttl),
            object: entry.object.clone(),
        }
    };
    let mut at = 0;
    std::iter::from_fn(move || {
        while first_of_name.get(at) == Some(&false) {
            at += 1;
        }
        let first = placed.get(at)?;
        let mut claims = vec![claim(first)];
        let mut then = next[at];
        while then != LAST {
            claims.push(claim(&placed[then as usize]));
            then = next[then as usize];
        }
        at += 1;
        Some((first.name.clone(), claims))
    })
}

/// Builds the zone. `previous` is the zone being replaced: its serial is kept when the
/// records are the same, else the new serial is greater (RFC 1982), `now` (Unix seconds)
/// when that is later.
pub fn build(
    entries: impl IntoIterator<Item = Entry>,
    settings: &Settings,
    previous: Option<&Zone>,
    now: u32,
) -> Zone {
    build_with(entries, Vec::new(), settings, previous, now)
}

/// [`build`], with what the sources could not turn into entries: kept in the zone's
/// claims (ahead of what the builder drops) for `/explain` and the skip metrics.
pub fn build_with(
    entries: impl IntoIterator<Item = Entry>,
    skipped: Vec<Skipped>,
    settings: &Settings,
    previous: Option<&Zone>,
    now: u32,
) -> Zone {
    let mut origins: Vec<LowerName> = settings.domains.iter().map(LowerName::from).collect();
    origins.sort_by_key(|o| std::cmp::Reverse(o.num_labels()));
    origins.dedup();

    let mut claims = Claims {
        dropped: skipped,
        ..Claims::default()
    };
    // Kept whole while the names are grouped: each claim is made from its entry then.
    let entries: Vec<Entry> = entries.into_iter().collect();
    let mut by_name: Vec<Vec<Placed>> = origins.iter().map(|_| Vec::new()).collect();
    let hasher = foldhash::fast::FixedState::default();
    for (position, entry) in entries.iter().enumerate() {
        if !settings.precedence.contains(&entry.kind) {
            continue;
        }
        let placed = place(&entry.name, &origins);
        if placed.is_empty() {
            claims.dropped.push(Skipped {
                object: entry.object.clone(),
                reason: Skip::OutsideDomains,
                detail: format!(
                    "{} is not under any configured domain",
                    entry_name(&entry.name)
                ),
            });
        }
        for (index, name) in placed {
            by_name[index].push(Placed {
                hash: hasher.hash_one(&name),
                entry: position,
                name,
            });
        }
    }

    let mut authorities = Vec::with_capacity(origins.len() + settings.reverse_zones.len());
    let mut published = Vec::new();
    for (origin, names) in origins.into_iter().zip(by_name) {
        authorities.push(build_authority(
            origin,
            names,
            &entries,
            settings,
            &mut claims,
            &mut published,
        ));
    }
    authorities.extend(build_reverse(settings, published));
    // The most specific domain first, whether forward or reverse.
    authorities.sort_by_key(|a| std::cmp::Reverse(a.origin.num_labels()));

    let same_records = previous.is_some_and(|p| {
        p.authorities.len() == authorities.len()
            && p.authorities
                .iter()
                .zip(&authorities)
                .all(|(a, b)| a.origin == b.origin && a.store.same_records(&b.store))
    });
    let serial = match previous {
        Some(p) if same_records => p.serial,
        Some(p) => now.max(p.serial.wrapping_add(1)),
        None => now,
    };
    for authority in &mut authorities {
        if let RData::SOA(soa) = &mut authority.soa.data {
            soa.serial = serial;
        }
    }
    Zone {
        authorities,
        serial,
        claims,
    }
}

fn entry_name(name: &EntryName) -> &Name {
    match name {
        EntryName::Absolute(n) | EntryName::Hostname(n) => n,
    }
}

/// The entry's data, with a relative SRV target completed by `origin` when the entry's
/// name was placed relative to that domain (a Service's `_http._tcp.web.apps` SRV points
/// to `web.apps.<the same domain>`).
fn completed_target(entry: &Entry, placed: &LowerName, origin: &LowerName) -> RecordData {
    if let (
        EntryName::Hostname(name),
        RecordData::Srv {
            priority,
            weight,
            port,
            target,
        },
    ) = (&entry.name, &entry.data)
        && !target.is_fqdn()
    {
        let mut absolute = name.clone();
        absolute.set_fqdn(true);
        if LowerName::from(&absolute) != *placed
            && let Ok(full) = target.clone().append_domain(&Name::from(origin))
        {
            return RecordData::Srv {
                priority: *priority,
                weight: *weight,
                port: *port,
                target: full,
            };
        }
    }
    entry.data.clone()
}

/// Where a name goes: `(index of the owning domain, lower-case name)`, once per domain
/// for a relative host name.
fn place(name: &EntryName, origins: &[LowerName]) -> Vec<(usize, LowerName)> {
    let (name, relative_ok) = match name {
        EntryName::Absolute(n) => (n, false),
        EntryName::Hostname(n) => (n, true),
    };
    let mut fqdn = name.clone();
    fqdn.set_fqdn(true);
    let lower = LowerName::from(&fqdn);
    if let Some(index) = origins.iter().position(|o| o.zone_of(&lower)) {
        return vec![(index, lower)];
    }
    if !relative_ok {
        return Vec::new();
    }
    let mut relative = name.clone();
    relative.set_fqdn(false);
    origins
        .iter()
        .enumerate()
        .filter_map(|(index, origin)| {
            let full = relative.clone().append_domain(&Name::from(origin)).ok()?;
            let full = LowerName::from(&full);
            // NB: a relative name may land under a more specific domain than the one it
            // was appended to (`web.lab` under `home.example` when `lab.home.example` is
            // configured too): the most specific domain owns it.
            let owner = origins.iter().position(|o| o.zone_of(&full))?;
            (owner == index).then_some((index, full))
        })
        .collect()
}

fn build_authority(
    origin: LowerName,
    placed: Vec<Placed>,
    entries: &[Entry],
    settings: &Settings,
    claims: &mut Claims,
    published: &mut Vec<Published>,
) -> Authority {
    let origin_name = Name::from(&origin);
    let links = link_same_names(&placed);
    let names = links.1.iter().filter(|&&first| first).count();
    // About one empty non-terminal for every two names (`_tcp` above a Service's SRV).
    let mut store = StoreBuilder::new(&origin, names * 3 / 2);
    let mut apex = Vec::new();

    for (name, mut name_claims) in group_by_name(placed, links, entries, &origin, settings.ttl) {
        let Some(best) = name_claims
            .iter()
            .filter_map(|c| settings.rank(c.kind, &c.object))
            .min()
        else {
            continue;
        };
        // One kind of one cluster wins; within it, the union.
        let wins = |c: &Claim| settings.rank(c.kind, &c.object) == Some(best);
        let (won, lost): (Vec<Claim>, Vec<Claim>) = if name_claims.iter().all(wins) {
            (name_claims, Vec::new())
        } else {
            name_claims.drain(..).partition(wins)
        };
        if !lost.is_empty() {
            let mut shadowed: Vec<(Kind, ObjectRef)> =
                lost.into_iter().map(|c| (c.kind, c.object)).collect();
            shadowed.sort();
            shadowed.dedup();
            claims.shadowed.insert(name.clone(), shadowed);
        }
        let is_apex = name == origin;
        let rrsets = rrsets_for(&name, won, is_apex, claims);
        if rrsets.is_empty() {
            continue;
        }
        if !name.is_wildcard() && !settings.reverse_zones.is_empty() {
            publish_addresses(
                &name,
                &rrsets,
                settings,
                settings.flat_rank(best),
                published,
            );
        }
        if is_apex {
            apex = rrsets;
        } else {
            store.add(&name, rrsets);
        }
    }
    finish_authority(origin, store, apex, &origin_name, settings)
}

/// Notes the addresses at `name` that fall in a reverse zone. Wildcard owners publish
/// none: `*.apps` is not a host name a PTR could point to.
fn publish_addresses(
    name: &LowerName,
    rrsets: &[PendingSet],
    settings: &Settings,
    rank: usize,
    published: &mut Vec<Published>,
) {
    for set in rrsets {
        for (value, objects) in &set.records {
            let Value::Address(ip) = *value else {
                continue;
            };
            if settings.reverse_zones.iter().any(|z| z.contains(ip)) {
                published.push(Published {
                    ip,
                    rank,
                    name: name.clone(),
                    ttl: set.ttl,
                    objects: objects.clone(),
                });
            }
        }
    }
}

/// The reverse domains: one PTR per name an address is served under, ordered by the
/// names' kind precedence then name, in the most specific reverse zone containing it.
fn build_reverse(settings: &Settings, mut published: Vec<Published>) -> Vec<Authority> {
    let mut zones: Vec<(LowerName, &ReverseZone)> = settings
        .reverse_zones
        .iter()
        .map(|z| (LowerName::from(z.origin()), z))
        .collect();
    zones.sort_by_key(|(o, _)| std::cmp::Reverse(o.num_labels()));
    zones.dedup_by(|a, b| a.0 == b.0);
    // The NS and SOA names of a reverse zone are our name in the first forward domain.
    let ns_base = settings.domains.first().cloned().unwrap_or_else(Name::root);

    published.sort_by(|a, b| {
        (a.ip, a.rank, a.name.to_string()).cmp(&(b.ip, b.rank, b.name.to_string()))
    });
    // Per reverse zone, its names and the records at its apex (a /32 or /128 zone's one
    // PTR).
    let mut by_zone: Vec<(StoreBuilder, Vec<PendingSet>)> = zones
        .iter()
        .map(|(origin, _)| (StoreBuilder::new(origin, 16), Vec::new()))
        .collect();
    let mut at = 0;
    while at < published.len() {
        let ip = published[at].ip;
        let end = published[at..]
            .iter()
            .position(|p| p.ip != ip)
            .map_or(published.len(), |n| at + n);
        let group = &published[at..end];
        at = end;
        let Some(index) = zones.iter().position(|(_, z)| z.contains(ip)) else {
            continue;
        };
        let owner = ptr_name(ip);
        // RFC 2181 §5.2: one TTL per RRset, the lowest.
        let ttl = group.iter().map(|p| p.ttl).min().unwrap_or(settings.ttl);
        let mut set = PendingSet {
            rtype: RecordType::PTR,
            ttl,
            records: Vec::new(),
        };
        for p in group {
            let target = Name::from(&p.name);
            if set
                .records
                .iter()
                .any(|(v, _)| matches!(v, Value::Ptr(t) if *t == target))
            {
                continue; // one PTR per name
            }
            set.records.push((Value::Ptr(target), p.objects.clone()));
        }
        let (store, apex) = &mut by_zone[index];
        if owner == zones[index].0 {
            *apex = vec![set];
        } else {
            store.add(&owner, vec![set]);
        }
    }
    zones
        .into_iter()
        .zip(by_zone)
        .map(|((origin, _), (store, apex))| {
            finish_authority(origin, store, apex, &ns_base, settings)
        })
        .collect()
}

/// Adds the apex NS and SOA. The name server names are `--apex`/`--secondary` relative
/// to `ns_base` (the domain itself for forward domains).
fn finish_authority(
    origin: LowerName,
    mut store: StoreBuilder,
    mut apex: Vec<PendingSet>,
    ns_base: &Name,
    settings: &Settings,
) -> Authority {
    let origin_name = Name::from(&origin);
    let ns_names: Vec<Name> = std::iter::once(&settings.apex)
        .chain(settings.secondary.as_ref())
        .filter_map(|n| relative_to(n, ns_base))
        .collect();
    let ns = PendingSet {
        rtype: RecordType::NS,
        ttl: settings.ttl,
        records: ns_names
            .iter()
            .map(|n| (Value::Ns(n.clone()), Vec::new()))
            .collect(),
    };
    apex.retain(|s| s.rtype != RecordType::NS);
    apex.push(ns);
    apex.sort_by_key(|s| u16::from(s.rtype));
    store.add(&origin, apex);

    let mname = ns_names
        .first()
        .cloned()
        .unwrap_or_else(|| origin_name.clone());
    let rname = relative_to(&Name::from_ascii("hostmaster").unwrap_or_default(), ns_base)
        .unwrap_or_else(|| origin_name.clone());
    let soa = SOA::new(
        mname,
        rname,
        0,
        SOA_REFRESH,
        SOA_RETRY,
        SOA_EXPIRE,
        settings.ttl,
    );
    let soa = Record::from_rdata(origin_name, settings.ttl, RData::SOA(soa));

    Authority {
        origin,
        soa,
        store: store.finish(),
    }
}

/// `name.<origin>`, or `None` if that is not a valid name.
fn relative_to(name: &Name, origin: &Name) -> Option<Name> {
    let mut relative = name.clone();
    relative.set_fqdn(false);
    relative.append_domain(origin).ok()
}

/// Turns one name's winning claims into record sets: union without duplicates, one TTL
/// per set (RFC 2181 §5.2: the lowest), and a CNAME only where nothing else is.
fn rrsets_for(
    name: &LowerName,
    mut won: Vec<Claim>,
    is_apex: bool,
    claims: &mut Claims,
) -> Vec<PendingSet> {
    // Most names have one claim (a Service's address): one set of one record, without
    // the merging below and its map.
    if won.len() == 1 && !(is_apex && matches!(won[0].data, RecordData::Cname(_))) {
        let claim = won.swap_remove(0);
        let (rtype, value) = record_value(claim.data);
        return vec![PendingSet {
            rtype,
            ttl: claim.ttl,
            records: vec![(value, vec![claim.object])],
        }];
    }
    let has_other = won.iter().any(|c| !matches!(c.data, RecordData::Cname(_)));
    let mut cname_kept: Option<Name> = None;
    let mut merged: BTreeMap<RecordData, (u32, Vec<ObjectRef>)> = BTreeMap::new();
    let mut won = won;
    // Deterministic choice among conflicting CNAMEs: the lowest target wins.
    won.sort_by(|a, b| a.data.cmp(&b.data).then_with(|| a.object.cmp(&b.object)));
    for claim in won {
        if let RecordData::Cname(target) = &claim.data {
            let conflict = if is_apex {
                Some("a CNAME cannot stand at the domain's apex (RFC 1034 §3.6.2)".to_string())
            } else if has_other {
                Some(format!(
                    "{name} has other records, so its CNAME to {target} is dropped (RFC 1034 §3.6.2)"
                ))
            } else if cname_kept.as_ref().is_some_and(|kept| kept != target) {
                Some(format!(
                    "{name} already has a CNAME, so the one to {target} is dropped"
                ))
            } else {
                None
            };
            if let Some(detail) = conflict {
                claims.dropped.push(Skipped {
                    object: claim.object,
                    reason: Skip::CnameConflict,
                    detail,
                });
                continue;
            }
            cname_kept = Some(target.clone());
        }
        let slot = merged.entry(claim.data).or_insert((claim.ttl, Vec::new()));
        slot.0 = slot.0.min(claim.ttl);
        if !slot.1.contains(&claim.object) {
            slot.1.push(claim.object);
        }
    }

    let mut sets: Vec<PendingSet> = Vec::new();
    for (data, (ttl, objects)) in merged {
        let (rtype, value) = record_value(data);
        match sets.iter_mut().find(|s| s.rtype == rtype) {
            Some(set) => {
                // RFC 2181 §5.2: one TTL per RRset, the lowest.
                set.ttl = set.ttl.min(ttl);
                set.records.push((value, objects));
            }
            None => sets.push(PendingSet {
                rtype,
                ttl,
                records: vec![(value, objects)],
            }),
        }
    }
    sets
}

/// A record's type and its value as the store takes it.
fn record_value(data: RecordData) -> (RecordType, Value) {
    match data {
        RecordData::Address(ip @ IpAddr::V4(_)) => (RecordType::A, Value::Address(ip)),
        RecordData::Address(ip @ IpAddr::V6(_)) => (RecordType::AAAA, Value::Address(ip)),
        RecordData::Cname(target) => (RecordType::CNAME, Value::Cname(target)),
        RecordData::Txt(text) => (RecordType::TXT, Value::Txt(text)),
        RecordData::Srv {
            priority,
            weight,
            port,
            target,
        } => (
            RecordType::SRV,
            Value::Srv {
                priority,
                weight,
                port,
                target,
            },
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placed(names: &[(&str, u64)]) -> Vec<Placed> {
        (names.iter().enumerate())
            .map(|(entry, (name, hash))| Placed {
                hash: *hash,
                entry,
                name: LowerName::from(Name::from_ascii(name).unwrap()),
            })
            .collect()
    }

    #[test]
    fn same_names_are_linked_in_the_entries_order_and_equal_hashes_are_not_enough() {
        // `a` three times, apart; `b` and `c` share a hash (and its slot) but are two
        // names; `d` is alone.
        let list = placed(&[
            ("a.home.example.", 7),
            ("b.home.example.", 9),
            ("a.home.example.", 7),
            ("c.home.example.", 9),
            ("d.home.example.", 7 << 32),
            ("a.home.example.", 7),
        ]);
        let (next, first_of_name) = link_same_names(&list);
        assert_eq!(first_of_name.iter().filter(|&&first| first).count(), 4);
        assert_eq!(first_of_name, [true, true, false, true, true, false]);
        assert_eq!(next, [2, LAST, 5, LAST, LAST, LAST]);

        let entries: Vec<Entry> = (list.iter())
            .map(|p| Entry {
                name: EntryName::Absolute(Name::from(&p.name)),
                data: RecordData::Address(IpAddr::from([10, 0, 0, p.entry as u8])),
                ttl: None,
                kind: Kind::Service,
                object: ObjectRef::new("Service", "apps", &format!("s{}", p.entry)),
            })
            .collect();
        let origin = LowerName::from(Name::from_ascii("home.example.").unwrap());
        let grouped: Vec<(String, Vec<String>)> =
            group_by_name(list, (next, first_of_name), &entries, &origin, 60)
                .map(|(name, claims)| {
                    let objects = claims.iter().map(|c| c.object.name.to_string()).collect();
                    (name.to_string(), objects)
                })
                .collect();
        let expected = [
            ("a.home.example.", vec!["s0", "s2", "s5"]),
            ("b.home.example.", vec!["s1"]),
            ("c.home.example.", vec!["s3"]),
            ("d.home.example.", vec!["s4"]),
        ];
        let expected: Vec<(String, Vec<String>)> = (expected.iter())
            .map(|(n, o)| (n.to_string(), o.iter().map(ToString::to_string).collect()))
            .collect();
        assert_eq!(grouped, expected);
    }
}
