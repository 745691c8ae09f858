//! The answer path, bytes in to bytes out, for a hit, a miss (NXDOMAIN) and NODATA, on
//! zones of 100 and 100,000 names: the general encoder (`respond`) and the prepared
//! answers a worker serves repeated questions from (`prepared`). Run:
//! `cargo bench --bench lookup`.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{LowerName, Name, RecordType};
use k8s_gateway::dns::handler::respond;
use k8s_gateway::dns::prepared::PreparedAnswers;
use k8s_gateway::dns::response::Transport;
use k8s_gateway::zone::{Entry, EntryName, Kind, ObjectRef, RecordData, Settings, Zone, build};

fn zone(names: u32) -> Zone {
    let settings = Settings::with_defaults(vec![Name::from_ascii("home.example.").unwrap()]);
    let entries = (0..names).map(|i| Entry {
        name: EntryName::Absolute(Name::from_ascii(format!("app{i}.home.example.")).unwrap()),
        data: RecordData::Address(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i))),
        ttl: None,
        kind: Kind::Service,
        object: ObjectRef::new("Service", "bench", &format!("app{i}")),
    });
    build(entries, &settings, None, 1)
}

fn request(name: &str, rtype: RecordType) -> Vec<u8> {
    let mut message = Message::new(7, MessageType::Query, OpCode::Query);
    message.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
    let mut edns = Edns::new();
    edns.set_max_payload(1232);
    message.set_edns(edns);
    message.to_vec().unwrap()
}

fn answer_path(c: &mut Criterion) {
    let mut group = c.benchmark_group("respond");
    for size in [100u32, 100_000] {
        let zone = zone(size);
        // (case, request)
        let cases = [
            ("hit", request("app42.home.example.", RecordType::A)),
            ("nxdomain", request("missing.home.example.", RecordType::A)),
            ("nodata", request("app42.home.example.", RecordType::AAAA)),
        ];
        let mut out = Vec::with_capacity(1232);
        for (case, bytes) in &cases {
            group.bench_with_input(BenchmarkId::new(*case, size), bytes, |b, bytes| {
                b.iter(|| {
                    respond(
                        Some(black_box(&zone)),
                        black_box(bytes),
                        Transport::Udp,
                        &mut out,
                    )
                })
            });
            let mut prepared = PreparedAnswers::new();
            let id = format!("prepared_{case}");
            group.bench_with_input(BenchmarkId::new(id, size), bytes, |b, bytes| {
                b.iter(|| {
                    prepared
                        .respond(
                            Some(black_box(&zone)),
                            black_box(bytes),
                            Transport::Udp,
                            &mut out,
                        )
                        .is_some()
                })
            });
        }
        let name = LowerName::from(Name::from_ascii("app42.home.example.").unwrap());
        group.bench_with_input(
            BenchmarkId::new("zone_lookup_only", size),
            &name,
            |b, name| b.iter(|| zone.lookup(black_box(name), RecordType::A).is_answer()),
        );
    }
    group.finish();
}

criterion_group!(benches, answer_path);
criterion_main!(benches);
