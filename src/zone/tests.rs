//! The zone's answers, rule by rule: positive, NODATA, NXDOMAIN with SOA, empty
//! non-terminals, apex SOA/NS and glue, precedence, CNAME, wildcards, case, serial.

use std::net::IpAddr;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};

use super::*;

fn name(text: &str) -> Name {
    Name::from_ascii(text).unwrap()
}

fn settings(domains: &[&str]) -> Settings {
    Settings::with_defaults(domains.iter().map(|d| name(&format!("{d}."))).collect())
}

fn entry(kind: Kind, host: &str, data: RecordData) -> Entry {
    Entry {
        name: EntryName::Absolute(name(host)),
        data,
        ttl: None,
        kind,
        object: ObjectRef::new(
            kind.as_str(),
            "apps",
            host.split('.').next().unwrap_or_default(),
        ),
    }
}

fn a(kind: Kind, host: &str, ip: &str) -> Entry {
    entry(
        kind,
        host,
        RecordData::Address(ip.parse::<IpAddr>().unwrap()),
    )
}

fn cname(kind: Kind, host: &str, target: &str) -> Entry {
    entry(kind, host, RecordData::Cname(name(target)))
}

fn zone(entries: Vec<Entry>) -> Zone {
    build(entries, &settings(&["home.example"]), None, 1_000)
}

/// The answer as text: rcode, then each section's records as "name type data".
fn ask(zone: &Zone, qname: &str, rtype: RecordType) -> (ResponseCode, Vec<String>, Vec<String>) {
    match zone.lookup(&LowerName::from(name(qname)), rtype) {
        Lookup::NotAuthoritative => (ResponseCode::Refused, vec![], vec![]),
        Lookup::Answer(answer) => (
            answer.rcode,
            show(&answer.answers),
            show(answer.authorities),
        ),
    }
}

fn show(records: &[Record]) -> Vec<String> {
    records
        .iter()
        .map(|r| format!("{} {} {}", r.name, r.record_type(), r.data))
        .collect()
}

#[test]
fn positive_answer_unions_a_kind_without_duplicates() {
    let z = zone(vec![
        a(Kind::Service, "web.home.example", "10.0.0.2"),
        a(Kind::Service, "web.home.example", "10.0.0.1"),
        a(Kind::Service, "web.home.example", "10.0.0.2"),
    ]);
    let (rcode, answers, authority) = ask(&z, "web.home.example.", RecordType::A);
    assert_eq!(rcode, ResponseCode::NoError);
    assert_eq!(
        answers,
        [
            "web.home.example. A 10.0.0.1",
            "web.home.example. A 10.0.0.2"
        ]
    );
    assert!(authority.is_empty());
}

#[test]
fn other_type_is_nodata_with_soa_and_missing_name_is_nxdomain_with_soa() {
    let z = zone(vec![a(Kind::Service, "web.home.example", "10.0.0.1")]);
    // (query, type, expected rcode)
    let cases = [
        ("web.home.example.", RecordType::AAAA, ResponseCode::NoError),
        ("web.home.example.", RecordType::TXT, ResponseCode::NoError),
        ("nope.home.example.", RecordType::A, ResponseCode::NXDomain),
        (
            "deep.nope.home.example.",
            RecordType::A,
            ResponseCode::NXDomain,
        ),
    ];
    for (q, t, rcode) in cases {
        let (got, answers, authority) = ask(&z, q, t);
        assert_eq!(got, rcode, "{q} {t}");
        assert!(answers.is_empty(), "{q} {t}");
        assert_eq!(authority.len(), 1, "{q} {t}");
        assert!(
            authority[0].starts_with("home.example. SOA "),
            "{q} {t}: {authority:?}"
        );
    }
}

#[test]
fn negative_ttl_is_the_soa_minimum() {
    let z = zone(vec![]);
    let Lookup::Answer(answer) = z.lookup(&LowerName::from(name("x.home.example.")), RecordType::A)
    else {
        panic!("not authoritative");
    };
    let RData::SOA(soa) = &answer.authorities[0].data else {
        panic!("no SOA")
    };
    assert_eq!(soa.minimum, 60);
    assert_eq!(answer.authorities[0].ttl, 60);
}

#[test]
fn empty_non_terminal_is_nodata_not_nxdomain() {
    let z = zone(vec![a(Kind::Service, "a.b.home.example", "10.0.0.1")]);
    let (rcode, answers, authority) = ask(&z, "b.home.example.", RecordType::A);
    assert_eq!(
        (rcode, answers.len(), authority.len()),
        (ResponseCode::NoError, 0, 1)
    );
}

