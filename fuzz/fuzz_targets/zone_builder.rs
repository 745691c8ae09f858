//! The zone builder on arbitrary entries of every kind (structured input): never a
//! panic, and the zone files `render` writes, read back by a zone-file parser, hold
//! exactly the records the zone answers with.
#![no_main]

use std::collections::BTreeSet;
use std::net::IpAddr;

use arbitrary::Arbitrary;
use hickory_proto::rr::{Name, RecordType};
use hickory_proto::serialize::txt::Parser;
use k8s_gateway::zone::{Entry, EntryName, Kind, ObjectRef, RecordData, Settings, build, render};
use libfuzzer_sys::fuzz_target;

/// Labels names are made of: a few, so that entries collide on names.
const LABELS: [&str; 8] = ["web", "apps", "*", "a", "b-c", "_acme", "Mixed", "x1"];
const DOMAINS: [&str; 3] = ["home.example", "lab.home.example", "other.example"];

#[derive(Arbitrary, Debug)]
struct Input {
    entries: Vec<FuzzEntry>,
    secondary: bool,
    ttl: u16,
}

#[derive(Arbitrary, Debug)]
struct FuzzEntry {
    labels: Vec<u8>,
    domain: u8,
    relative: bool,
    data: FuzzData,
    ttl: Option<u32>,
    kind: u8,
}

#[derive(Arbitrary, Debug)]
enum FuzzData {
    V4(u32),
    V6(u128),
    Cname(Vec<u8>, u8),
    Txt(String),
}

fn name_of(labels: &[u8], domain: u8, relative: bool) -> Option<Name> {
    let mut text: Vec<&str> = labels
        .iter()
        .take(6)
        .map(|l| LABELS[usize::from(*l) % LABELS.len()])
        .collect();
    if !relative {
        text.push(DOMAINS[usize::from(domain) % DOMAINS.len()]);
    }
    let mut name = Name::from_ascii(text.join(".")).ok()?;
    name.set_fqdn(!relative);
    Some(name)
}

fn entry(input: &FuzzEntry) -> Option<Entry> {
    let name = name_of(&input.labels, input.domain, input.relative)?;
    let data = match &input.data {
        FuzzData::V4(ip) => RecordData::Address(IpAddr::from(ip.to_be_bytes())),
        FuzzData::V6(ip) => RecordData::Address(IpAddr::from(ip.to_be_bytes())),
        FuzzData::Cname(labels, domain) => RecordData::Cname(name_of(labels, *domain, false)?),
        // NB: printable ASCII only (quotes and backslashes included): hickory's zone-file
        // parser, the reader here, misreads RFC 1035 `\DDD` decimal escapes, which
        // `render` writes for other bytes (Knot reads them right).
        FuzzData::Txt(text) => {
            RecordData::Txt(text.chars().filter(|c| (' '..='~').contains(c)).collect())
        }
    };
    let kind = Kind::DEFAULT_ORDER[usize::from(input.kind) % Kind::DEFAULT_ORDER.len()];
    Some(Entry {
        name: if input.relative {
            EntryName::Hostname(name)
        } else {
            EntryName::Absolute(name)
        },
        data,
        ttl: input.ttl,
        kind,
        object: ObjectRef::new(kind.as_str(), "fuzz", "object"),
    })
}

fuzz_target!(|input: Input| {
    let entries: Vec<Entry> = input.entries.iter().filter_map(entry).collect();
    let domains = DOMAINS[..2]
        .iter()
        .map(|d| Name::from_ascii(format!("{d}.")).expect("a valid domain"))
        .collect();
    let mut settings = Settings::with_defaults(domains);
    settings.ttl = u32::from(input.ttl % 3601);
    if input.secondary {
        settings.secondary = Some(Name::from_ascii("dns2.kube-system").expect("a valid name"));
    }
    let zone = build(entries, &settings, None, 1);
    let text = render::zone_files(&zone);
    // Every record the zone holds, as "name type ttl data".
    let mut held = BTreeSet::new();
    for authority in zone.authorities() {
        let soa = authority.soa();
        held.insert(format!(
            "{} {} {} {}",
            soa.name.to_lowercase(),
            soa.record_type(),
            soa.ttl,
            soa.data
        ));
        for node in authority.nodes() {
            for (r, _) in node.records() {
                held.insert(format!(
                    "{} {} {} {}",
                    r.name.to_lowercase(),
                    r.record_type(),
                    r.ttl,
                    r.data
                ));
            }
        }
    }
    let (_, parsed) = Parser::new(text.as_str(), None, None)
        .parse()
        .unwrap_or_else(|e| panic!("render wrote a zone file that does not parse: {e}\n{text}"));
    let mut read = BTreeSet::new();
    for set in parsed.values() {
        for r in set.records_without_rrsigs() {
            if r.record_type() != RecordType::OPT {
                read.insert(format!(
                    "{} {} {} {}",
                    r.name.to_lowercase(),
                    r.record_type(),
                    r.ttl,
                    r.data
                ));
            }
        }
    }
    assert_eq!(
        held, read,
        "the zone files hold what the zone answers\n{text}"
    );
});
