"""The chart renders what a home cluster needs, valid for Kubernetes, for each combination of values."""

from __future__ import annotations

import shutil
import subprocess

import helm_sdkpy
import pytest
import yaml

from conftest import CHART, NAMESPACE, RELEASE, assert_valid

DOMAIN = {"domain": "home.example"}
ALL_KINDS = ["DNSEndpoint", "HTTPRoute", "GRPCRoute", "TLSRoute", "VirtualService", "Ingress", "Service"]

# Value sets worth rendering; each one's objects must all be valid for their schemas.
SCENARIOS = {
    "defaults": DOMAIN,
    "multi-domain": {"domain": ["home.example", "lab.example"]},
    "two-replicas": {**DOMAIN, "replicaCount": 2},
    "hard-anti-affinity": {**DOMAIN, "replicaCount": 3, "podAntiAffinity": "hard", "podDisruptionBudget": {"minAvailable": 2}},
    "service-monitor": {**DOMAIN, "prometheus": {"monitor": {"enabled": True, "interval": "30s", "additionalLabels": {"release": "kps"}}}},
    "prometheus-rule": {**DOMAIN, "prometheus": {"monitor": {"enabled": True}}, "prometheusRule": {"enabled": True, "additionalLabels": {"release": "kps"}}},
    "cilium": {
        **DOMAIN,
        "service": {"loadBalancerIP": "192.168.1.53"},
        "cilium": {
            "ipPool": {"enabled": True, "blocks": [{"cidr": "192.168.1.53/32"}]},
            "l2Announcement": {"enabled": True, "interfaces": ["^eth[0-9]+"]},
        },
    },
    "cilium-v2-pool": {**DOMAIN, "cilium": {"ipPool": {"enabled": True, "apiVersion": "cilium.io/v2", "blocks": [{"start": "10.0.53.1", "stop": "10.0.53.9"}]}}},
    "gateway-and-istio": {**DOMAIN, "watchedResources": ["HTTPRoute", "VirtualService", "Service"]},
    "dual-stack": {**DOMAIN, "listenAddress": "::", "service": {"ipFamilyPolicy": "PreferDualStack", "ipFamilies": ["IPv4", "IPv6"], "loadBalancerIP": "192.168.1.53,fd00::53"}},
    "node-port": {**DOMAIN, "service": {"type": "NodePort", "nodePort": 30053, "externalTrafficPolicy": "Local"}},
    "cluster-ip": {**DOMAIN, "service": {"type": "ClusterIP", "clusterIP": "10.43.0.53"}, "prometheus": {"service": {"enabled": False}}},
    "zone-files-and-static-records": {
        **DOMAIN,
        "zoneFiles": [{"filename": "home.zone", "domains": "home.example", "contents": "nas A 192.168.1.20\n"}],
        "staticRecords": [{"name": "printer.home.example", "type": "A", "value": "192.168.1.30", "ttl": 300}],
    },
    "no-rbac-existing-sa": {**DOMAIN, "rbac": {"create": False}, "serviceAccount": {"create": False, "name": "dns"}},
    "everything": {
        "domain": "home.example lab.example",
        "ttl": 300,
        "apex": "ns1",
        "secondary": "ns2",
        "watchedResources": ["DNSEndpoint", "Ingress"],
        "filters": {"ingressClasses": ["internal"], "gatewayClasses": ["cilium"]},
        "watchNamespaces": ["apps", "media"],
        "labelSelector": "dns/publish=true",
        "resync": "10m",
        "syncTimeout": "2m",
        "fallthrough": ["1.1.1.1", "[2606:4700:4700::1111]:53"],
        "fallthroughCache": 500,
        "debug": {"enabled": False, "port": 9081},
        "reverseZones": ["192.168.10.0/24", "fd00:10::/32"],
        "udpWorkers": 2,
        "transferAllow": ["192.168.1.2", "fd00::/64"],
        "notify": ["192.168.1.2:5353", "[fd00::2]:53"],
        "transfer": {"tsigSecret": "dns-tsig"},
        "logFormat": "text",
        "logLevel": "debug",
        "extraConfig": {"K8S_GATEWAY_FUTURE": "yes"},
        "extraArgs": ["--verbose"],
        "image": {"registry": "registry.example", "repository": "home/k8s-gateway", "digest": "sha256:" + "a" * 64},
        "imagePullSecrets": [{"name": "regcred"}],
        "replicaCount": 2,
        "priorityClassName": "system-cluster-critical",
        "customLabels": {"team": "home"},
        "podAnnotations": {"example/annotated": "yes"},
        "podLabels": {"tier": "dns"},
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"}],
        "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "k8s-gateway"}}}],
        "serviceAccount": {"annotations": {"example/sa": "yes"}},
        "service": {"annotations": {"lbipam.cilium.io/sharing-key": "dns"}, "labels": {"lan": "yes"}, "loadBalancerClass": "io.cilium/l2-announcer", "externalTrafficPolicy": "Local"},
        "prometheus": {"service": {"annotations": {"prometheus.io/scrape": "true"}}, "monitor": {"enabled": True, "namespace": "monitoring", "scrapeTimeout": "5s", "honorLabels": True, "relabelings": [{"action": "labeldrop", "regex": "pod"}]}},
    },
}


