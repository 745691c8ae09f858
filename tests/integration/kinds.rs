//! Every kind through the real server, from the bundled home-cluster manifests, and the
//! rules across kinds: precedence, opt-out, class filters, CNAME answers.

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use crate::fixtures::lb_service;
use crate::support::{TestServer, addresses, answers, debug_get, rcode, repo_path};

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

#[tokio::test]
async fn gateway_api_routes_answer_where_accepted() {
    let server = TestServer::start(&home_cluster(), &[]).await;
    for name in [
        "immich.home.example",
        "unifi.home.example",
        "pr-42.apps.home.example",
        "a.b.apps.home.example",
    ] {
        assert_eq!(
            addresses(&server.ask(name, RecordType::A).await),
            ["192.168.10.50"],
            "{name}"
        );
    }
    // The wildcard answers with the query name as owner, and covers neither its own
    // apex nor a name that is not below it.
    let wildcard = server.ask("pr-42.apps.home.example", RecordType::A).await;
    assert_eq!(
        answers(&wildcard),
        ["pr-42.apps.home.example. A 192.168.10.50"]
    );
    let apex = server.ask("apps.home.example", RecordType::A).await;
    assert_eq!(rcode(&apex), ResponseCode::NoError);
    assert!(apex.answers.is_empty());
    // The route its Gateway did not accept is not published, and /explain says why.
    assert_eq!(
        rcode(&server.ask("rejected.home.example", RecordType::A).await),
        ResponseCode::NXDomain
    );
    let (status, body) = debug_get(&server, "/explain?name=rejected.home.example").await;
    assert_eq!(status, 200);
    assert!(body.contains("not_accepted"), "{body}");
    assert!(body.contains("NotAllowedByListeners"), "{body}");
    // The DNSEndpoint's CNAME to a route's name is followed within the zone.
    assert_eq!(
        answers(&server.ask("photos.home.example", RecordType::A).await),
        [
            "photos.home.example. CNAME immich.home.example.",
            "immich.home.example. A 192.168.10.50"
        ]
    );
    server.stop().await;
}

#[tokio::test]
async fn istio_virtual_services_answer_at_the_ingress_gateway() {
    let server = TestServer::start(&home_cluster(), &[]).await;
    for name in ["jellyfin.home.example", "paperless.home.example"] {
        let answer = server.ask(name, RecordType::A).await;
        assert_eq!(addresses(&answer), ["192.168.10.40"], "{name}");
        assert!(answer.authoritative);
    }
    // The mesh-only VirtualService publishes nothing.
    assert_eq!(
        rcode(&server.ask("backend.home.example", RecordType::A).await),
        ResponseCode::NXDomain
    );
    let (_, body) = debug_get(&server, "/explain?name=jellyfin.home.example").await;
    assert!(body.contains("VirtualService"), "{body}");
    assert!(body.contains("media"), "{body}");
    server.stop().await;
}

#[tokio::test]
async fn an_istio_binding_follows_its_gateway_and_service_through_reloads() {
    // Start with the VirtualService exported only to its own namespace: the ingress
    // Gateway cannot see it.
    let istio = std::fs::read_to_string(repo_path("examples/home-cluster/istio.yaml")).unwrap();
    let hidden = istio.replace(
        "  hosts: [jellyfin.home.example]\n",
        "  hosts: [jellyfin.home.example]\n  exportTo: [\".\"]\n",
    );
    let server = TestServer::start(&hidden, &[]).await;
    assert_eq!(
        rcode(&server.ask("jellyfin.home.example", RecordType::A).await),
        ResponseCode::NXDomain
    );
    assert_eq!(
        addresses(&server.ask("paperless.home.example", RecordType::A).await),
        ["192.168.10.40"]
    );
    // Exported, and the ingress Service moved to a new address: both show.
    std::fs::write(
        server.path("objects.yaml"),
        istio.replace("192.168.10.40", "192.168.10.41"),
    )
    .unwrap();
    server
        .wait_for("jellyfin.home.example", RecordType::A, |m| {
            addresses(m) == ["192.168.10.41"]
        })
        .await;
    assert_eq!(
        addresses(&server.ask("paperless.home.example", RecordType::A).await),
        ["192.168.10.41"]
    );
    server.stop().await;
}