#[test]
fn apex_has_soa_and_ns_with_glue() {
    let mut s = settings(&["home.example"]);
    s.secondary = Some(name("dns2.kube-system"));
    let z = build(
        vec![a(
            Kind::Service,
            "dns1.kube-system.home.example",
            "192.168.1.53",
        )],
        &s,
        None,
        7,
    );
    let (rcode, answers, _) = ask(&z, "home.example.", RecordType::SOA);
    assert_eq!(rcode, ResponseCode::NoError);
    assert_eq!(
        answers,
        [
            "home.example. SOA dns1.kube-system.home.example. hostmaster.home.example. 7 3600 600 1209600 60"
        ]
    );
    let Lookup::Answer(ns) = z.lookup(&LowerName::from(name("home.example.")), RecordType::NS)
    else {
        panic!()
    };
    assert_eq!(
        show(&ns.answers),
        [
            "home.example. NS dns1.kube-system.home.example.",
            "home.example. NS dns2.kube-system.home.example."
        ]
    );
    assert_eq!(
        show(&ns.additionals),
        ["dns1.kube-system.home.example. A 192.168.1.53"]
    );
}

#[test]
fn names_outside_every_domain_are_not_ours() {
    let z = zone(vec![]);
    assert_eq!(
        z.lookup(&LowerName::from(name("example.com.")), RecordType::A),
        Lookup::NotAuthoritative
    );
    assert_eq!(
        z.lookup(&LowerName::from(name("example.")), RecordType::A),
        Lookup::NotAuthoritative
    );
}

#[test]
fn most_specific_domain_owns_a_name() {
    let s = settings(&["home.example", "lab.home.example"]);
    let z = build(
        vec![a(Kind::Service, "x.lab.home.example", "10.0.0.9")],
        &s,
        None,
        1,
    );
    let owner = z
        .authority_for(&LowerName::from(name("x.lab.home.example.")))
        .unwrap();
    assert_eq!(owner.origin().to_string(), "lab.home.example.");
    // The parent domain does not also claim it: lab.home.example is not a name there.
    let (rcode, answers, _) = ask(&z, "x.lab.home.example.", RecordType::A);
    assert_eq!((rcode, answers.len()), (ResponseCode::NoError, 1));
}

#[test]
fn service_host_names_are_relative_to_each_domain_unless_under_one() {
    let s = settings(&["home.example", "home.lan"]);
    let hostname = |host: &str| Entry {
        name: EntryName::Hostname(name(host)),
        ..a(Kind::Service, "unused.home.example", "10.0.0.1")
    };
    let z = build(
        vec![hostname("web.apps"), hostname("only.home.lan")],
        &s,
        None,
        1,
    );
    for q in [
        "web.apps.home.example.",
        "web.apps.home.lan.",
        "only.home.lan.",
    ] {
        assert_eq!(ask(&z, q, RecordType::A).1.len(), 1, "{q}");
    }
    assert_eq!(
        ask(&z, "only.home.lan.home.example.", RecordType::A).0,
        ResponseCode::NXDomain
    );
}

#[test]
fn absolute_names_outside_the_domains_are_dropped_with_a_reason() {
    let z = zone(vec![a(Kind::Ingress, "web.other.example", "10.0.0.1")]);
    assert_eq!(z.claims().dropped.len(), 1);
    assert_eq!(z.claims().dropped[0].reason, Skip::OutsideDomains);
}