def env(rendered) -> dict:
    """The configuration ConfigMap's data (not the zoneFiles' or staticRecords' files)."""
    configs = [c for c in rendered.all("ConfigMap") if not c["metadata"]["name"].endswith(("-zones", "-static"))]
    assert len(configs) == 1, [c["metadata"]["name"] for c in configs]
    return configs[0]["data"]


def container(rendered) -> dict:
    return rendered.one("Deployment")["spec"]["template"]["spec"]["containers"][0]


def rules_by_group(rendered) -> dict:
    """ClusterRole rules as {apiGroup: sorted resources}."""
    out: dict[str, list[str]] = {}
    for rule in rendered.one("ClusterRole")["rules"]:
        for group in rule["apiGroups"]:
            out.setdefault(group, []).extend(rule["resources"])
    return {g: sorted(r) for g, r in out.items()}


def labels_match(selector: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in selector["matchLabels"].items())


# --- lint -------------------------------------------------------------------------------


def test_lint_passes(lint):
    result = lint(CHART)
    problems = [m for m in result["Messages"] or [] if m["Severity"] >= 2]  # 2 warning, 3 error
    assert result["TotalChartsLinted"] == 1
    assert not problems and not result.get("Errors"), result


def test_lint_catches_a_broken_template(lint, tmp_path):
    # Proves the lint above looks at the templates. NB: in lint mode Helm only logs `fail`,
    # so the missing domain of the chart's own values is not an error there (see below).
    chart = tmp_path / "k8s-gateway"
    shutil.copytree(CHART, chart, ignore=shutil.ignore_patterns("tests"))
    (chart / "templates" / "broken.yaml").write_text("kind: {{ .Values.domain\n")
    result = lint(chart)
    assert any(m["Severity"] == 3 for m in result["Messages"] or []), result


# --- every object valid -----------------------------------------------------------------


@pytest.mark.parametrize("values", SCENARIOS.values(), ids=SCENARIOS.keys())
def test_objects_match_kubernetes_schemas(render, values):
    rendered = render(values)
    assert rendered.objects
    for obj in rendered.objects:
        assert_valid(obj)
    names = [(o["kind"], o["metadata"]["name"]) for o in rendered.objects]
    assert len(names) == len(set(names)), names


# --- defaults ---------------------------------------------------------------------------


def test_defaults_render_the_minimum(render):
    rendered = render(DOMAIN)
    assert rendered.kinds() == sorted(
        ["ClusterRole", "ClusterRoleBinding", "ConfigMap", "Deployment", "Service", "Service", "ServiceAccount"]
    )
    assert {o["metadata"]["name"] for o in rendered.all("Service")} == {RELEASE, f"{RELEASE}-metrics"}


def test_dns_service_is_a_loadbalancer_on_53_udp_and_tcp(render):
    rendered = render(DOMAIN)
    svc = rendered.one("Service", RELEASE)
    assert svc["spec"]["type"] == "LoadBalancer"
    ports = {(p["protocol"], p["port"], p["targetPort"]) for p in svc["spec"]["ports"]}
    assert ports == {("UDP", 53, "dns-udp"), ("TCP", 53, "dns-tcp")}
    targets = {p["name"]: (p["containerPort"], p["protocol"]) for p in container(rendered)["ports"]}
    assert targets == {"dns-udp": (1053, "UDP"), "dns-tcp": (1053, "TCP"), "http": (8080, "TCP")}
    assert "loadBalancerIP" not in svc["spec"] and "annotations" not in svc["metadata"]
    assert labels_match({"matchLabels": svc["spec"]["selector"]}, rendered.one("Deployment")["spec"]["template"]["metadata"]["labels"])


def test_metrics_service_is_separate_and_cluster_internal(render):
    svc = render(DOMAIN).one("Service", f"{RELEASE}-metrics")
    assert svc["spec"]["type"] == "ClusterIP"
    assert svc["spec"]["ports"] == [{"name": "metrics", "port": 8080, "targetPort": "http", "protocol": "TCP"}]


def test_config_comes_from_the_configmap(render):
    rendered = render(DOMAIN)
    assert env(rendered) == {
        "K8S_GATEWAY_DOMAIN": "home.example",
        "K8S_GATEWAY_TTL": "60",
        # NS name: our own Service's "<name>.<namespace>", which the Service source publishes.
        "K8S_GATEWAY_APEX": f"{RELEASE}.{NAMESPACE}",
        "K8S_GATEWAY_LISTEN": "0.0.0.0:1053",
        "K8S_GATEWAY_HTTP_LISTEN": "0.0.0.0:8080",
        # The debug views show the whole zone: loopback only, for kubectl port-forward.
        "K8S_GATEWAY_DEBUG_LISTEN": "127.0.0.1:8081",
        "K8S_GATEWAY_LOG_FORMAT": "json",
        "RUST_LOG": "info",
        "K8S_GATEWAY_EVENTS": "true",
    }
    c = container(rendered)
    assert c["args"] == ["serve"]
    assert c["envFrom"] == [{"configMapRef": {"name": RELEASE}}]
    # Only the pod's name (the Events' reportingInstance) comes from elsewhere.
    assert [e["name"] for e in c["env"]] == ["POD_NAME"]
    # Service links would add K8S_GATEWAY_PORT etc. for our own Service: our option prefix.
    assert rendered.one("Deployment")["spec"]["template"]["spec"]["enableServiceLinks"] is False


