//! The status page `/`, loaded by a real browser (headless Chromium): the rendered DOM
//! shows the example cluster's names, why objects published nothing, and user text as
//! text; the filter box hides rows, and the page fetches fresh data in place.

use std::net::SocketAddr;
use std::process::Command;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::{TestServer, debug_get, have, repo_path};

/// Objects added to the example cluster: markup in a host name (skipped, and its detail
/// quotes it) and in TXT data (published), an address-less LoadBalancer, and a Service
/// that loses a name to an HTTPRoute.
const EXTRAS: &str = r#"
---
apiVersion: v1
kind: Service
metadata:
  name: evil
  namespace: apps
  annotations:
    coredns.io/hostname: "<script>alert(1)</script>.home.example"
spec:
  type: LoadBalancer
status:
  loadBalancer:
    ingress: [{ip: 192.168.10.66}]
---
apiVersion: externaldns.k8s.io/v1alpha1
kind: DNSEndpoint
metadata:
  name: markup
  namespace: apps
spec:
  endpoints:
  - dnsName: note.home.example
    recordType: TXT
    targets: ["<img src=x onerror=alert(2)>"]
---
apiVersion: v1
kind: Service
metadata:
  name: waiting
  namespace: apps
  annotations:
    coredns.io/hostname: waiting.home.example
spec:
  type: LoadBalancer
---
apiVersion: v1
kind: Service
metadata:
  name: immich-lb
  namespace: photos
  annotations:
    coredns.io/hostname: immich.home.example
spec:
  type: LoadBalancer
status:
  loadBalancer:
    ingress: [{ip: 192.168.10.99}]
"#;

/// Every manifest of examples/home-cluster, then [`EXTRAS`].
fn example_cluster() -> String {
    let dir = repo_path("examples/home-cluster");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("examples")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let mut text = String::new();
    for file in files {
        text.push_str("\n---\n");
        text.push_str(&std::fs::read_to_string(file).expect("read example"));
    }
    text + EXTRAS
}

/// Loads `url` in headless Chromium and returns the DOM after its scripts ran; `extra`
/// goes to Chromium too.
fn dump_dom(url: String, extra: &[&str]) -> String {
    let profile = tempfile::tempdir().expect("profile folder");
    let out = Command::new("timeout")
        .args(["120", "chromium"])
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .args(["--dump-dom", &url])
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn in_a_browser_the_page_shows_names_reasons_escaped_text_filters_and_refreshes() {
    if !have("chromium") {
        return;
    }
    let server = TestServer::start(&example_cluster(), &[]).await;
    let addr = server.server.as_ref().unwrap().debug_address.unwrap();
    let dom = tokio::task::spawn_blocking(move || dump_dom(format!("http://{addr}/"), &[]))
        .await
        .unwrap();

    // Readiness, and a name from each kind of the example cluster with its object.
    assert!(dom.contains("<b class=\"ok\">ready</b>"), "{dom}");
    for cells in [
        "<td>grafana.home.example.</td><td>A</td><td>192.168.10.30</td><td>60</td><td>Ingress monitoring/grafana</td>",
        "<td>jellyfin.home.example.</td><td>A</td><td>192.168.10.40</td><td>60</td><td>VirtualService media/jellyfin</td>",
        "<td>nas.home.example.</td><td>A</td><td>192.168.10.5</td><td>300</td><td>DNSEndpoint network/lan-records</td>",
        "<td>unifi.home.example.</td><td>A</td><td>192.168.10.50</td><td>60</td><td>TLSRoute network/unifi</td>",
    ] {
        assert!(dom.contains(cells), "missing {cells}\n{dom}");
    }
    // Objects that published nothing, with the reason; the loser of precedence.
    assert!(
        dom.contains("<td>Service apps/waiting</td><td>no_address</td>"),
        "{dom}"
    );
    assert!(
        dom.contains("<td>Service apps/evil</td><td>invalid_field</td>"),
        "{dom}"
    );
    assert!(
        dom.contains(
            "<td>immich.home.example.</td><td>Service</td><td>Service photos/immich-lb</td>"
        ),
        "{dom}"
    );
    // Markup from objects is text: escaped in the DOM, never an element.
    assert!(
        dom.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{dom}"
    );
    assert!(dom.contains("&lt;img src=x onerror=alert(2)&gt;"), "{dom}");
    assert!(!dom.contains("<script>alert"), "{dom}");
    assert!(!dom.contains("<img"), "{dom}");
    // With manifests, the source table counts the objects behind the zone per kind.
    assert!(dom.contains("<td>HTTPRoute</td><td>loaded</td>"), "{dom}");

    // The filter box (set from ?q=) hides every other row, in the browser. Chromium's
    // virtual clock runs 20 s, past the 15 s refresh: the page fetches `/` again (seen by
    // a relay in front of the server), swaps the data in without a reload, keeps the
    // filter, and shows no "could not refresh".
    let (relay, requests) = recording_relay(addr).await;
    let dom = tokio::task::spawn_blocking(move || {
        dump_dom(
            format!("http://{relay}/?q=jellyfin"),
            &["--virtual-time-budget=20000"],
        )
    })
    .await
    .unwrap();
    let requests = requests.lock().unwrap().clone();
    assert_eq!(
        requests.first().map(String::as_str),
        Some("GET /?q=jellyfin")
    );
    assert!(requests.iter().any(|r| r == "GET /"), "{requests:?}");
    assert!(dom.contains("<tr><td>jellyfin.home.example.</td>"), "{dom}");
    assert!(
        dom.contains("<tr hidden=\"\"><td>grafana.home.example.</td>"),
        "{dom}"
    );
    assert!(dom.contains("<p id=\"stale\" hidden=\"\">"), "{dom}");

    // The page is HTML, and not cached (it is refreshed in place).
    assert_eq!(debug_get(&server, "/").await.0, 200);
    server.stop().await;
}

/// A TCP relay to `target` that records the method and path of every request through it.
async fn recording_relay(target: SocketAddr) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind relay");
    let addr = listener.local_addr().expect("relay address");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = TcpStream::connect(target).await else {
                continue;
            };
            let log = log.clone();
            let (mut from_client, mut to_client) = client.into_split();
            let (mut from_server, mut to_server) = server.into_split();
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut from_server, &mut to_client).await;
            });
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n) = from_client.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    // NB: a browser writes each small GET in one piece: its request line
                    // starts the chunk.
                    let text = String::from_utf8_lossy(&buf[..n]);
                    if let Some(line) = text.lines().next().filter(|l| l.starts_with("GET ")) {
                        let request = line.trim_end_matches(" HTTP/1.1").to_string();
                        log.lock().unwrap().push(request);
                    }
                    if to_server.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    (addr, seen)
}
