//! A zone rebuild, objects in to the zone swapped in: what every coalesced batch of
//! cluster changes costs. 1,000, 10,000 and 100,000 LoadBalancer Services, plus the same
//! with one object changed (the serial moves). Run: `cargo bench --bench build`.

use std::sync::Arc;

use arc_swap::ArcSwapOption;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use hickory_proto::rr::Name;
use k8s_gateway::config::Filters;
use k8s_gateway::metrics::Metrics;
use k8s_gateway::rebuild::Rebuilder;
use k8s_gateway::sources::ObjectSet;
use k8s_gateway::zone::Settings;
use k8s_openapi::api::core::v1::Service;
use prometheus_client::registry::Registry;

fn services(count: u32, last_octet: u32) -> ObjectSet {
    let mut objects = ObjectSet::default();
    for i in 0..count {
        objects.add(
            serde_json::from_value::<Service>(serde_json::json!({
                "metadata": {"name": format!("app{i}"), "namespace": "apps",
                    "annotations": {"coredns.io/hostname": format!("app{i}.home.example")}},
                "spec": {"type": "LoadBalancer"},
                "status": {"loadBalancer": {"ingress": [{"ip": format!("10.{}.{}.{}", i / 65536 % 256, i / 256 % 256, if i == 0 { last_octet } else { i % 256 })}]}}
            }))
            .unwrap(),
        );
    }
    objects
}

fn rebuild(c: &mut Criterion) {
    let domains = vec![Name::from_ascii("home.example.").unwrap()];
    let mut registry = Registry::default();
    let metrics = Metrics::new(&domains, &mut registry);
    let mut group = c.benchmark_group("rebuild");
    group.sample_size(10);
    for count in [1_000u32, 10_000, 100_000] {
        let rebuilder = Rebuilder::new(
            Settings::with_defaults(domains.clone()),
            Filters::default(),
            Arc::new(ArcSwapOption::empty()),
            metrics.zone.clone(),
        );
        let (same, changed) = (services(count, 1), services(count, 2));
        group.bench_with_input(BenchmarkId::new("unchanged", count), &same, |b, objects| {
            b.iter(|| rebuilder.rebuild(objects));
        });
        let mut flip = false;
        group.bench_function(BenchmarkId::new("one_changed", count), |b| {
            b.iter(|| {
                flip = !flip;
                rebuilder.rebuild(if flip { &changed } else { &same })
            });
        });
    }
    group.finish();
}

criterion_group!(benches, rebuild);
criterion_main!(benches);
