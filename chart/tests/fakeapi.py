"""A stand-in Kubernetes API server, just enough for Helm's real install code to run.

helm-sdkpy exposes Helm's install action but no `helm template`, and an install talks to a
cluster: it asks /version, discovers the API groups (to map each kind to its resource),
checks that none of the objects exists yet, creates them, and stores the release as a
Secret. This server answers those calls on 127.0.0.1 and nothing else: discovery for the
kinds the chart renders, 404 for every object read, and echoes every create. The objects
Helm rendered then come back from the install as its `manifest`, exactly as Helm would
send them to a real cluster.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

KUBE_VERSION = {"major": "1", "minor": "33", "gitVersion": "v1.33.0", "platform": "linux/amd64"}

# group/version -> [(resource, kind, namespaced)]; "v1" is the core group.
RESOURCES: dict[str, list[tuple[str, str, bool]]] = {
    "v1": [
        ("configmaps", "ConfigMap", True),
        ("namespaces", "Namespace", False),
        ("secrets", "Secret", True),
        ("serviceaccounts", "ServiceAccount", True),
        ("services", "Service", True),
    ],
    "apps/v1": [("deployments", "Deployment", True)],
    "policy/v1": [("poddisruptionbudgets", "PodDisruptionBudget", True)],
    "rbac.authorization.k8s.io/v1": [
        ("clusterrolebindings", "ClusterRoleBinding", False),
        ("clusterroles", "ClusterRole", False),
    ],
    "monitoring.coreos.com/v1": [("servicemonitors", "ServiceMonitor", True), ("prometheusrules", "PrometheusRule", True)],
    "cilium.io/v2": [("ciliumloadbalancerippools", "CiliumLoadBalancerIPPool", False)],
    "cilium.io/v2alpha1": [
        ("ciliuml2announcementpolicies", "CiliumL2AnnouncementPolicy", False),
        ("ciliumloadbalancerippools", "CiliumLoadBalancerIPPool", False),
    ],
}

VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"]


def _groups() -> dict:
    by_group: dict[str, list[str]] = {}
    for gv in RESOURCES:
        if "/" in gv:
            group, version = gv.split("/")
            by_group.setdefault(group, []).append(version)
    groups = []
    for group, versions in sorted(by_group.items()):
        entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in sorted(versions)]
        groups.append({"name": group, "versions": entries, "preferredVersion": entries[0]})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def _resource_list(gv: str) -> dict:
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": gv,
        "resources": [
            {"name": name, "singularName": kind.lower(), "namespaced": namespaced, "kind": kind, "verbs": VERBS}
            for name, kind, namespaced in RESOURCES[gv]
        ],
    }


def _not_found(path: str) -> dict:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": f"{path} not found",
        "reason": "NotFound",
        "code": 404,
    }


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:  # quiet: pytest shows failures, not traffic
        pass

    def _reply(self, code: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/version":
            return self._reply(200, KUBE_VERSION)
        if path == "/api":
            # Plain (not aggregated) discovery: client-go falls back to one call per group.
            return self._reply(200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []})
        if path == "/apis":
            return self._reply(200, _groups())
        gv = "v1" if path == "/api/v1" else path.removeprefix("/apis/")
        if gv in RESOURCES and (path == "/api/v1" or path.count("/") == 3):
            return self._reply(200, _resource_list(gv))
        if path.endswith("/secrets"):
            # Helm's release history: none yet.
            return self._reply(200, {"kind": "SecretList", "apiVersion": "v1", "metadata": {}, "items": []})
        return self._reply(404, _not_found(path))

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        code = 201 if self.command == "POST" else 200
        if body.startswith(b"k8s\x00"):
            # NB: Helm stores its release Secret in protobuf; a stub is all it reads back.
            return self._reply(code, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "release"}})
        return self._reply(code, json.loads(body))

    do_PUT = do_POST
    do_PATCH = do_POST


class FakeApiServer:
    """Serves on 127.0.0.1, on a port the OS picks, until `close()`."""

    def __init__(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def kubeconfig(self, namespace: str) -> str:
        return (
            "apiVersion: v1\nkind: Config\n"
            f"clusters: [{{name: fake, cluster: {{server: '{self.url}'}}}}]\n"
            "users: [{name: fake, user: {token: fake}}]\n"
            f"contexts: [{{name: fake, context: {{cluster: fake, user: fake, namespace: {namespace}}}}}]\n"
            "current-context: fake\n"
        )

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
