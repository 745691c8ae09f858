//! The `--fallthrough` answer cache under a random-subdomain flood: inserting into a
//! full cache of 10,000 answers (each insert makes room), and a hit. Run:
//! `cargo bench --bench cache`. Measured on the 2-core build machine: the map scanned
//! twice per insert when full, 371 µs per insert and 243 ns per hit; `quick_cache`
//! (0626586), 206 ns and 116 ns.

use std::hint::black_box;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use hickory_proto::op::{Message, MessageType, OpCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{DNSClass, LowerName, Name, RData, Record, RecordType};
use k8s_gateway::dns::cache::{Cache, Key, Upstreamed};

const ENTRIES: usize = 10_000;

fn key(i: usize) -> Key {
    Key {
        name: LowerName::from(Name::from_ascii(format!("r{i}.home.example.")).unwrap()),
        rtype: RecordType::A,
        class: DNSClass::IN,
    }
}

fn answer(now: Instant, ttl: u32) -> Arc<Upstreamed> {
    let mut message = Message::new(1, MessageType::Response, OpCode::Query);
    message.add_answer(Record::from_rdata(
        Name::from_ascii("r.home.example.").unwrap(),
        ttl,
        RData::A(A(Ipv4Addr::new(192, 0, 2, 1))),
    ));
    Arc::new(Upstreamed::new(message, now))
}

#[allow(unused_mut)] // `insert` took `&mut self` before the cache was a concurrent one
fn flood(c: &mut Criterion) {
    let mut group = c.benchmark_group("cache");
    let now = Instant::now();
    let mut cache = Cache::new(ENTRIES);
    for i in 0..ENTRIES {
        // TTLs spread, so that no two entries expire alike.
        cache.insert(key(i), answer(now, 60 + (i % 3000) as u32), now);
    }
    let keys: Vec<Key> = (ENTRIES..ENTRIES * 11).map(key).collect();
    let fresh = answer(now, 300);
    let mut next = 0;
    group.bench_function("insert_when_full", |b| {
        b.iter(|| {
            let key = keys[next % keys.len()].clone();
            next += 1;
            cache.insert(black_box(key), fresh.clone(), now);
        })
    });
    let hot = key(ENTRIES * 11 - 1);
    cache.insert(hot.clone(), fresh.clone(), now);
    group.bench_function("hit", |b| b.iter(|| cache.get(black_box(&hot), now)));
    group.finish();
}

criterion_group!(benches, flood);
criterion_main!(benches);