#[test]
fn the_first_cluster_wins_a_name_before_kinds_are_compared() {
    let mut s = settings(&["home.example"]);
    s.clusters = vec!["prod".into(), "lab".into()];
    let from = |cluster: Option<&str>, mut entry: Entry| {
        if let Some(cluster) = cluster {
            entry.object = entry.object.in_cluster(&cluster.into());
        }
        entry
    };
    let z = build(
        vec![
            // The lab's DNSEndpoint would win on kind alone.
            from(
                Some("lab"),
                a(Kind::DnsEndpoint, "web.home.example", "10.0.0.2"),
            ),
            from(
                Some("prod"),
                a(Kind::Service, "web.home.example", "10.0.0.1"),
            ),
            // Below every named cluster: a manifest's object.
            from(None, a(Kind::DnsEndpoint, "web.home.example", "10.0.0.3")),
            // The same kind, namespace and name in both clusters: two objects.
            from(
                Some("prod"),
                a(Kind::Ingress, "app.home.example", "10.0.0.4"),
            ),
            from(
                Some("lab"),
                a(Kind::Ingress, "app.home.example", "10.0.0.5"),
            ),
            from(
                Some("lab"),
                a(Kind::Ingress, "lab.home.example", "10.0.0.6"),
            ),
        ],
        &s,
        None,
        1,
    );
    assert_eq!(
        ask(&z, "web.home.example.", RecordType::A).1,
        ["web.home.example. A 10.0.0.1"]
    );
    assert_eq!(
        ask(&z, "app.home.example.", RecordType::A).1,
        ["app.home.example. A 10.0.0.4"]
    );
    assert_eq!(
        ask(&z, "lab.home.example.", RecordType::A).1,
        ["lab.home.example. A 10.0.0.6"]
    );
    let shadowed = |n: &str| -> Vec<String> {
        z.claims().shadowed[&LowerName::from(name(n))]
            .iter()
            .map(|(k, o)| format!("{k} {o}"))
            .collect()
    };
    assert_eq!(
        shadowed("web.home.example."),
        [
            "DNSEndpoint DNSEndpoint apps/web",
            "DNSEndpoint DNSEndpoint apps/web (cluster lab)"
        ]
    );
    assert_eq!(
        shadowed("app.home.example."),
        ["Ingress Ingress apps/app (cluster lab)"]
    );
    let explained = z.explain(&LowerName::from(name("app.home.example.")));
    assert_eq!(explained.cluster.as_deref(), Some("prod"));
    assert_eq!(explained.shadowed[0].cluster.as_deref(), Some("lab"));
    assert_eq!(
        explained.records[0].objects,
        ["Ingress apps/app (cluster prod)"]
    );
}

#[test]
fn first_kind_in_precedence_wins_and_the_loser_is_remembered() {
    let z = zone(vec![
        a(Kind::Service, "web.home.example", "10.0.0.1"),
        a(Kind::HttpRoute, "web.home.example", "10.0.0.2"),
        a(Kind::Ingress, "web.home.example", "10.0.0.3"),
    ]);
    assert_eq!(
        ask(&z, "web.home.example.", RecordType::A).1,
        ["web.home.example. A 10.0.0.2"]
    );
    let shadowed = &z.claims().shadowed[&LowerName::from(name("web.home.example."))];
    let kinds: Vec<Kind> = shadowed.iter().map(|(k, _)| *k).collect();
    assert_eq!(kinds, [Kind::Ingress, Kind::Service]);

    // Reversed order: the Service now wins.
    let mut s = settings(&["home.example"]);
    s.precedence = vec![Kind::Service, Kind::HttpRoute, Kind::Ingress];
    let z = build(
        vec![
            a(Kind::Service, "web.home.example", "10.0.0.1"),
            a(Kind::HttpRoute, "web.home.example", "10.0.0.2"),
        ],
        &s,
        None,
        1,
    );
    assert_eq!(
        ask(&z, "web.home.example.", RecordType::A).1,
        ["web.home.example. A 10.0.0.1"]
    );
}

#[test]
fn kinds_not_enabled_publish_nothing() {
    let mut s = settings(&["home.example"]);
    s.precedence = vec![Kind::Service];
    let z = build(
        vec![a(Kind::Ingress, "web.home.example", "10.0.0.1")],
        &s,
        None,
        1,
    );
    assert_eq!(
        ask(&z, "web.home.example.", RecordType::A).0,
        ResponseCode::NXDomain
    );
}

#[test]
fn cname_is_alone_at_its_name_and_followed_inside_the_zone() {
    let z = zone(vec![
        cname(Kind::DnsEndpoint, "alias.home.example", "web.home.example"),
        a(Kind::DnsEndpoint, "web.home.example", "10.0.0.1"),
        cname(Kind::DnsEndpoint, "out.home.example", "lb.cloud.example"),
    ]);
    let (rcode, answers, _) = ask(&z, "alias.home.example.", RecordType::A);
    assert_eq!(rcode, ResponseCode::NoError);
    assert_eq!(
        answers,
        [
            "alias.home.example. CNAME web.home.example.",
            "web.home.example. A 10.0.0.1"
        ]
    );
    // An AAAA question gets the CNAME alone: the target has no AAAA.
    assert_eq!(
        ask(&z, "alias.home.example.", RecordType::AAAA).1,
        ["alias.home.example. CNAME web.home.example."]
    );
    // A CNAME question gets the CNAME itself.
    assert_eq!(ask(&z, "alias.home.example.", RecordType::CNAME).1.len(), 1);
    // A target outside the zone is left to the resolver.
    assert_eq!(
        ask(&z, "out.home.example.", RecordType::A).1,
        ["out.home.example. CNAME lb.cloud.example."]
    );
}

