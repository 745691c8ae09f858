"""Renders the chart with Helm's own engine (helm-sdkpy) and checks objects against schemas.

`render(values)` runs a real `helm install` of chart/ against the stand-in API server of
fakeapi.py and returns the objects Helm sent, parsed. `assert_valid(obj)` checks one object
against the Kubernetes OpenAPI schema of its kind (kubernetes-validate, which ships them),
or, for the CRDs the chart may render, against the JSON schemas in crds/.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import pytest
import yaml

CHART = Path(__file__).resolve().parent.parent
CRDS = Path(__file__).resolve().parent / "crds"

# NB: Helm reads its folders from the environment once, when its library loads: keep it
# out of the user's ~/.config/helm and ~/.cache/helm, and off any real cluster.
_HELM_HOME = tempfile.mkdtemp(prefix="k8s-gateway-chart-helm-")
for _var in ("HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"):
    os.environ[_var] = os.path.join(_HELM_HOME, _var.lower())
os.environ.pop("KUBECONFIG", None)

import helm_sdkpy  # noqa: E402  (after the environment above)
import kubernetes_validate  # noqa: E402

from fakeapi import FakeApiServer  # noqa: E402

# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest with schemas.
KUBE_VERSIONS = ("1.26.0", kubernetes_validate.latest_version())

CRD_SCHEMAS = {
    "ServiceMonitor": "servicemonitor-monitoring-v1.json",
    "PrometheusRule": "prometheusrule-monitoring-v1.json",
    "CiliumLoadBalancerIPPool": "ciliumloadbalancerippool-cilium.json",
    "CiliumL2AnnouncementPolicy": "ciliuml2announcementpolicy-cilium.json",
}

RELEASE = "k8s-gateway"
NAMESPACE = "dns"


@dataclass
class Rendered:
    """What one install rendered: its objects in order, and NOTES.txt."""

    objects: list[dict]
    notes: str

    def all(self, kind: str) -> list[dict]:
        return [o for o in self.objects if o["kind"] == kind]

    def one(self, kind: str, name: str | None = None) -> dict:
        found = [o for o in self.all(kind) if name is None or o["metadata"]["name"] == name]
        assert len(found) == 1, f"expected one {kind} {name or ''}, got {[o['metadata']['name'] for o in found]}"
        return found[0]

    def kinds(self) -> list[str]:
        return sorted(o["kind"] for o in self.objects)


@pytest.fixture(scope="session")
def api():
    server = FakeApiServer()
    kubeconfig = Path(_HELM_HOME) / "kubeconfig"
    kubeconfig.write_text(server.kubeconfig(NAMESPACE))
    yield kubeconfig
    server.close()
    shutil.rmtree(_HELM_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def render(api):
    """`render(values, release=..., namespace=...)` -> Rendered; raises helm_sdkpy.InstallError."""

    seen: dict[str, Rendered] = {}

    def _render(values: dict | None = None, *, release: str = RELEASE, namespace: str = NAMESPACE) -> Rendered:
        # Each install takes about a second (client-go's rate limit on discovery): render
        # each distinct input once. Tests only read what they get.
        key = json.dumps([values, release, namespace], sort_keys=True)
        if key not in seen:
            seen[key] = _install(values, release, namespace)
        return seen[key]

    def _install(values: dict | None, release: str, namespace: str) -> Rendered:
        config = helm_sdkpy.Configuration(namespace=namespace, kubeconfig=str(api))
        result = asyncio.run(helm_sdkpy.Install(config).run(release, str(CHART), values=values or {}, wait=False))
        objects = [o for o in yaml.safe_load_all(result["manifest"]) if o]
        return Rendered(objects=objects, notes=result.get("info", {}).get("notes", ""))

    return _render


@pytest.fixture(scope="session")
def lint():
    """`lint(chart_dir)` -> Helm's lint result: {"Messages": [{"Severity", "Path", ...}], ...}."""

    def _lint(chart: Path) -> dict:
        config = helm_sdkpy.Configuration(namespace=NAMESPACE)
        return asyncio.run(helm_sdkpy.Lint(config).run(str(chart)))

    return _lint


def assert_valid(obj: dict) -> None:
    """Fails unless `obj` is valid for its kind on every Kubernetes version in KUBE_VERSIONS."""
    kind = obj["kind"]
    if kind in CRD_SCHEMAS:
        schema = json.loads((CRDS / CRD_SCHEMAS[kind]).read_text())
        jsonschema.Draft7Validator(schema).validate(obj)
        return
    for version in KUBE_VERSIONS:
        error = None
        try:
            # strict: unknown fields fail too, so a misspelt field in a template is caught.
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            error = f"at {'.'.join(str(p) for p in e.path)}: {e.message}"
        if error:
            pytest.fail(f"{kind}/{obj['metadata']['name']} invalid for Kubernetes {version} {error}")


def need(tool: str) -> str:
    """The path of `tool`; the test is skipped when it is missing, except under CI=true
    (.ci/run installs every tool the tests use), where that is a failure."""
    path = shutil.which(tool)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{tool} is missing on CI: .ci/run installs it")
        pytest.skip(f"{tool} is not installed")
    return path
