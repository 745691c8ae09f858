"""The PrometheusRule: the five alerts of docs/metrics.md, valid for promtool, firing on the
series k8s-gateway exports under the job the ServiceMonitor scrapes it as."""

from __future__ import annotations

import copy
import subprocess

import yaml

from conftest import RELEASE, need
from test_chart import DOMAIN

ALERTS = ["K8sGatewayNoZone", "K8sGatewaySourceNotSynced", "K8sGatewayObjectsSkipped", "K8sGatewaySlowAnswers", "K8sGatewayAbsent"]
ENABLED = {**DOMAIN, "prometheus": {"monitor": {"enabled": True}}, "prometheusRule": {"enabled": True}}
# The job label Prometheus gives our series: the ServiceMonitor scrapes the metrics Service.
JOB = f'job="{RELEASE}-metrics"'


def rules(rendered) -> list[dict]:
    groups = rendered.one("PrometheusRule")["spec"]["groups"]
    return [rule for group in groups for rule in group["rules"]]


def promtool(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([need("promtool"), *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_off_by_default(render):
    assert not render(DOMAIN).all("PrometheusRule")


def test_five_alerts_pass_promtool_check_rules(render, tmp_path):
    rendered = render(ENABLED)
    assert [r["alert"] for r in rules(rendered)] == ALERTS
    assert all(JOB in r["expr"] for r in rules(rendered)), rules(rendered)
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rendered.one("PrometheusRule")["spec"]))
    out = promtool("check", "rules", "rules.yaml", cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS: 5 rules found" in out.stdout, out.stdout


def test_thresholds_durations_and_switches_are_values(render):
    values = copy.deepcopy(ENABLED)
    values["prometheusRule"].update(
        selector='namespace="dns", service="kgw"',
        alerts={
            "noZone": {"enabled": False, "rate": 0, "for": "5m", "severity": "critical"},
            "sourceNotSynced": {"enabled": True, "states": "forbidden", "for": "1h", "severity": "info"},
            "objectsSkipped": {"enabled": True, "reasons": "no_address", "threshold": 3, "for": "2h", "severity": "warning"},
            "slowAnswers": {"enabled": True, "p99Seconds": 0.05, "for": "15m", "severity": "warning"},
            "absent": {"enabled": False, "for": "5m", "severity": "critical"},
        },
    )
    by_name = {r["alert"]: r for r in rules(render(values))}
    assert list(by_name) == ["K8sGatewaySourceNotSynced", "K8sGatewayObjectsSkipped", "K8sGatewaySlowAnswers"]
    assert by_name["K8sGatewaySourceNotSynced"]["expr"] == 'k8s_gateway_source_state{namespace="dns", service="kgw", state=~"forbidden"} == 1'
    assert by_name["K8sGatewaySourceNotSynced"]["for"] == "1h"
    assert by_name["K8sGatewaySourceNotSynced"]["labels"] == {"severity": "info"}
    assert by_name["K8sGatewayObjectsSkipped"]["expr"].endswith('reason=~"no_address"}) > 3')
    assert by_name["K8sGatewaySlowAnswers"]["expr"].endswith(" > 0.05")
    assert by_name["K8sGatewaySlowAnswers"]["for"] == "15m"


def test_alerts_fire_on_the_series_we_export(render, tmp_path):
    """promtool's rule unit tests: each alert fires on the series the server exports, after
    its `for:` and not before."""
    spec = copy.deepcopy(render(ENABLED).one("PrometheusRule")["spec"])
    for group in spec["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations")  # templated text; the labels say which alert fired
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(spec))
    job = f"{RELEASE}-metrics"
    build = f'coredns_build_info{{{JOB}, version="0.1.0", revision="x", goversion="none (Rust)"}}'
    buckets = [0.000025 * 2**i for i in range(16)]
    # Half of all answers take ~0.2 s: the p99 lands far above 10 ms.
    slow = [
        {"series": f'coredns_dns_request_duration_seconds_bucket{{{JOB}, server="dns://:1053", zone="home.example.", type="A", le="{le}"}}',
         "values": f"0+{50 if le < 0.1 else 100}x30"}
        for le in buckets
    ] + [{"series": f'coredns_dns_request_duration_seconds_bucket{{{JOB}, server="dns://:1053", zone="home.example.", type="A", le="+Inf"}}', "values": "0+100x30"}]
    tests = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": build, "values": "1x30"},
                    {"series": f'coredns_dns_responses_total{{{JOB}, instance="10.0.0.9:8080", server="dns://:1053", zone="home.example.", rcode="SERVFAIL"}}', "values": "0+10x30"},
                    {"series": f'k8s_gateway_zone_builds_total{{{JOB}, instance="10.0.0.9:8080"}}', "values": "0x30"},
                    # A zone is built, and SERVFAIL only from --fallthrough upstreams: not "no zone".
                    {"series": f'coredns_dns_responses_total{{{JOB}, instance="10.0.0.8:8080", server="dns://:1053", zone="home.example.", rcode="SERVFAIL"}}', "values": "0+10x30"},
                    {"series": f'k8s_gateway_zone_builds_total{{{JOB}, instance="10.0.0.8:8080"}}', "values": "1x30"},
                    {"series": f'k8s_gateway_source_state{{{JOB}, kind="HTTPRoute", state="forbidden"}}', "values": "1x30"},
                    {"series": f'k8s_gateway_source_state{{{JOB}, kind="VirtualService", state="not_served"}}', "values": "1x30"},
                    {"series": f'k8s_gateway_skipped_objects{{{JOB}, kind="Service", reason="no_address"}}', "values": "2x40"},
                    {"series": f'k8s_gateway_skipped_objects{{{JOB}, kind="Ingress", reason="class_filtered"}}', "values": "5x40"},
                    *slow,
                ],
                "alert_rule_test": [
                    # Before `for:` has passed, nothing fires.
                    {"eval_time": "3m", "alertname": "K8sGatewayNoZone", "exp_alerts": []},
                    {"eval_time": "8m", "alertname": "K8sGatewayNoZone", "exp_alerts": [{"exp_labels": {"severity": "critical", "job": job, "instance": "10.0.0.9:8080"}}]},
                    # forbidden fires; not_served (a CRD not installed) does not.
                    {"eval_time": "15m", "alertname": "K8sGatewaySourceNotSynced", "exp_alerts": [
                        {"exp_labels": {"severity": "warning", "job": job, "kind": "HTTPRoute", "state": "forbidden"}}]},
                    # no_address counts; class_filtered (a filter you set) does not.
                    {"eval_time": "25m", "alertname": "K8sGatewayObjectsSkipped", "exp_alerts": []},
                    {"eval_time": "35m", "alertname": "K8sGatewayObjectsSkipped", "exp_alerts": [
                        {"exp_labels": {"severity": "warning", "job": job, "kind": "Service", "reason": "no_address"}}]},
                    {"eval_time": "20m", "alertname": "K8sGatewaySlowAnswers", "exp_alerts": [{"exp_labels": {"severity": "warning", "job": job}}]},
                    # Scraped: not absent.
                    {"eval_time": "20m", "alertname": "K8sGatewayAbsent", "exp_alerts": []},
                ],
            },
            {
                # Nothing scraped at all.
                "interval": "1m",
                "input_series": [],
                "alert_rule_test": [{"eval_time": "10m", "alertname": "K8sGatewayAbsent", "exp_alerts": [{"exp_labels": {"severity": "critical", "job": job}}]}],
            },
        ],
    }
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(tests, sort_keys=False))
    out = promtool("test", "rules", "tests.yaml", cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
