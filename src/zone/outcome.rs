//! What each object publishes in a zone, in one small value, and which objects' values
//! changed from one zone to the next: what `--events` records on the objects.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{BuildHasher, Hash};

use hickory_proto::rr::RecordType;

use super::{ObjectRef, Skip, Zone};

/// What one object gets from a zone.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// It has records: `"name TYPE value"`, sorted.
    Published(Vec<String>),
    /// It publishes nothing, for these reasons (sorted, each once), with the details
    /// for people.
    NotPublished { reasons: Vec<Skip>, detail: String },
    /// Every name it claims is another kind's (`--resources` precedence): the names,
    /// and the objects that publish them.
    Superseded {
        names: Vec<String>,
        by: Vec<ObjectRef>,
    },
}

impl Outcome {
    /// A hash of the outcome, the same in every process of one build: what is kept of
    /// the previous zone's outcomes (a few bytes per object, not its records), and what
    /// names the Event of this outcome.
    pub fn fingerprint(&self) -> u64 {
        foldhash::fast::FixedState::with_seed(0x6b38_735f_6777_7900).hash_one(self)
    }

    /// Whether a person should act on it: a field of the object is wrong.
    pub fn is_mistake(&self) -> bool {
        matches!(self, Outcome::NotPublished { reasons, .. } if reasons.iter().any(|r| r.is_mistake()))
    }
}

/// Every object's outcome in `zone`. An object that claims nothing and was skipped for
/// nothing (a ClusterIP Service) has none.
pub fn outcomes(zone: &Zone) -> HashMap<ObjectRef, Outcome> {
    let mut published: HashMap<ObjectRef, Vec<String>> = HashMap::new();
    for authority in zone.authorities() {
        for node in authority.nodes() {
            for (record, origins) in node.records() {
                // A PTR is the reverse of an address already listed.
                if origins.is_empty() || record.record_type() == RecordType::PTR {
                    continue;
                }
                let name = record.name.to_string();
                let line = format!(
                    "{} {} {}",
                    name.trim_end_matches('.'),
                    record.record_type(),
                    record.data
                );
                for object in origins {
                    published
                        .entry(object.clone())
                        .or_default()
                        .push(line.clone());
                }
            }
        }
    }
    let mut out: HashMap<ObjectRef, Outcome> = HashMap::with_capacity(published.len());
    for (object, mut lines) in published {
        lines.sort();
        lines.dedup();
        out.insert(object, Outcome::Published(lines));
    }
    let claims = zone.claims();
    let mut superseded: BTreeMap<ObjectRef, (BTreeSet<String>, BTreeSet<ObjectRef>)> =
        BTreeMap::new();
    for (name, losers) in &claims.shadowed {
        let winners: BTreeSet<ObjectRef> = (zone.authority_for(name))
            .and_then(|a| a.node(name))
            .map(|node| {
                node.origins()
                    .flat_map(|o| o.iter().cloned())
                    .collect::<BTreeSet<_>>()
            })
            .unwrap_or_default();
        for (_, loser) in losers {
            if out.contains_key(loser) {
                continue;
            }
            let entry = superseded.entry(loser.clone()).or_default();
            entry
                .0
                .insert(name.to_string().trim_end_matches('.').to_string());
            entry.1.extend(winners.iter().cloned());
        }
    }
    for (object, (names, by)) in superseded {
        out.insert(
            object,
            Outcome::Superseded {
                names: names.into_iter().collect(),
                by: by.into_iter().collect(),
            },
        );
    }
    let mut skipped: BTreeMap<&ObjectRef, (BTreeSet<Skip>, Vec<&str>)> = BTreeMap::new();
    for skip in &claims.dropped {
        if out.contains_key(&skip.object) {
            continue;
        }
        let entry = skipped.entry(&skip.object).or_default();
        entry.0.insert(skip.reason);
        if !entry.1.contains(&skip.detail.as_str()) {
            entry.1.push(&skip.detail);
        }
    }
    for (object, (reasons, details)) in skipped {
        out.insert(
            object.clone(),
            Outcome::NotPublished {
                reasons: reasons.into_iter().collect(),
                detail: details.join("; "),
            },
        );
    }
    out
}

/// The outcomes of one zone as remembered for the next: one fingerprint per object.
pub type Fingerprints = HashMap<ObjectRef, u64>;