#[test]
fn cname_beside_addresses_is_dropped() {
    let z = zone(vec![
        cname(
            Kind::DnsEndpoint,
            "web.home.example",
            "elsewhere.home.example",
        ),
        a(Kind::DnsEndpoint, "web.home.example", "10.0.0.1"),
    ]);
    assert_eq!(
        ask(&z, "web.home.example.", RecordType::A).1,
        ["web.home.example. A 10.0.0.1"]
    );
    assert_eq!(z.claims().dropped[0].reason, Skip::CnameConflict);
}

#[test]
fn cname_loop_is_answered_not_followed_forever() {
    let z = zone(vec![
        cname(Kind::DnsEndpoint, "a.home.example", "b.home.example"),
        cname(Kind::DnsEndpoint, "b.home.example", "a.home.example"),
    ]);
    let (rcode, answers, _) = ask(&z, "a.home.example.", RecordType::A);
    assert_eq!(rcode, ResponseCode::NoError);
    assert_eq!(
        answers,
        [
            "a.home.example. CNAME b.home.example.",
            "b.home.example. CNAME a.home.example."
        ]
    );
}

#[test]
fn cname_to_a_missing_name_in_the_zone_is_nxdomain_with_the_chain_and_soa() {
    // RFC 6604 §3: the response code is that of the last name in the chain.
    let z = zone(vec![
        cname(Kind::DnsEndpoint, "alias.home.example", "hop.home.example"),
        cname(Kind::DnsEndpoint, "hop.home.example", "gone.home.example"),
    ]);
    let (rcode, answers, authority) = ask(&z, "alias.home.example.", RecordType::A);
    assert_eq!(rcode, ResponseCode::NXDomain);
    assert_eq!(
        answers,
        [
            "alias.home.example. CNAME hop.home.example.",
            "hop.home.example. CNAME gone.home.example."
        ]
    );
    assert_eq!(authority.len(), 1);
    assert!(
        authority[0].starts_with("home.example. SOA "),
        "{authority:?}"
    );
}

#[test]
fn cname_chain_ending_in_no_data_carries_the_soa() {
    // RFC 2308 §3: NODATA after a CNAME chain has the SOA in authority.
    let z = zone(vec![
        cname(Kind::DnsEndpoint, "to-v4.home.example", "web.home.example"),
        a(Kind::DnsEndpoint, "web.home.example", "10.0.0.1"),
        cname(Kind::DnsEndpoint, "to-ent.home.example", "ent.home.example"),
        a(Kind::DnsEndpoint, "x.ent.home.example", "10.0.0.2"),
        cname(
            Kind::DnsEndpoint,
            "to-wild.home.example",
            "w.apps.home.example",
        ),
        a(Kind::DnsEndpoint, "*.apps.home.example", "10.0.0.3"),
    ]);
    // (query name, type, the chain expected)
    let cases: [(&str, RecordType, &[&str]); 3] = [
        // The target lacks the type asked.
        (
            "to-v4.home.example.",
            RecordType::AAAA,
            &["to-v4.home.example. CNAME web.home.example."],
        ),
        // The target is an empty non-terminal.
        (
            "to-ent.home.example.",
            RecordType::A,
            &["to-ent.home.example. CNAME ent.home.example."],
        ),
        // The target is covered by a wildcard without the type.
        (
            "to-wild.home.example.",
            RecordType::AAAA,
            &["to-wild.home.example. CNAME w.apps.home.example."],
        ),
    ];
    for (q, rtype, chain) in cases {
        let (rcode, answers, authority) = ask(&z, q, rtype);
        assert_eq!(rcode, ResponseCode::NoError, "{q}");
        assert_eq!(answers, chain, "{q}");
        assert_eq!(authority.len(), 1, "{q}: the SOA in authority");
    }
    // The wildcard with the type answers, with the expanded owner.
    assert_eq!(
        ask(&z, "to-wild.home.example.", RecordType::A).1,
        [
            "to-wild.home.example. CNAME w.apps.home.example.",
            "w.apps.home.example. A 10.0.0.3"
        ]
    );
}

