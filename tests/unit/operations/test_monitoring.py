"""deploy/monitoring names only metrics the services define, and scrapes the launcher's ports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

import shared.plumbing.metrics  # noqa: F401  (registers the metrics)
from services.processes import SERVICES

MONITORING = Path(__file__).resolve().parents[3] / "deploy" / "monitoring"
SUFFIXES = ("_total", "_bucket", "_count", "_sum", "_created")


def defined_metrics() -> set[str]:
    return {m.name for m in REGISTRY.collect() if m.name.startswith("renewals_")}


def base_name(name: str) -> str:
    for suffix in SUFFIXES:
        if name.endswith(suffix) and name.removesuffix(suffix) in defined_metrics():
            return name.removesuffix(suffix)
    return name


@pytest.mark.parametrize(
    "path", ["alerts.yml", "prometheus.yml", "grafana/renewals-dashboard.json"]
)
def test_every_metric_named_is_defined(path: str) -> None:
    named = set(re.findall(r"\brenewals_[a-z_]+", (MONITORING / path).read_text()))
    unknown = {n for n in named if base_name(n) not in defined_metrics()}
    assert not unknown, f"{path} names metrics no service defines: {sorted(unknown)}"


def test_the_dashboard_is_json_with_one_query_per_panel() -> None:
    dashboard = json.loads((MONITORING / "grafana" / "renewals-dashboard.json").read_text())
    assert dashboard["panels"] and all(len(p["targets"]) == 1 for p in dashboard["panels"])


def test_prometheus_scrapes_every_service_of_the_launcher() -> None:
    text = (MONITORING / "prometheus.yml").read_text()
    for spec in SERVICES:
        assert f'"127.0.0.1:{spec.http_port}"' in text and f"process: {spec.name}" in text


def test_every_alert_has_a_summary() -> None:
    text = (MONITORING / "alerts.yml").read_text()
    assert text.count("- alert:") == text.count("summary:") >= 5
    for needed in ("DeadLettersGrowing", "ConsumerLagRising", "OutboxStuck", "PaymentFailure"):
        assert needed in text