def test_probes_use_healthz_and_readyz(render):
    c = container(render(DOMAIN))
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}


def test_pod_is_locked_down(render):
    rendered = render(DOMAIN)
    pod = rendered.one("Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = container(rendered)["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert "add" not in sc["capabilities"]
    # Only our pod gets a token; the ServiceAccount hands none to others.
    assert pod["automountServiceAccountToken"] is True
    assert rendered.one("ServiceAccount")["automountServiceAccountToken"] is False
    assert pod["serviceAccountName"] == RELEASE


def test_default_rbac_reads_every_kind_and_writes_only_events(render):
    rendered = render(DOMAIN)
    for rule in rendered.one("ClusterRole")["rules"]:
        if rule["apiGroups"] == ["events.k8s.io"]:
            # --events, on by default: exactly create and patch on events, nothing else.
            assert rule["resources"] == ["events"] and sorted(rule["verbs"]) == ["create", "patch"], rule
            continue
        assert sorted(rule["verbs"]) == ["get", "list", "watch"], rule
        assert "nonResourceURLs" not in rule  # discovery is granted to every authenticated user
    assert env(rendered)["K8S_GATEWAY_EVENTS"] == "true"
    pod_name = [e for e in container(rendered)["env"] if e["name"] == "POD_NAME"]
    assert pod_name == [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]
    assert rules_by_group(rendered) == {
        "events.k8s.io": ["events"],
        "": ["namespaces", "services"],
        "networking.k8s.io": ["ingresses"],
        "gateway.networking.k8s.io": ["gateways", "grpcroutes", "httproutes", "tlsroutes"],
        "networking.istio.io": ["gateways", "virtualservices"],
        "externaldns.k8s.io": ["dnsendpoints"],
    }
    binding = rendered.one("ClusterRoleBinding")
    assert binding["roleRef"]["name"] == rendered.one("ClusterRole")["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": RELEASE, "namespace": NAMESPACE}]


def test_single_replica_has_no_pdb_and_no_anti_affinity(render):
    rendered = render(DOMAIN)
    assert not rendered.all("PodDisruptionBudget")
    assert "affinity" not in rendered.one("Deployment")["spec"]["template"]["spec"]


def test_notes_tell_how_to_find_the_ip_and_dig(render):
    notes = render(DOMAIN).notes
    assert f"kubectl -n {NAMESPACE} get svc {RELEASE}" in notes
    assert ".status.loadBalancer.ingress[0].ip" in notes
    assert "dig @$IP home.example SOA" in notes
    assert "server=/home.example/$IP" in notes
    # The debug views are on the pod's loopback: port-forward is the way in.
    assert f"kubectl -n {NAMESPACE} port-forward deploy/{RELEASE} 8081:8081" in notes
    assert "port-forward" not in render(SCENARIOS["everything"]).notes


# --- domains ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "domain",
    [
        ["home.example", "lab.example"],  # a list
        "home.example lab.example",  # k8s_gateway's chart: one string, space-separated
        "home.example, lab.example",  # commas work too
    ],
)
def test_several_domains(render, domain):
    rendered = render({"domain": domain})
    assert env(rendered)["K8S_GATEWAY_DOMAIN"] == "home.example,lab.example"
    assert "home.example, lab.example" in rendered.notes


@pytest.mark.parametrize("values", [{}, {"domain": ""}, {"domain": "  "}], ids=["unset", "empty", "blank"])
def test_a_domain_is_required(render, values):
    with pytest.raises(helm_sdkpy.InstallError, match="set `domain`"):
        render(values)


# --- replicas ---------------------------------------------------------------------------


def test_two_replicas_get_a_pdb_and_soft_anti_affinity(render):
    rendered = render({**DOMAIN, "replicaCount": 2})
    pod_labels = rendered.one("Deployment")["spec"]["template"]["metadata"]["labels"]
    pdb = rendered.one("PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1 and "minAvailable" not in pdb["spec"]
    assert labels_match(pdb["spec"]["selector"], pod_labels)
    anti = rendered.one("Deployment")["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    [term] = anti["preferredDuringSchedulingIgnoredDuringExecution"]
    assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert labels_match(term["podAffinityTerm"]["labelSelector"], pod_labels)


def test_hard_anti_affinity_and_min_available(render):
    rendered = render(SCENARIOS["hard-anti-affinity"])
    assert rendered.one("PodDisruptionBudget")["spec"] == {
        "selector": {"matchLabels": {"app.kubernetes.io/name": "k8s-gateway", "app.kubernetes.io/instance": RELEASE}},
        "minAvailable": 2,
    }
    anti = rendered.one("Deployment")["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    assert list(anti) == ["requiredDuringSchedulingIgnoredDuringExecution"]


def test_own_affinity_replaces_the_automatic_one(render):
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [{"key": "dns", "operator": "Exists"}]}]}}}
    rendered = render({**DOMAIN, "replicaCount": 2, "affinity": affinity})
    assert rendered.one("Deployment")["spec"]["template"]["spec"]["affinity"] == affinity


# --- metrics ----------------------------------------------------------------------------


