//! Every kind through the real server, from the bundled home-cluster manifests, and the
//! rules across kinds: precedence, opt-out, class filters, CNAME answers.

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use crate::support::{TestServer, addresses, answers, lb_service, rcode, repo_path};

/// The bundled example cluster, as one manifest stream.
fn home_cluster() -> String {
    [
        "services.yaml",
        "home-cluster/istio.yaml",
        "home-cluster/gateway-api.yaml",
        "home-cluster/ingress.yaml",
        "home-cluster/dnsendpoint.yaml",
    ]
    .iter()
    .map(|f| {
        std::fs::read_to_string(repo_path(&format!("examples/{f}"))).expect("example file")
            + "\n---\n"
    })
    .collect()
}

#[tokio::test]
async fn ingress_and_dnsendpoint_names_answer() {
    let server = TestServer::start(&home_cluster(), &[]).await;
    // (name, type, expected answer lines)
    let cases: &[(&str, RecordType, &[&str])] = &[
        (
            "grafana.home.example",
            RecordType::A,
            &["grafana.home.example. A 192.168.10.30"],
        ),
        (
            "nas.home.example",
            RecordType::A,
            &["nas.home.example. A 192.168.10.5"],
        ),
        (
            "home.example",
            RecordType::TXT,
            &["home.example. TXT managed-by=k8s-gateway"],
        ),
    ];
    for (name, rtype, expected) in cases {
        let answer = server.ask(name, *rtype).await;
        assert_eq!(answers(&answer), *expected, "{name} {rtype}");
    }
    // recordTTL overrides --ttl.
    assert_eq!(
        server.ask("nas.home.example", RecordType::A).await.answers[0].ttl,
        300
    );
    // A CNAME answers A queries with itself (its target is looked up by the resolver,
    // or followed here when it is in the zone).
    let alias = server.ask("photos.home.example", RecordType::A).await;
    assert_eq!(
        answers(&alias)[0],
        "photos.home.example. CNAME immich.home.example."
    );
    server.stop().await;
}

#[tokio::test]
async fn precedence_opt_out_and_class_filters() {
    let dnsendpoint = "---\napiVersion: externaldns.k8s.io/v1alpha1\nkind: DNSEndpoint\nmetadata: {name: pin, namespace: network}\nspec:\n  endpoints:\n  - {dnsName: web.home.example, recordType: A, targets: [10.9.9.9]}\n";
    let ignored = "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: hidden\n  namespace: apps\n  labels: {k8s-gateway.dns/ignore: \"true\"}\n  annotations: {coredns.io/hostname: hidden.home.example}\nspec: {type: LoadBalancer}\nstatus: {loadBalancer: {ingress: [{ip: 10.0.0.7}]}}\n";
    let traefik = std::fs::read_to_string(repo_path("examples/home-cluster/ingress.yaml"))
        .unwrap()
        .replace("ingressClassName: nginx", "ingressClassName: traefik")
        .replace("grafana", "other");
    let manifests = [
        lb_service("web", "apps", Some("web.home.example"), &["10.0.0.1"]),
        dnsendpoint.to_string(),
        ignored.to_string(),
        "---\n".to_string(),
        std::fs::read_to_string(repo_path("examples/home-cluster/ingress.yaml")).unwrap(),
        "\n---\n".to_string(),
        traefik,
    ]
    .concat();

    // Default order: DNSEndpoint first, so it wins over the Service.
    let server = TestServer::start(&manifests, &["--ingress-class", "nginx"]).await;
    assert_eq!(
        addresses(&server.ask("web.home.example", RecordType::A).await),
        ["10.9.9.9"]
    );
    assert_eq!(
        rcode(&server.ask("hidden.home.example", RecordType::A).await),
        ResponseCode::NXDomain
    );
    assert_eq!(
        addresses(&server.ask("grafana.home.example", RecordType::A).await),
        ["192.168.10.30"]
    );
    assert_eq!(
        rcode(&server.ask("other.home.example", RecordType::A).await),
        ResponseCode::NXDomain
    );
    server.stop().await;

    // --resources reorders: the Service now wins; DNSEndpoint left out entirely.
    let server = TestServer::start(&manifests, &["--resources", "Service,Ingress"]).await;
    assert_eq!(
        addresses(&server.ask("web.home.example", RecordType::A).await),
        ["10.0.0.1"]
    );
    assert_eq!(
        rcode(&server.ask("nas.home.example", RecordType::A).await),
        ResponseCode::NXDomain
    );
    // No class filter: every Ingress publishes.
    assert_eq!(
        addresses(&server.ask("other.home.example", RecordType::A).await),
        ["192.168.10.30"]
    );
    server.stop().await;
}