#[test]
fn wildcard_cname_loop_has_no_duplicate_records() {
    // RFC 2181 §5: no duplicates in an RRset; the loop ends at the first repeated owner.
    let z = zone(vec![cname(
        Kind::DnsEndpoint,
        "*.wl.home.example",
        "z.wl.home.example",
    )]);
    let (rcode, answers, _) = ask(&z, "a.wl.home.example.", RecordType::A);
    assert_eq!(rcode, ResponseCode::NoError);
    assert_eq!(
        answers,
        [
            "a.wl.home.example. CNAME z.wl.home.example.",
            "z.wl.home.example. CNAME z.wl.home.example."
        ]
    );
    assert_eq!(
        ask(&z, "z.wl.home.example.", RecordType::A).1,
        ["z.wl.home.example. CNAME z.wl.home.example."]
    );
}

#[test]
fn wildcard_covers_missing_names_below_it_only() {
    let z = zone(vec![
        a(Kind::HttpRoute, "*.apps.home.example", "10.0.0.7"),
        a(Kind::HttpRoute, "real.apps.home.example", "10.0.0.8"),
        a(Kind::HttpRoute, "x.ent.apps.home.example", "10.0.0.9"),
    ]);
    // (query, expected rcode, expected answers)
    let cases: [(&str, ResponseCode, &[&str]); 6] = [
        (
            "x.apps.home.example.",
            ResponseCode::NoError,
            &["x.apps.home.example. A 10.0.0.7"],
        ),
        (
            "y.x.apps.home.example.",
            ResponseCode::NoError,
            &["y.x.apps.home.example. A 10.0.0.7"],
        ),
        (
            "real.apps.home.example.",
            ResponseCode::NoError,
            &["real.apps.home.example. A 10.0.0.8"],
        ),
        // The wildcard's parent is not covered by it.
        ("apps.home.example.", ResponseCode::NoError, &[]),
        // An empty non-terminal is its own closest encloser: not covered.
        ("ent.apps.home.example.", ResponseCode::NoError, &[]),
        // Below an existing name, the wildcard of that name would apply: there is none.
        ("z.real.apps.home.example.", ResponseCode::NXDomain, &[]),
    ];
    for (q, rcode, expected) in cases {
        let (got, answers, _) = ask(&z, q, RecordType::A);
        assert_eq!(
            (got, answers.as_slice()),
            (
                rcode,
                expected
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>()
                    .as_slice()
            ),
            "{q}"
        );
    }
    // NODATA from the wildcard for another type.
    let (rcode, answers, authority) = ask(&z, "x.apps.home.example.", RecordType::AAAA);
    assert_eq!(
        (rcode, answers.len(), authority.len()),
        (ResponseCode::NoError, 0, 1)
    );
}

#[test]
fn names_are_case_insensitive() {
    let z = zone(vec![a(Kind::Service, "Web.Home.Example", "10.0.0.1")]);
    assert_eq!(
        ask(&z, "WEB.home.EXAMPLE.", RecordType::A).1,
        ["web.home.example. A 10.0.0.1"]
    );
}

#[test]
fn any_gets_a_minimal_answer() {
    let z = zone(vec![
        a(Kind::Service, "web.home.example", "10.0.0.1"),
        a(Kind::Service, "web.home.example", "fd00::1"),
    ]);
    // RFC 8482: one RRset, not everything.
    assert_eq!(ask(&z, "web.home.example.", RecordType::ANY).1.len(), 1);
}

#[test]
fn record_ttl_overrides_and_an_rrset_shares_the_lowest() {
    let mut one = a(Kind::DnsEndpoint, "web.home.example", "10.0.0.1");
    one.ttl = Some(30);
    let two = a(Kind::DnsEndpoint, "web.home.example", "10.0.0.2");
    let z = zone(vec![one, two]);
    let Lookup::Answer(answer) =
        z.lookup(&LowerName::from(name("web.home.example.")), RecordType::A)
    else {
        panic!()
    };
    assert!(answer.answers.iter().all(|r| r.ttl == 30));
}

#[test]
fn serial_changes_with_content_only_and_never_goes_back() {
    let s = settings(&["home.example"]);
    let first = build(
        vec![a(Kind::Service, "web.home.example", "10.0.0.1")],
        &s,
        None,
        500,
    );
    let same = build(
        vec![a(Kind::Service, "web.home.example", "10.0.0.1")],
        &s,
        Some(&first),
        900,
    );
    assert_eq!(same.serial(), 500);
    let changed = build(
        vec![a(Kind::Service, "web.home.example", "10.0.0.2")],
        &s,
        Some(&same),
        900,
    );
    assert_eq!(changed.serial(), 900);
    // A clock that went back still moves the serial forward.
    let again = build(vec![], &s, Some(&changed), 10);
    assert_eq!(again.serial(), 901);
}

