//! Prepared answers equal the general encoder's, byte for byte, for every name and type
//! of the example zones: any ID, RD, 0x20 case, EDNS variant, payload size and transport.

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr};

use clap::Parser;
use hickory_proto::rr::{Name, RecordType};
use k8s_gateway::app::render_once;
use k8s_gateway::config::{Cli, Command, Config};
use k8s_gateway::dns::handler::respond;
use k8s_gateway::dns::prepared::PreparedAnswers;
use k8s_gateway::dns::response::Transport;
use k8s_gateway::zone::{Entry, EntryName, Kind, ObjectRef, RecordData, Settings, Zone, build};

use crate::support::repo_path;

/// The types asked of every name: those we serve, some we never do, and the refused ones.
const TYPES: [RecordType; 12] = [
    RecordType::A,
    RecordType::AAAA,
    RecordType::CNAME,
    RecordType::TXT,
    RecordType::NS,
    RecordType::SOA,
    RecordType::MX,
    RecordType::SRV,
    RecordType::ANY,
    RecordType::HTTPS,
    RecordType::AXFR,
    RecordType::IXFR,
];

/// An OPT record's fields: payload size, version, DO, and whether to add an option.
#[derive(Clone, Copy, Debug)]
struct Opt {
    payload: u16,
    version: u8,
    dnssec_ok: bool,
    cookie: bool,
}

/// The EDNS variants: none, payloads below, at and above ours, DO, version 1 (BADVERS),
/// and an option (which takes the general path).
const EDNS: [Option<Opt>; 7] = [
    None,
    Some(Opt {
        payload: 512,
        version: 0,
        dnssec_ok: false,
        cookie: false,
    }),
    Some(Opt {
        payload: 1232,
        version: 0,
        dnssec_ok: false,
        cookie: false,
    }),
    Some(Opt {
        payload: 4096,
        version: 0,
        dnssec_ok: true,
        cookie: false,
    }),
    Some(Opt {
        payload: 100,
        version: 0,
        dnssec_ok: false,
        cookie: false,
    }),
    Some(Opt {
        payload: 1232,
        version: 1,
        dnssec_ok: false,
        cookie: false,
    }),
    Some(Opt {
        payload: 1232,
        version: 0,
        dnssec_ok: false,
        cookie: true,
    }),
];

/// A request written byte by byte, so that case, flags and OPT are exactly as given.
fn request(
    id: u16,
    rd: bool,
    name: &str,
    rtype: RecordType,
    class: u16,
    opt: Option<Opt>,
) -> Vec<u8> {
    let mut bytes = id.to_be_bytes().to_vec();
    bytes.extend([
        u8::from(rd),
        0,
        0,
        1,
        0,
        0,
        0,
        0,
        0,
        u8::from(opt.is_some()),
    ]);
    for label in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        bytes.push(label.len() as u8);
        bytes.extend(label.as_bytes());
    }
    bytes.push(0);
    bytes.extend(u16::from(rtype).to_be_bytes());
    bytes.extend(class.to_be_bytes());
    if let Some(opt) = opt {
        bytes.extend([0, 0, 41]);
        bytes.extend(opt.payload.to_be_bytes());
        bytes.extend([0, opt.version, if opt.dnssec_ok { 0x80 } else { 0 }, 0]);
        if opt.cookie {
            // COOKIE (RFC 7873), a client cookie of 8 bytes.
            bytes.extend([0, 12, 0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8]);
        } else {
            bytes.extend([0, 0]);
        }
    }
    bytes
}

/// xorshift64*: fixed seed, so a failure reproduces.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// The 0x20 trick: each letter in a random case.
    fn mixed_case(&mut self, name: &str) -> String {
        name.chars()
            .map(|c| {
                if self.next().is_multiple_of(2) {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            })
            .collect()
    }
}

/// Counts of what was asked, and how much came from the table.
#[derive(Default, Debug)]
struct Tally {
    asked: usize,
    hits: usize,
    mixed_case_hits: usize,
}

