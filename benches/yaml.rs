//! Parse throughput of the manifests' YAML: the block-style reader
//! (`sources::block_yaml`) against serde_saphyr, document by document, and the whole
//! loader (parse and decode) on the same file. Not a criterion bench: one pass over
//! 100,000 Services with serde_saphyr takes seconds, so each side runs a few times and
//! the median is printed.
//!
//!     python3 benches/gen-services.py 100000 > /tmp/s.yaml
//!     cargo bench --bench yaml -- /tmp/s.yaml

use std::path::Path;
use std::time::{Duration, Instant};

use k8s_gateway::sources::{block_yaml, manifests};
use serde_json::Value;

const RUNS: usize = 3;

fn median(mut runs: Vec<Duration>) -> Duration {
    runs.sort();
    runs[runs.len() / 2]
}

/// The median time of `RUNS` runs of `run`.
fn time(mut run: impl FnMut()) -> Duration {
    median(
        (0..RUNS)
            .map(|_| {
                let start = Instant::now();
                run();
                start.elapsed()
            })
            .collect(),
    )
}

fn main() {
    let Some(path) = std::env::args().skip(1).find(|a| !a.starts_with("--")) else {
        eprintln!("usage: cargo bench --bench yaml -- FILE (see benches/gen-services.py)");
        return;
    };
    let text = std::fs::read_to_string(&path).expect("a readable UTF-8 file");
    // The documents as the loader splits them (gen-services.py writes `---` lines).
    let documents: Vec<&str> = text
        .split("---\n")
        .filter(|d| !d.trim().is_empty())
        .collect();
    let mb = text.len() as f64 / 1e6;
    let fast = time(|| {
        for document in &documents {
            let value = block_yaml::parse(document).expect("block style");
            std::hint::black_box(value);
        }
    });
    let general = time(|| {
        for document in &documents {
            let value = serde_saphyr::from_multiple::<Value>(document).expect("valid YAML");
            std::hint::black_box(value);
        }
    });
    let load = time(|| {
        let (objects, errors) = manifests::read_text(Path::new(&path), &text);
        assert!(errors.is_empty(), "{errors:?}");
        std::hint::black_box(objects);
    });
    let rate = |d: Duration| mb / d.as_secs_f64();
    println!(
        "{} documents, {mb:.1} MB, median of {RUNS} runs",
        documents.len()
    );
    println!(
        "block_yaml::parse   {fast:>10.3?}  {:>8.1} MB/s",
        rate(fast)
    );
    println!(
        "serde_saphyr        {general:>10.3?}  {:>8.1} MB/s",
        rate(general)
    );
    println!(
        "manifests::read_text {load:>9.3?}  {:>8.1} MB/s (parse and decode)",
        rate(load)
    );
    println!(
        "parse speed-up: {:.1}x",
        general.as_secs_f64() / fast.as_secs_f64()
    );
}