#[test]
fn long_txt_values_are_split_into_character_strings() {
    let z = zone(vec![entry(
        Kind::DnsEndpoint,
        "txt.home.example",
        RecordData::Txt("x".repeat(300)),
    )]);
    let Lookup::Answer(answer) =
        z.lookup(&LowerName::from(name("txt.home.example.")), RecordType::TXT)
    else {
        panic!()
    };
    let RData::TXT(txt) = &answer.answers[0].data else {
        panic!()
    };
    let lengths: Vec<usize> = txt.txt_data.iter().map(|s| s.len()).collect();
    assert_eq!(lengths, [255, 45]);
}

fn with_reverse(entries: Vec<Entry>, ranges: &[&str]) -> Zone {
    let mut s = settings(&["home.example"]);
    s.reverse_zones = ranges.iter().map(|r| r.parse().unwrap()).collect();
    build(entries, &s, None, 1_000)
}

#[test]
fn reverse_zones_have_a_ptr_per_served_name_in_precedence_then_name_order() {
    let z = with_reverse(
        vec![
            a(Kind::Service, "zeta.home.example", "192.168.10.40"),
            a(Kind::Service, "alpha.home.example", "192.168.10.40"),
            a(Kind::Ingress, "web.home.example", "192.168.10.40"),
            a(Kind::Service, "v6.home.example", "fd00::10"),
            // Wildcard owners publish no PTR.
            a(Kind::Service, "*.apps.home.example", "192.168.10.50"),
            // Outside every reverse zone: no PTR anywhere.
            a(Kind::Service, "far.home.example", "10.1.2.3"),
        ],
        &["192.168.10.0/24", "fd00::/16"],
    );
    // Ingress comes before Service in the default precedence; then by name.
    let (rcode, answers, _) = ask(&z, "40.10.168.192.in-addr.arpa.", RecordType::PTR);
    assert_eq!(rcode, ResponseCode::NoError);
    assert_eq!(
        answers,
        [
            "40.10.168.192.in-addr.arpa. PTR web.home.example.",
            "40.10.168.192.in-addr.arpa. PTR alpha.home.example.",
            "40.10.168.192.in-addr.arpa. PTR zeta.home.example.",
        ]
    );
    let v6 = "0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.";
    assert_eq!(
        ask(&z, v6, RecordType::PTR).1,
        [format!("{v6} PTR v6.home.example.")]
    );
    // An address we do not serve, inside the range: NXDOMAIN with the reverse SOA.
    let (rcode, answers, authority) = ask(&z, "50.10.168.192.in-addr.arpa.", RecordType::PTR);
    assert_eq!((rcode, answers.len()), (ResponseCode::NXDomain, 0));
    assert!(authority[0].starts_with(
        "10.168.192.in-addr.arpa. SOA dns1.kube-system.home.example. hostmaster.home.example."
    ));
    // Outside every forward and reverse domain: not ours.
    assert_eq!(
        ask(&z, "3.2.1.10.in-addr.arpa.", RecordType::PTR).0,
        ResponseCode::Refused
    );
    // The reverse apex has SOA and NS naming our server in the first domain.
    assert_eq!(
        ask(&z, "10.168.192.in-addr.arpa.", RecordType::NS).1,
        ["10.168.192.in-addr.arpa. NS dns1.kube-system.home.example."]
    );
    // Another type at a PTR name: NODATA.
    assert_eq!(
        ask(&z, "40.10.168.192.in-addr.arpa.", RecordType::A).0,
        ResponseCode::NoError
    );
}

#[test]
fn a_reverse_change_moves_the_serial() {
    let mut s = settings(&["home.example"]);
    s.reverse_zones = vec!["192.168.10.0/24".parse().unwrap()];
    let first = build(
        vec![a(Kind::Service, "web.home.example", "192.168.10.40")],
        &s,
        None,
        100,
    );
    let moved = build(
        vec![a(Kind::Service, "web.home.example", "192.168.10.41")],
        &s,
        Some(&first),
        100,
    );
    assert_eq!(moved.serial(), 101);
    let reverse = &moved.authorities()[0];
    assert_eq!(reverse.origin().to_string(), "10.168.192.in-addr.arpa.");
}