/// Asks every (name, type) in every variant, twice, and compares each prepared answer
/// with the general encoder's.
fn check_zone(zone: &Zone, names: &[String]) -> Tally {
    let mut prepared = PreparedAnswers::new();
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let (mut expected, mut got) = (Vec::new(), Vec::new());
    let mut tally = Tally::default();
    for name in names {
        for rtype in TYPES {
            for opt in EDNS {
                for transport in [Transport::Udp, Transport::Tcp] {
                    let cases = [
                        name.to_ascii_lowercase(),
                        name.to_ascii_uppercase(),
                        rng.mixed_case(name),
                    ];
                    for (which, case) in cases.iter().enumerate() {
                        for class in [1u16, 3] {
                            // Three times: the second fills the table, the third is served
                            // from it.
                            for round in 0..3 {
                                let id = rng.next() as u16;
                                let rd = rng.next().wrapping_add(round).is_multiple_of(2);
                                let bytes = request(id, rd, case, rtype, class, opt);
                                let want = respond(Some(zone), &bytes, transport, &mut expected);
                                let have =
                                    prepared.respond(Some(zone), &bytes, transport, &mut got);
                                let context = || {
                                    format!(
                                        "{case} {rtype} {opt:?} {transport:?} class {class} rd {rd}"
                                    )
                                };
                                assert_eq!(
                                    have.as_deref(),
                                    want.as_ref(),
                                    "outcome of {}",
                                    context()
                                );
                                assert_eq!(got, expected, "bytes of {}", context());
                                tally.asked += 1;
                                if matches!(have, Some(Cow::Borrowed(_))) {
                                    tally.hits += 1;
                                    tally.mixed_case_hits += usize::from(which == 2);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    tally
}

/// Every name of the zone, a name under each (wildcard or NXDOMAIN), a missing name and
/// one outside our domains.
fn names_of(zone: &Zone) -> Vec<String> {
    let mut names = vec!["outside.example.".to_string()];
    for authority in zone.authorities() {
        names.push(format!("no-such-name.{}", authority.origin()));
        for node in authority.nodes() {
            let name = node.name();
            names.push(name.to_string());
            names.push(format!("below.{name}"));
        }
    }
    names.sort();
    names.dedup();
    names
}

#[tokio::test]
async fn prepared_answers_equal_the_general_encoder_on_the_example_zones() {
    let examples = repo_path("examples").to_string_lossy().to_string();
    let argv = [
        "k8s-gateway",
        "render",
        "--domain",
        "home.example",
        "--manifests",
        &examples,
    ];
    let Command::Render(args) = Cli::try_parse_from(argv).expect("valid arguments").command else {
        panic!("not render");
    };
    let config = Config::from_render_args(args).expect("valid config");
    let zone = render_once(&config, std::time::Duration::from_secs(10))
        .await
        .expect("the examples load");
    let names = names_of(&zone);
    assert!(names.len() > 30, "the examples have names: {names:?}");
    let tally = check_zone(&zone, &names);
    // The table is used, case-free, for most questions (else this test proves nothing).
    assert!(tally.hits * 3 > tally.asked, "{tally:?}");
    assert!(tally.mixed_case_hits > 0, "{tally:?}");
}

#[test]
fn prepared_answers_equal_the_general_encoder_for_truncation_glue_and_chains() {
    let settings = Settings::with_defaults(vec![Name::from_ascii("home.example.").unwrap()]);
    let entry = |name: &str, data: RecordData| Entry {
        name: EntryName::Absolute(Name::from_ascii(name).unwrap()),
        data,
        ttl: None,
        kind: Kind::DnsEndpoint,
        object: ObjectRef::new("DNSEndpoint", "apps", "big"),
    };
    let cname = |target: &str| RecordData::Cname(Name::from_ascii(target).unwrap());
    let mut entries: Vec<Entry> = (0..80u32)
        // 80 addresses: too big for 512 bytes, fits 1232 (TC depends on the payload).
        .map(|i| {
            entry(
                "big.home.example.",
                RecordData::Address(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i))),
            )
        })
        .collect();
    entries.extend((0..200u32).map(|i| {
        // 200 addresses: over 1232 bytes, only TCP answers in full.
        entry(
            "huge.home.example.",
            RecordData::Address(IpAddr::V4(Ipv4Addr::from(0x0a01_0000 + i))),
        )
    }));
    entries.extend([
        entry(
            "dns1.kube-system.home.example.",
            RecordData::Address(IpAddr::V4(Ipv4Addr::new(10, 2, 0, 1))),
        ),
        entry(
            "*.apps.home.example.",
            RecordData::Address(IpAddr::V4(Ipv4Addr::new(10, 2, 0, 2))),
        ),
        entry("*.alias.home.example.", cname("web.home.example.")),
        entry("web.home.example.", cname("www.home.example.")),
        entry(
            "www.home.example.",
            RecordData::Address(IpAddr::V4(Ipv4Addr::new(10, 2, 0, 3))),
        ),
        entry("loop1.home.example.", cname("loop2.home.example.")),
        entry("loop2.home.example.", cname("loop1.home.example.")),
        entry("out.home.example.", cname("elsewhere.example.")),
        entry("gone.home.example.", cname("missing.home.example.")),
        entry(
            "Mixed.Case.home.example.",
            RecordData::Address(IpAddr::V4(Ipv4Addr::new(10, 2, 0, 4))),
        ),
    ]);
    let zone = build(entries, &settings, None, 7);
    let mut names = names_of(&zone);
    names.extend([
        "x.apps.home.example.".into(),
        "y.x.apps.home.example.".into(),
        "z.alias.home.example.".into(),
    ]);
    let tally = check_zone(&zone, &names);
    assert!(tally.hits * 3 > tally.asked, "{tally:?}");
}
