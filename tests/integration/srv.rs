//! SRV: a LoadBalancer Service's named ports and DNSEndpoint SRV records answer over UDP
//! and TCP with the target's addresses in the additional section, and Knot serving
//! `render`'s zone files answers the same.

use std::process::Command;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};

use crate::peers::{knot_serving_rendered, split_rendered, summary};
use crate::support::{TestServer, Transport, ask, have};

const CLUSTER: &str = r#"
apiVersion: v1
kind: Service
metadata:
  name: mc
  namespace: games
  annotations: {coredns.io/hostname: mc.home.example}
spec:
  type: LoadBalancer
  ports:
  - {name: minecraft, port: 25565, protocol: TCP}
  - {name: voice, port: 9987, protocol: UDP}
  - {port: 8123}
status:
  loadBalancer: {ingress: [{ip: 192.168.10.60}, {ip: "fd00:10::60"}]}
---
apiVersion: externaldns.k8s.io/v1alpha1
kind: DNSEndpoint
metadata: {name: sip, namespace: voip}
spec:
  endpoints:
  - dnsName: _sip._udp.home.example
    recordType: SRV
    targets: ["10 60 5060 pbx.home.example", "20 40 5060 sip.provider.example"]
  - dnsName: pbx.home.example
    recordType: A
    targets: [192.168.10.70]
"#;

/// The SRV data and the additional records (without OPT), each sorted.
fn srv_and_additional(message: &Message) -> (Vec<String>, Vec<String>) {
    let mut srv: Vec<String> = message
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::SRV(srv) => Some(srv.to_string()),
            _ => None,
        })
        .collect();
    srv.sort();
    let mut additional: Vec<String> = message
        .additionals
        .iter()
        .filter(|r| r.record_type() != RecordType::OPT)
        .map(|r| format!("{} {} {}", r.name, r.record_type(), r.data))
        .collect();
    additional.sort();
    (srv, additional)
}

#[tokio::test]
async fn srv_over_udp_and_tcp_with_the_targets_addresses() {
    let server = TestServer::start(CLUSTER, &[]).await;
    for transport in [Transport::Udp, Transport::Tcp] {
        // (name, SRV data, additional records)
        let cases: [(&str, &[&str], &[&str]); 3] = [
            (
                "_minecraft._tcp.mc.home.example",
                &["0 100 25565 mc.home.example."],
                &[
                    "mc.home.example. A 192.168.10.60",
                    "mc.home.example. AAAA fd00:10::60",
                ],
            ),
            (
                "_voice._udp.mc.home.example",
                &["0 100 9987 mc.home.example."],
                &[
                    "mc.home.example. A 192.168.10.60",
                    "mc.home.example. AAAA fd00:10::60",
                ],
            ),
            // A target outside our domains brings no additional record.
            (
                "_sip._udp.home.example",
                &[
                    "10 60 5060 pbx.home.example.",
                    "20 40 5060 sip.provider.example.",
                ],
                &["pbx.home.example. A 192.168.10.70"],
            ),
        ];
        for (name, srv, additional) in cases {
            let answer = ask(server.addr, name, RecordType::SRV, transport).await;
            assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
            assert!(answer.metadata.authoritative);
            let (got_srv, got_additional) = srv_and_additional(&answer);
            assert_eq!(got_srv, srv, "{transport:?} {name}");
            assert_eq!(got_additional, additional, "{transport:?} {name}");
        }
        // The unnamed port publishes nothing.
        let unnamed = ask(
            server.addr,
            "_http._tcp.mc.home.example",
            RecordType::SRV,
            transport,
        )
        .await;
        assert_eq!(unnamed.metadata.response_code, ResponseCode::NXDomain);
    }
    server.stop().await;
}

#[tokio::test]
async fn knot_serving_the_rendered_zone_agrees_on_srv() {
    if !have("knotd") {
        return;
    }
    let server = TestServer::start(CLUSTER, &[]).await;
    let manifests = server.dir.path().to_string_lossy().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_k8s-gateway"))
        .args([
            "render",
            "--domain",
            "home.example",
            "--manifests",
            &manifests,
        ])
        .output()
        .expect("run render");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rendered = split_rendered(&String::from_utf8_lossy(&out.stdout));
    let dir = tempfile::tempdir().unwrap();
    let (_peer, knot) = knot_serving_rendered(dir.path(), &rendered).await;
    let questions = [
        ("_minecraft._tcp.mc.home.example", RecordType::SRV),
        ("_voice._udp.mc.home.example", RecordType::SRV),
        ("_sip._udp.home.example", RecordType::SRV),
        ("_tcp.mc.home.example", RecordType::SRV),
        ("_minecraft._tcp.mc.home.example", RecordType::A),
    ];
    for transport in [Transport::Udp, Transport::Tcp] {
        for (name, rtype) in questions {
            let ours = ask(server.addr, name, rtype, transport).await;
            let theirs = ask(knot, name, rtype, transport).await;
            assert_eq!(
                summary(&ours),
                summary(&theirs),
                "{transport:?} {name} {rtype}"
            );
            assert_eq!(
                srv_and_additional(&ours).1,
                srv_and_additional(&theirs).1,
                "{transport:?} {name} {rtype}: additional section"
            );
        }
    }
    server.stop().await;
}