#[test]
fn explain_tells_what_a_reverse_name_answers() {
    let z = with_reverse(
        vec![a(Kind::Service, "web.home.example", "192.168.10.40")],
        &["192.168.10.0/24"],
    );
    let served = z.explain(&LowerName::from(name("40.10.168.192.in-addr.arpa.")));
    assert_eq!(served.domain.as_deref(), Some("10.168.192.in-addr.arpa."));
    assert_eq!(served.status, "NOERROR");
    assert_eq!(served.records[0].data, "web.home.example.");
    assert_eq!(served.records[0].objects, ["Service apps/web"]);
    let unassigned = z.explain(&LowerName::from(name("41.10.168.192.in-addr.arpa.")));
    assert_eq!(unassigned.status, "NXDOMAIN");
}

fn srv(host: &str, priority: u16, weight: u16, port: u16, target: &str) -> Entry {
    entry(
        Kind::DnsEndpoint,
        host,
        RecordData::Srv {
            priority,
            weight,
            port,
            target: name(target),
        },
    )
}

#[test]
fn srv_answers_carry_the_targets_addresses_in_the_additional_section() {
    let z = zone(vec![
        srv(
            "_minecraft._tcp.mc.home.example",
            0,
            100,
            25565,
            "MC.home.example",
        ),
        srv(
            "_minecraft._tcp.mc.home.example",
            10,
            5,
            25566,
            "backup.elsewhere.example",
        ),
        a(Kind::Service, "mc.home.example", "192.168.10.60"),
        a(Kind::Service, "mc.home.example", "fd00::60"),
    ]);
    let Lookup::Answer(answer) = z.lookup(
        &LowerName::from(name("_minecraft._tcp.mc.home.example.")),
        RecordType::SRV,
    ) else {
        panic!("ours")
    };
    assert_eq!(
        show(&answer.answers),
        [
            "_minecraft._tcp.mc.home.example. SRV 0 100 25565 mc.home.example.",
            "_minecraft._tcp.mc.home.example. SRV 10 5 25566 backup.elsewhere.example.",
        ]
    );
    // The target in our zone brings its A and AAAA; the one elsewhere brings nothing.
    assert_eq!(
        show(&answer.additionals),
        [
            "mc.home.example. A 192.168.10.60",
            "mc.home.example. AAAA fd00::60",
        ]
    );
    // `_tcp.mc` exists as an empty non-terminal.
    assert_eq!(
        ask(&z, "_tcp.mc.home.example.", RecordType::SRV).0,
        ResponseCode::NoError
    );
    let text = render::zone_files(&z);
    assert!(
        text.contains("_minecraft._tcp.mc.home.example.\t60\tIN\tSRV\t0 100 25565 mc.home.example.\t; DNSEndpoint apps/_minecraft"),
        "{text}"
    );
}

#[test]
fn a_relative_srv_target_is_completed_with_the_domain_of_its_owner() {
    let relative = |text: &str| {
        let mut n = name(text);
        n.set_fqdn(false);
        n
    };
    let entry = Entry {
        name: EntryName::Hostname(relative("_http._tcp.web.apps")),
        data: RecordData::Srv {
            priority: 0,
            weight: 100,
            port: 80,
            target: relative("web.apps"),
        },
        ttl: None,
        kind: Kind::Service,
        object: ObjectRef::new("Service", "apps", "web"),
    };
    let z = build(
        vec![entry],
        &settings(&["home.example", "lab.example"]),
        None,
        1,
    );
    for domain in ["home.example", "lab.example"] {
        assert_eq!(
            ask(
                &z,
                &format!("_http._tcp.web.apps.{domain}."),
                RecordType::SRV
            )
            .1,
            [format!(
                "_http._tcp.web.apps.{domain}. SRV 0 100 80 web.apps.{domain}."
            )]
        );
    }
}

