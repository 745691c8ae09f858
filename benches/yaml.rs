//! Read throughput of the manifests loader (parse and decode) on one file, YAML or JSON:
//! the cost of a start-up, or of a reload without the span cache. Not a criterion bench:
//! one pass over 100,000 Services takes seconds, so it runs a few times and prints the
//! median.
//!
//!     python3 benches/gen-services.py 100000 > /tmp/s.yaml
//!     python3 benches/gen-services.py --json 100000 > /tmp/s.json
//!     cargo bench --bench yaml -- /tmp/s.yaml /tmp/s.json

use std::path::Path;
use std::time::{Duration, Instant};

use k8s_gateway::sources::manifests;

const RUNS: usize = 3;

/// The median time of `RUNS` runs of `run`.
fn time(mut run: impl FnMut()) -> Duration {
    let mut runs: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            run();
            start.elapsed()
        })
        .collect();
    runs.sort();
    runs[runs.len() / 2]
}

fn main() {
    let paths: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    if paths.is_empty() {
        eprintln!("usage: cargo bench --bench yaml -- FILE... (see benches/gen-services.py)");
        return;
    }
    for path in paths {
        let text = std::fs::read_to_string(&path).expect("a readable UTF-8 file");
        let mb = text.len() as f64 / 1e6;
        let load = time(|| {
            let (objects, errors) = manifests::read_text(Path::new(&path), &text);
            assert!(errors.is_empty(), "{errors:?}");
            std::hint::black_box(objects);
        });
        println!(
            "{path}: {mb:.1} MB, read in {load:.3?} ({:.1} MB/s), median of {RUNS} runs",
            mb / load.as_secs_f64()
        );
    }
}