/// The objects whose outcome in `current` differs from `previous` (new objects
/// included; objects with no outcome any more are not: there is nothing to say on an
/// object that is gone), and the fingerprints to compare the next zone with.
pub fn changes(
    previous: &Fingerprints,
    current: HashMap<ObjectRef, Outcome>,
) -> (Vec<(ObjectRef, Outcome)>, Fingerprints) {
    let mut changed = Vec::new();
    let mut fingerprints = HashMap::with_capacity(current.len());
    for (object, outcome) in current {
        let fingerprint = outcome.fingerprint();
        if previous.get(&object) != Some(&fingerprint) {
            changed.push((object.clone(), outcome));
        }
        fingerprints.insert(object, fingerprint);
    }
    changed.sort_by(|a, b| a.0.cmp(&b.0));
    (changed, fingerprints)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::{Entry, EntryName, Kind, RecordData, Settings, Skipped, build_with};
    use hickory_proto::rr::Name;

    fn entry(kind: Kind, object: &ObjectRef, name: &str, ip: &str) -> Entry {
        Entry {
            name: EntryName::Absolute(Name::from_ascii(name).unwrap()),
            data: RecordData::Address(ip.parse().unwrap()),
            ttl: None,
            kind,
            object: object.clone(),
        }
    }

    fn zone(entries: Vec<Entry>, skipped: Vec<Skipped>) -> Zone {
        let settings = Settings::with_defaults(vec![Name::from_ascii("home.example.").unwrap()]);
        build_with(entries, skipped, &settings, None, 1)
    }

    #[test]
    fn an_object_publishes_its_names_and_addresses_sorted() {
        let route = ObjectRef::new("HTTPRoute", "media", "immich");
        let found = outcomes(&zone(
            vec![
                entry(
                    Kind::HttpRoute,
                    &route,
                    "photos.home.example.",
                    "192.168.10.50",
                ),
                entry(
                    Kind::HttpRoute,
                    &route,
                    "immich.home.example.",
                    "192.168.10.50",
                ),
            ],
            vec![],
        ));
        assert_eq!(
            found[&route],
            Outcome::Published(vec![
                "immich.home.example A 192.168.10.50".into(),
                "photos.home.example A 192.168.10.50".into(),
            ])
        );
    }

    #[test]
    fn a_loser_on_precedence_is_superseded_by_the_winner() {
        let route = ObjectRef::new("HTTPRoute", "media", "immich");
        let service = ObjectRef::new("Service", "media", "immich");
        let found = outcomes(&zone(
            vec![
                entry(
                    Kind::HttpRoute,
                    &route,
                    "immich.home.example.",
                    "192.168.10.50",
                ),
                entry(
                    Kind::Service,
                    &service,
                    "immich.home.example.",
                    "192.168.10.60",
                ),
            ],
            vec![],
        ));
        assert!(matches!(found[&route], Outcome::Published(_)));
        assert_eq!(
            found[&service],
            Outcome::Superseded {
                names: vec!["immich.home.example".into()],
                by: vec![route],
            }
        );
    }

    #[test]
    fn a_skipped_object_is_not_published_with_its_reasons() {
        let route = ObjectRef::new("HTTPRoute", "media", "immich");
        let skip = |reason, detail: &str| Skipped {
            object: route.clone(),
            reason,
            detail: detail.into(),
        };
        let found = outcomes(&zone(
            vec![],
            vec![
                skip(Skip::NotAccepted, "parent gw: not accepted"),
                skip(Skip::NoAddress, "parent gw2: no address"),
                skip(Skip::NotAccepted, "parent gw: not accepted"),
            ],
        ));
        assert_eq!(
            found[&route],
            Outcome::NotPublished {
                reasons: vec![Skip::NoAddress, Skip::NotAccepted],
                detail: "parent gw: not accepted; parent gw2: no address".into(),
            }
        );
        assert!(!found[&route].is_mistake());
    }

    /// Only what changed is reported: a new object, a changed address; not an object
    /// whose outcome stayed, nor one that is gone.
    #[test]
    fn only_changed_outcomes_are_changes() {
        let a = ObjectRef::new("Service", "apps", "a");
        let b = ObjectRef::new("Service", "apps", "b");
        let c = ObjectRef::new("Service", "apps", "c");
        let first = zone(
            vec![
                entry(Kind::Service, &a, "a.home.example.", "10.0.0.1"),
                entry(Kind::Service, &b, "b.home.example.", "10.0.0.2"),
            ],
            vec![],
        );
        let (changed, seen) = changes(&Fingerprints::new(), outcomes(&first));
        assert_eq!(changed.len(), 2);
        let (changed, same) = changes(&seen, outcomes(&first));
        assert!(
            changed.is_empty(),
            "a rebuild that changes nothing: {changed:?}"
        );
        assert_eq!(same, seen);
        let second = zone(
            vec![
                entry(Kind::Service, &a, "a.home.example.", "10.0.0.9"),
                entry(Kind::Service, &c, "c.home.example.", "10.0.0.3"),
            ],
            vec![],
        );
        let (changed, _) = changes(&seen, outcomes(&second));
        let objects: Vec<_> = changed.iter().map(|(o, _)| o.clone()).collect();
        assert_eq!(objects, [a, c]);
        assert_eq!(
            changed[0].1,
            Outcome::Published(vec!["a.home.example A 10.0.0.9".into()])
        );
    }

    #[test]
    fn the_fingerprint_follows_the_outcome() {
        let one = Outcome::Published(vec!["a.home.example A 10.0.0.1".into()]);
        let other = Outcome::Published(vec!["a.home.example A 10.0.0.2".into()]);
        assert_eq!(one.fingerprint(), one.clone().fingerprint());
        assert_ne!(one.fingerprint(), other.fingerprint());
    }
}