/// The compact storage round-trips: every record of the example zones (all kinds, with
/// a reverse zone), read back as a hickory `Record`, is what the entries say it is, and
/// stored again and read back it is the same `Record` with the same objects.
#[test]
fn compact_storage_round_trips_every_record_of_the_example_zones() {
    use super::store::{PendingSet, StoreBuilder, Value};

    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let (objects, errors) = crate::sources::manifests::load(&[examples]);
    assert!(errors.is_empty(), "{errors:?}");
    let found = crate::sources::kind::entries(&objects, &crate::config::Filters::default());
    assert!(found.entries.len() > 10, "the examples have entries");
    let mut settings = settings(&["home.example"]);
    settings.reverse_zones = vec!["192.168.10.0/24".parse().unwrap()];
    let zone = build(found.entries.clone(), &settings, None, 1);
    let domain = name("home.example.");

    // Every entry's data is served at its name, from its object.
    let served: Vec<(Record, Vec<ObjectRef>)> = zone
        .authorities()
        .iter()
        .flat_map(|a| a.nodes())
        .flat_map(|n| n.records())
        .map(|(r, o)| (r, o.to_vec()))
        .collect();
    for entry in &found.entries {
        let (EntryName::Absolute(owner) | EntryName::Hostname(owner)) = &entry.name;
        let mut owner = owner.clone();
        owner.set_fqdn(true);
        if !domain.zone_of(&owner) {
            // A Service's `<name>.<namespace>`: relative to the domain.
            owner.set_fqdn(false);
            owner = owner.append_domain(&domain).unwrap();
        }
        let lost = |claims: &Claims| {
            claims.dropped.iter().any(|s| s.object == entry.object)
                || claims
                    .shadowed
                    .get(&LowerName::from(&owner))
                    .is_some_and(|s| s.iter().any(|(_, o)| *o == entry.object))
        };
        if lost(zone.claims()) {
            continue;
        }
        let rdata = match &entry.data {
            RecordData::Address(IpAddr::V4(ip)) => RData::A((*ip).into()),
            RecordData::Address(IpAddr::V6(ip)) => RData::AAAA((*ip).into()),
            RecordData::Cname(target) => {
                RData::CNAME(hickory_proto::rr::rdata::CNAME(target.to_lowercase()))
            }
            RecordData::Txt(text) => {
                RData::TXT(hickory_proto::rr::rdata::TXT::new(vec![text.clone()]))
            }
            RecordData::Srv { .. } => continue, // relative targets: see the SRV tests
        };
        assert!(
            served
                .iter()
                .any(|(r, o)| r.name == owner && r.data == rdata && o.contains(&entry.object)),
            "{owner} {rdata} from {}",
            entry.object
        );
    }

    // Stored again, record by record, each reads back the same.
    let mut count = 0;
    for authority in zone.authorities() {
        let mut builder = StoreBuilder::new(authority.origin(), 1);
        let mut before = Vec::new();
        for node in authority.nodes() {
            let records = node.records();
            let mut sets: Vec<PendingSet> = Vec::new();
            for (record, origins) in &records {
                let value = match &record.data {
                    RData::A(a) => Value::Address(IpAddr::V4(a.0)),
                    RData::AAAA(aaaa) => Value::Address(IpAddr::V6(aaaa.0)),
                    RData::CNAME(cname) => Value::Cname(cname.0.clone()),
                    RData::NS(ns) => Value::Ns(ns.0.clone()),
                    RData::PTR(ptr) => Value::Ptr(ptr.0.clone()),
                    RData::TXT(txt) => Value::Txt(
                        txt.txt_data
                            .iter()
                            .map(|s| String::from_utf8_lossy(s).into_owned())
                            .collect(),
                    ),
                    RData::SRV(srv) => Value::Srv {
                        priority: srv.priority,
                        weight: srv.weight,
                        port: srv.port,
                        target: srv.target.clone(),
                    },
                    other => panic!("unexpected {other:?}"),
                };
                match sets.last_mut() {
                    Some(set) if set.rtype == record.record_type() => {
                        set.records.push((value, origins.to_vec()))
                    }
                    _ => sets.push(PendingSet {
                        rtype: record.record_type(),
                        ttl: record.ttl,
                        records: vec![(value, origins.to_vec())],
                    }),
                }
            }
            if !records.is_empty() {
                builder.add(&LowerName::from(node.name()), sets);
            }
            before.push((node.name(), records));
        }
        let again = Authority {
            origin: authority.origin().clone(),
            soa: authority.soa().clone(),
            store: builder.finish(),
        };
        assert_eq!(again.nodes().count(), authority.nodes().count());
        assert!(again.store.same_records(&authority.store));
        for (name, records) in before {
            let node = again
                .node(&LowerName::from(&name))
                .expect("the name is stored");
            assert_eq!(node.records(), records, "{name}");
            count += records.len();
        }
    }
    assert!(count > 20, "the examples have records: {count}");
}