def test_service_monitor_scrapes_the_metrics_service(render):
    rendered = render(SCENARIOS["service-monitor"])
    sm = rendered.one("ServiceMonitor")
    assert sm["metadata"]["labels"]["release"] == "kps"
    assert sm["spec"]["endpoints"] == [{"port": "metrics", "path": "/metrics", "interval": "30s"}]
    assert sm["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    metrics = rendered.one("Service", f"{RELEASE}-metrics")
    assert labels_match(sm["spec"]["selector"], metrics["metadata"]["labels"])
    assert not labels_match(sm["spec"]["selector"], rendered.one("Service", RELEASE)["metadata"]["labels"])


def test_service_monitor_needs_the_metrics_service(render):
    values = {**DOMAIN, "prometheus": {"service": {"enabled": False}, "monitor": {"enabled": True}}}
    with pytest.raises(helm_sdkpy.InstallError, match="prometheus.service.enabled"):
        render(values)


# --- Cilium -----------------------------------------------------------------------------


def test_cilium_pool_and_policy_serve_only_our_dns_service(render):
    rendered = render(SCENARIOS["cilium"])
    dns = rendered.one("Service", RELEASE)["metadata"]["labels"]
    metrics = rendered.one("Service", f"{RELEASE}-metrics")["metadata"]["labels"]
    pool = rendered.one("CiliumLoadBalancerIPPool")
    assert pool["apiVersion"] == "cilium.io/v2alpha1"
    assert pool["spec"]["blocks"] == [{"cidr": "192.168.1.53/32"}]
    policy = rendered.one("CiliumL2AnnouncementPolicy")
    assert policy["spec"]["interfaces"] == ["^eth[0-9]+"]
    assert policy["spec"]["loadBalancerIPs"] is True and policy["spec"]["externalIPs"] is False
    for obj in (pool, policy):
        assert "namespace" not in obj["metadata"]  # cluster-scoped
        assert labels_match(obj["spec"]["serviceSelector"], dns)
        assert not labels_match(obj["spec"]["serviceSelector"], metrics)


def test_cilium_objects_are_off_by_default(render):
    rendered = render(DOMAIN)
    assert not rendered.all("CiliumLoadBalancerIPPool") and not rendered.all("CiliumL2AnnouncementPolicy")


def test_reverse_zones_can_come_from_the_cilium_pool(render):
    pool = {
        "enabled": True,
        "reverseZones": True,
        "blocks": [{"cidr": "192.168.10.32/27"}, {"start": "10.0.53.1", "stop": "10.0.54.9"}, {"cidr": "172.16.0.0/12"}],
    }
    rendered = render({**DOMAIN, "reverseZones": ["192.168.10.0/24"], "cilium": {"ipPool": pool}})
    # Widened to whole octets, without duplicates; the explicit list first.
    assert env(rendered)["K8S_GATEWAY_REVERSE_ZONE"] == "192.168.10.0/24,10.0.53.0/24,10.0.54.0/24,172.0.0.0/8"
    # Off unless asked for, and not without the pool.
    assert "K8S_GATEWAY_REVERSE_ZONE" not in env(render({**DOMAIN, "cilium": {"ipPool": {**pool, "reverseZones": False}}}))
    with pytest.raises(helm_sdkpy.InstallError, match="IPv4 ranges only"):
        render({**DOMAIN, "cilium": {"ipPool": {**pool, "blocks": [{"cidr": "fd00::/120"}]}}})


def test_cilium_pool_needs_blocks(render):
    with pytest.raises(helm_sdkpy.InstallError, match="cilium.ipPool.blocks"):
        render({**DOMAIN, "cilium": {"ipPool": {"enabled": True}}})


# --- watchedResources -> --resources and RBAC -------------------------------------------


@pytest.mark.parametrize(
    "kinds, rules",
    [
        (["Service"], {"": ["services"]}),
        (["Ingress"], {"networking.k8s.io": ["ingresses"]}),
        (["DNSEndpoint"], {"externaldns.k8s.io": ["dnsendpoints"]}),
        # Routes also read Namespaces, for the labels a listener's allowedRoutes selects.
        (["HTTPRoute"], {"": ["namespaces"], "gateway.networking.k8s.io": ["gateways", "httproutes"]}),
        (["TLSRoute", "GRPCRoute"], {"": ["namespaces"], "gateway.networking.k8s.io": ["gateways", "grpcroutes", "tlsroutes"]}),
        # VirtualService also reads Services, to find the Istio ingress gateway's address.
        (["VirtualService"], {"": ["services"], "networking.istio.io": ["gateways", "virtualservices"]}),
        (
            ["HTTPRoute", "VirtualService", "Service"],
            {"": ["namespaces", "services"], "gateway.networking.k8s.io": ["gateways", "httproutes"], "networking.istio.io": ["gateways", "virtualservices"]},
        ),
    ],
)
def test_watched_resources_limit_rbac_and_set_precedence(render, kinds, rules):
    rendered = render({**DOMAIN, "watchedResources": kinds, "events": False})
    assert env(rendered)["K8S_GATEWAY_RESOURCES"] == ",".join(kinds)
    assert rules_by_group(rendered) == rules


def test_events_off_needs_no_permission_on_events(render):
    rendered = render({**DOMAIN, "events": False})
    assert "events.k8s.io" not in rules_by_group(rendered)
    assert "K8S_GATEWAY_EVENTS" not in env(rendered)
    assert "env" not in container(rendered)


def test_empty_watched_resources_leave_the_binary_default_order(render):
    assert "K8S_GATEWAY_RESOURCES" not in env(render({**DOMAIN, "watchedResources": []}))


def test_no_rbac_when_disabled(render):
    rendered = render(SCENARIOS["no-rbac-existing-sa"])
    assert not rendered.all("ClusterRole") and not rendered.all("ClusterRoleBinding") and not rendered.all("ServiceAccount")
    assert rendered.one("Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == "dns"


# --- LoadBalancer IP --------------------------------------------------------------------


def test_load_balancer_ip_shortcut_sets_annotation_and_field(render):
    svc = render({**DOMAIN, "service": {"loadBalancerIP": "192.168.1.53"}}).one("Service", RELEASE)
    assert svc["metadata"]["annotations"] == {"lbipam.cilium.io/ips": "192.168.1.53"}
    assert svc["spec"]["loadBalancerIP"] == "192.168.1.53"


def test_dual_stack_load_balancer_ips_go_only_in_the_annotation(render):
    rendered = render(SCENARIOS["dual-stack"])
    svc = rendered.one("Service", RELEASE)
    assert svc["metadata"]["annotations"] == {"lbipam.cilium.io/ips": "192.168.1.53,fd00::53"}
    assert "loadBalancerIP" not in svc["spec"]  # the field takes one address
    assert svc["spec"]["ipFamilies"] == ["IPv4", "IPv6"]
    assert env(rendered)["K8S_GATEWAY_LISTEN"] == "[::]:1053"


def test_explicit_lbipam_annotation_wins_over_the_shortcut(render):
    values = {**DOMAIN, "service": {"loadBalancerIP": "192.168.1.53", "annotations": {"lbipam.cilium.io/ips": "192.168.1.54"}}}
    svc = render(values).one("Service", RELEASE)
    assert svc["metadata"]["annotations"] == {"lbipam.cilium.io/ips": "192.168.1.54"}


def test_node_port_is_shared_by_udp_and_tcp(render):
    svc = render(SCENARIOS["node-port"]).one("Service", RELEASE)
    assert [p["nodePort"] for p in svc["spec"]["ports"]] == [30053, 30053]
    assert svc["spec"]["externalTrafficPolicy"] == "Local"


def test_a_secondary_stays_on_one_replica_when_several_serve_transfers(render):
    # Each replica makes its own serial: a secondary that asked two could see it go back.
    several = {**DOMAIN, "replicaCount": 2, "transferAllow": ["192.168.1.2"]}
    svc = render(several).one("Service", RELEASE)
    assert svc["spec"]["sessionAffinity"] == "ClientIP"
    assert svc["spec"]["sessionAffinityConfig"] == {"clientIP": {"timeoutSeconds": 10800}}
    for values in (DOMAIN, {**DOMAIN, "replicaCount": 2}, {**DOMAIN, "transferAllow": ["192.168.1.2"]}):
        spec = render(values).one("Service", RELEASE)["spec"]
        assert spec["sessionAffinity"] == "None" and "sessionAffinityConfig" not in spec, values
    forced = render({**several, "service": {"sessionAffinity": "None"}}).one("Service", RELEASE)
    assert forced["spec"]["sessionAffinity"] == "None"


def test_a_tsig_secret_is_mounted_read_only_and_passed_as_the_key_file(render):
    # RFC 8945 keys for transfers and NOTIFY: the Secret's tsig.key, never in the ConfigMap.
    rendered = render({**DOMAIN, "transferAllow": ["192.168.1.2"], "transfer": {"tsigSecret": "dns-tsig"}})
    path = env(rendered)["K8S_GATEWAY_TSIG_KEY"]
    assert path == "/etc/k8s-gateway/tsig/tsig.key"
    c = container(rendered)
    assert c["volumeMounts"] == [{"name": "tsig", "mountPath": "/etc/k8s-gateway/tsig", "readOnly": True}]
    pod = rendered.one("Deployment")["spec"]["template"]["spec"]
    assert pod["volumes"] == [
        {"name": "tsig", "secret": {"secretName": "dns-tsig", "items": [{"key": "tsig.key", "path": "tsig.key"}], "defaultMode": 0o444}}
    ]
    # Without it: no key, no volume.
    plain = render(DOMAIN)
    assert "K8S_GATEWAY_TSIG_KEY" not in env(plain)
    assert "volumes" not in plain.one("Deployment")["spec"]["template"]["spec"]
    assert "volumeMounts" not in container(plain)


# --- several clusters ---------------------------------------------------------------------


def test_clusters_in_order_the_local_one_by_service_account_the_others_from_secrets(render):
    rendered = render({
        **DOMAIN,
        "clusters": [
            {"name": "prod"},
            {"name": "lab", "kubeconfigSecret": "lab-kubeconfig", "context": "lab-admin"},
            {"name": "shed", "kubeconfigSecret": "shed", "key": "config.yaml"},
        ],
    })
    # The order is the precedence; an empty path is the pod's own service account.
    assert env(rendered)["K8S_GATEWAY_CLUSTER"] == (
        "prod=,lab=/etc/k8s-gateway/clusters/lab/kubeconfig:lab-admin,"
        "shed=/etc/k8s-gateway/clusters/shed/kubeconfig"
    )
    assert container(rendered)["volumeMounts"] == [
        {"name": "cluster-lab", "mountPath": "/etc/k8s-gateway/clusters/lab", "readOnly": True},
        {"name": "cluster-shed", "mountPath": "/etc/k8s-gateway/clusters/shed", "readOnly": True},
    ]
    pod = rendered.one("Deployment")["spec"]["template"]["spec"]
    assert pod["volumes"] == [
        {"name": "cluster-lab", "secret": {"secretName": "lab-kubeconfig", "items": [{"key": "kubeconfig", "path": "kubeconfig"}], "defaultMode": 0o444}},
        {"name": "cluster-shed", "secret": {"secretName": "shed", "items": [{"key": "config.yaml", "path": "kubeconfig"}], "defaultMode": 0o444}},
    ]
    # Only the local cluster: named, nothing mounted.
    local = render({**DOMAIN, "clusters": [{"name": "home"}]})
    assert env(local)["K8S_GATEWAY_CLUSTER"] == "home="
    assert "volumes" not in local.one("Deployment")["spec"]["template"]["spec"]
    # Without the value: the one cluster, unnamed.
    assert "K8S_GATEWAY_CLUSTER" not in env(render(DOMAIN))


@pytest.mark.parametrize(
    ("clusters", "message"),
    [
        ([{"name": "prod"}, {"name": "prod", "kubeconfigSecret": "x"}], "prod is given twice"),
        ([{"name": "a"}, {"name": "b"}], "at most one entry without kubeconfigSecret"),
        ([{"name": "Prod"}], "schema"),
        ([{"name": "lab", "kubeconfig": "x"}], "schema"),
        ([{"kubeconfigSecret": "x"}], "schema"),
    ],
)
def test_bad_clusters_fail_with_what_is_wrong(render, clusters, message):
    with pytest.raises(helm_sdkpy.InstallError, match=message):
        render({**DOMAIN, "clusters": clusters})


# --- options ----------------------------------------------------------------------------


def test_every_option_reaches_the_config(render):
    rendered = render(SCENARIOS["everything"])
    assert env(rendered) == {
        "K8S_GATEWAY_DOMAIN": "home.example,lab.example",
        "K8S_GATEWAY_TTL": "300",
        "K8S_GATEWAY_APEX": "ns1",
        "K8S_GATEWAY_SECONDARY": "ns2",
        "K8S_GATEWAY_RESOURCES": "DNSEndpoint,Ingress",
        "K8S_GATEWAY_INGRESS_CLASS": "internal",
        "K8S_GATEWAY_GATEWAY_CLASS": "cilium",
        "K8S_GATEWAY_NAMESPACE": "apps,media",
        "K8S_GATEWAY_LABEL_SELECTOR": "dns/publish=true",
        "K8S_GATEWAY_REVERSE_ZONE": "192.168.10.0/24,fd00:10::/32",
        "K8S_GATEWAY_TRANSFER_ALLOW": "192.168.1.2,fd00::/64",
        "K8S_GATEWAY_NOTIFY": "192.168.1.2:5353,[fd00::2]:53",
        "K8S_GATEWAY_TSIG_KEY": "/etc/k8s-gateway/tsig/tsig.key",
        "K8S_GATEWAY_RESYNC": "10m",
        "K8S_GATEWAY_SYNC_TIMEOUT": "2m",
        "K8S_GATEWAY_EVENTS": "true",
        "K8S_GATEWAY_FALLTHROUGH": "1.1.1.1,[2606:4700:4700::1111]:53",
        "K8S_GATEWAY_FALLTHROUGH_CACHE": "500",
        "K8S_GATEWAY_UDP_WORKERS": "2",
        "K8S_GATEWAY_LISTEN": "0.0.0.0:1053",
        "K8S_GATEWAY_HTTP_LISTEN": "0.0.0.0:8080",
        "K8S_GATEWAY_DEBUG_LISTEN": "off",
        "K8S_GATEWAY_LOG_FORMAT": "text",
        "RUST_LOG": "debug",
        "K8S_GATEWAY_FUTURE": "yes",
    }
    c = container(rendered)
    assert c["image"] == "registry.example/home/k8s-gateway@sha256:" + "a" * 64
    assert c["args"] == ["serve", "--verbose"]
    for obj in rendered.objects:
        assert obj["metadata"]["labels"]["team"] == "home", obj["kind"]
    assert rendered.one("ServiceMonitor")["metadata"]["namespace"] == "monitoring"


def test_image_tag_defaults_to_app_version(render):
    app_version = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    assert container(render(DOMAIN))["image"] == f"k8s-gateway:{app_version}"
    assert container(render({**DOMAIN, "image": {"tag": "v9"}}))["image"] == "k8s-gateway:v9"


def test_pods_restart_only_when_the_config_changes(render):
    def checksum(values):
        return render(values).one("Deployment")["spec"]["template"]["metadata"]["annotations"]["checksum/config"]

    base = checksum(DOMAIN)
    assert checksum({**DOMAIN, "replicaCount": 3}) == base
    assert checksum({**DOMAIN, "resources": {"requests": {"cpu": "50m"}}}) == base
    assert checksum({**DOMAIN, "service": {"loadBalancerIP": "192.168.1.53"}}) == base
    assert checksum({**DOMAIN, "ttl": 30}) != base
    assert checksum({**DOMAIN, "watchedResources": ["Service"]}) != base


def test_pod_labels_carry_no_chart_version(render):
    labels = render(DOMAIN).one("Deployment")["spec"]["template"]["metadata"]["labels"]
    assert "helm.sh/chart" not in labels and "app.kubernetes.io/version" not in labels


def test_release_name_containing_the_chart_name_is_not_repeated(render):
    rendered = render(DOMAIN, release="home-dns")
    assert rendered.one("Deployment")["metadata"]["name"] == "home-dns-k8s-gateway"
    assert env(rendered)["K8S_GATEWAY_APEX"] == f"home-dns-k8s-gateway.{NAMESPACE}"


# --- the schema catches mistakes --------------------------------------------------------


@pytest.mark.parametrize(
    "values",
    [
        {**DOMAIN, "domian": "home.example"},  # typo at the top level
        {**DOMAIN, "service": {"tpye": "NodePort"}},  # typo in a nested key
        {**DOMAIN, "service": {"type": "LoadBalancr"}},
        {**DOMAIN, "ttl": "60"},  # wrong type
        {**DOMAIN, "ttl": 7200},  # out of range
        {**DOMAIN, "watchedResources": ["Ingresses"]},  # not a kind we know
        {**DOMAIN, "watchedResources": ["Service", "Service"]},
        {**DOMAIN, "logFormat": "yaml"},
        {**DOMAIN, "reverseZones": "192.168.10.0/24"},  # a list, not a string
        {**DOMAIN, "reverseZones": ["lan.home.example"]},
        {**DOMAIN, "udpWorkers": "2"},
        {**DOMAIN, "udpWorkers": -1},
        {**DOMAIN, "transferAllow": "192.168.1.2"},  # a list, not a string
        {**DOMAIN, "transferAllow": ["pihole.lan"]},
        {**DOMAIN, "transfer": {"tsigSecret": "Not A Name"}},
        {**DOMAIN, "transfer": {"tsig": "dns-tsig"}},
        {**DOMAIN, "filters": {"ingressClass": ["nginx"]}},
        {**DOMAIN, "prometheus": {"monitor": {"enable": True}}},
        {**DOMAIN, "cilium": {"ipPool": {"enabled": True, "blocks": [{"cdir": "192.168.1.53/32"}]}}},
        {**DOMAIN, "service": {"loadBalancerIP": "lb.home.example"}},
        {"domain": ["home.example", "bad domain"]},
        {**DOMAIN, "fallthrough": ["pihole.lan"]},  # an upstream is an IP address
        {**DOMAIN, "fallthrough": "1.1.1.1"},  # a list
        {**DOMAIN, "fallthroughCache": -1},
        {**DOMAIN, "zoneFiles": [{"filename": "home.zone"}]},  # no contents
        {**DOMAIN, "zoneFiles": [{"filename": "../etc/passwd", "contents": "x"}]},
        {**DOMAIN, "zoneFiles": [{"filename": "a.zone", "contents": "x", "origin": "home.example"}]},
        {**DOMAIN, "staticRecords": [{"name": "nas.home.example", "type": "MX", "value": "10 mail"}]},
        {**DOMAIN, "staticRecords": [{"name": "nas.home.example", "type": "A", "value": "192.168.1.2", "ttl": "300"}]},
    ],
    ids=lambda v: yaml.safe_dump({k: v for k, v in v.items() if k != "domain"} or v, default_flow_style=True).strip(),
)
def test_schema_rejects_typos_and_wrong_types(render, values):
    with pytest.raises(helm_sdkpy.InstallError, match="schema"):
        render(values)


# --- zoneFiles and staticRecords ---------------------------------------------------------

ZONE_FILES = {
    **DOMAIN,
    "zoneFiles": [
        {"filename": "home.zone", "domains": "home.example", "contents": "nas A 192.168.1.20\nnote TXT \"a\\059b\"\n"},
        {"filename": "lab.zone", "contents": "$ORIGIN lab.home.example.\nbox A 192.168.2.20\n"},
    ],
}
STATIC = {
    **DOMAIN,
    "staticRecords": [
        {"name": "printer.home.example", "type": "A", "value": "192.168.1.30", "ttl": 300},
        {"name": "_ipp._tcp.home.example", "type": "SRV", "value": "0 5 631 printer.home.example"},
    ],
}


def mounts(rendered) -> tuple[dict, dict]:
    """The container's volume mounts and the pod's volumes, by name."""
    pod = rendered.one("Deployment")["spec"]["template"]["spec"]
    return (
        {m["name"]: m for m in pod["containers"][0].get("volumeMounts", [])},
        {v["name"]: v for v in pod.get("volumes", [])},
    )


def test_zone_files_are_a_mounted_configmap_passed_as_zone_file(render):
    rendered = render(ZONE_FILES)
    zones = rendered.one("ConfigMap", f"{RELEASE}-zones")["data"]
    # `domains` is written as the file's $ORIGIN, as k8s_gateway's file plugin took it.
    assert zones["home.zone"] == "$ORIGIN home.example.\nnas A 192.168.1.20\nnote TXT \"a\\059b\"\n"
    assert zones["lab.zone"] == "$ORIGIN lab.home.example.\nbox A 192.168.2.20\n"
    config = env(rendered)
    assert config["K8S_GATEWAY_ZONE_FILE"] == "/etc/k8s-gateway/zones/home.zone,/etc/k8s-gateway/zones/lab.zone"
    # Beside the cluster, not instead of it.
    assert config["K8S_GATEWAY_WATCH_CLUSTER"] == "true"
    assert "K8S_GATEWAY_MANIFESTS" not in config
    volume_mounts, volumes = mounts(rendered)
    assert volume_mounts == {"zone-files": {"name": "zone-files", "mountPath": "/etc/k8s-gateway/zones", "readOnly": True}}
    assert volumes == {"zone-files": {"name": "zone-files", "configMap": {"name": f"{RELEASE}-zones"}}}


def test_static_records_are_a_dnsendpoint_in_a_mounted_configmap(render):
    rendered = render(STATIC)
    text = rendered.one("ConfigMap", f"{RELEASE}-static")["data"]["static-records.yaml"]
    endpoint = yaml.safe_load(text)
    assert endpoint["apiVersion"] == "externaldns.k8s.io/v1alpha1" and endpoint["kind"] == "DNSEndpoint"
    assert endpoint["spec"]["endpoints"] == [
        {"dnsName": "printer.home.example", "recordType": "A", "targets": ["192.168.1.30"], "recordTTL": 300},
        {"dnsName": "_ipp._tcp.home.example", "recordType": "SRV", "targets": ["0 5 631 printer.home.example"]},
    ]
    config = env(rendered)
    assert config["K8S_GATEWAY_MANIFESTS"] == "/etc/k8s-gateway/static"
    assert config["K8S_GATEWAY_WATCH_CLUSTER"] == "true"
    assert "K8S_GATEWAY_ZONE_FILE" not in config
    volume_mounts, volumes = mounts(rendered)
    assert volume_mounts == {"static-records": {"name": "static-records", "mountPath": "/etc/k8s-gateway/static", "readOnly": True}}
    assert volumes == {"static-records": {"name": "static-records", "configMap": {"name": f"{RELEASE}-static"}}}


def test_without_files_nothing_is_mounted(render):
    rendered = render(DOMAIN)
    assert mounts(rendered) == ({}, {})
    assert [c["metadata"]["name"] for c in rendered.all("ConfigMap")] == [RELEASE]


def test_a_change_to_the_files_reloads_without_a_restart(render):
    """The files are not in the config checksum: the kubelet swaps the mount's ..data link,
    which the binary watches. Adding a file changes K8S_GATEWAY_ZONE_FILE, which restarts."""

    def checksum(values):
        return render(values).one("Deployment")["spec"]["template"]["metadata"]["annotations"]["checksum/config"]

    base = checksum(ZONE_FILES)
    edited = {**ZONE_FILES, "zoneFiles": [{**ZONE_FILES["zoneFiles"][0], "contents": "nas A 192.168.1.21\n"}, ZONE_FILES["zoneFiles"][1]]}
    assert checksum(edited) == base
    assert checksum({**ZONE_FILES, "zoneFiles": ZONE_FILES["zoneFiles"][:1]}) != base
    static = checksum(STATIC)
    assert checksum({**STATIC, "staticRecords": STATIC["staticRecords"][:1]}) == static


@pytest.mark.parametrize(
    "values, message",
    [
        ({**STATIC, "watchedResources": ["Service"]}, "add DNSEndpoint to watchedResources"),
        ({**DOMAIN, "zoneFiles": [{"filename": "a.zone", "contents": "x"}, {"filename": "a.zone", "contents": "y"}]}, "a.zone is given twice"),
    ],
    ids=["static-without-dnsendpoint", "same-file-twice"],
)
def test_files_that_cannot_serve_fail_the_install(render, values, message):
    with pytest.raises(helm_sdkpy.InstallError, match=message):
        render(values)


def test_the_binary_serves_the_rendered_files(render, tmp_path):
    """The rendered zone files and DNSEndpoint, as mounted, read by the binary's `render`."""
    binary = CHART.parent / "target" / "debug" / "k8s-gateway"
    if not binary.exists():
        pytest.skip("no target/debug/k8s-gateway: cargo build first")
    rendered = render({**ZONE_FILES, "staticRecords": STATIC["staticRecords"]})
    zones, static = tmp_path / "zones", tmp_path / "static"
    zones.mkdir()
    static.mkdir()
    for name, text in rendered.one("ConfigMap", f"{RELEASE}-zones")["data"].items():
        (zones / name).write_text(text)
    for name, text in rendered.one("ConfigMap", f"{RELEASE}-static")["data"].items():
        (static / name).write_text(text)
    paths = env(rendered)["K8S_GATEWAY_ZONE_FILE"].replace("/etc/k8s-gateway/zones", str(zones))
    out = subprocess.run(
        [str(binary), "render", "--domain", "home.example", "--manifests", str(static), "--zone-file", paths],
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "WARN" not in out.stderr, out.stderr
    for name in ["nas", "note", "box.lab", "printer", "_ipp._tcp"]:
        assert f"\n{name}.home.example.\t" in out.stdout, out.stdout
    assert '"a;b"' in out.stdout, out.stdout
