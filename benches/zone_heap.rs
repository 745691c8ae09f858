//! The heap a zone holds: builds the zone of N LoadBalancer Services (the entries
//! `benches/gen-services.py` objects turn into: an address at `app<i>.ns<i % 100>`, or at
//! `app<i>.home.example` for every tenth, and the SRV `_http._tcp.<name>` of its named
//! port) under a counting allocator, and prints the bytes live after the build (the zone
//! alone: the entries are made one at a time and consumed) and the peak during it.
//! Run: `cargo bench --bench zone_heap` (100,000 Services), or
//! `cargo bench --bench zone_heap -- 10000`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicUsize, Ordering};

use hickory_proto::rr::Name;
use k8s_gateway::zone::{Entry, EntryName, Kind, ObjectRef, RecordData, Settings, build};

/// The system allocator, counting the bytes asked for (not the allocator's own overhead).
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is passed to `System` unchanged; only the counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(live, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size >= layout.size() {
            let grown = new_size - layout.size();
            let live = LIVE.fetch_add(grown, Ordering::Relaxed) + grown;
            PEAK.fetch_max(live, Ordering::Relaxed);
        } else {
            LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The entries of Service `i`, as the Service source makes them.
fn service(i: u32) -> [Entry; 2] {
    let namespace = format!("ns{}", i % 100);
    let object = ObjectRef::new("Service", &namespace, &format!("app{i}"));
    let host = if i.is_multiple_of(10) {
        format!("app{i}.home.example")
    } else {
        format!("app{i}.{namespace}")
    };
    let name = Name::from_ascii(&host).unwrap();
    let ip = Ipv4Addr::new(
        10,
        64 + (i / 65536) as u8,
        (i / 256 % 256) as u8,
        (i % 256) as u8,
    );
    [
        Entry {
            name: EntryName::Hostname(name.clone()),
            data: RecordData::Address(IpAddr::V4(ip)),
            ttl: None,
            kind: Kind::Service,
            object: object.clone(),
        },
        Entry {
            name: EntryName::Hostname(Name::from_ascii(format!("_http._tcp.{host}")).unwrap()),
            data: RecordData::Srv {
                priority: 0,
                weight: 100,
                port: 80,
                target: name,
            },
            ttl: None,
            kind: Kind::Service,
            object,
        },
    ]
}

fn main() {
    let count: u32 = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .map_or(100_000, |a| a.parse().expect("a count of Services"));
    let settings = Settings::with_defaults(vec![Name::from_ascii("home.example.").unwrap()]);
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let zone = build((0..count).flat_map(service), &settings, None, 1);
    let live = LIVE.load(Ordering::Relaxed) - before;
    let peak = PEAK.load(Ordering::Relaxed) - before;
    let names = zone.name_count();
    println!(
        "services={count} names={names} zone_bytes={live} ({:.1} MiB, {:.0} B/name) build_peak_bytes={peak} ({:.1} MiB)",
        live as f64 / 1048576.0,
        live as f64 / names as f64,
        peak as f64 / 1048576.0
    );
    drop(zone);
}
