"""The Prometheus that `make infra-up` (and so `make run` and `make test`) starts loads the
project's configuration: every alert rule of deploy/monitoring/alerts.yml, and one scrape target
per service of the launcher."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from services.operations.prometheus_targets import active_targets, prometheus_url
from services.processes import SERVICES

ALERTS = Path(__file__).resolve().parents[3] / "deploy" / "monitoring" / "alerts.yml"


def api(path: str) -> Any:
    try:
        with urllib.request.urlopen(f"{prometheus_url()}{path}", timeout=5) as response:
            return json.load(response)["data"]
    except OSError as error:
        pytest.fail(
            f"Prometheus does not answer at {prometheus_url()}: run `make infra-up` ({error})"
        )


def test_prometheus_evaluates_every_alert_rule_of_the_project() -> None:
    loaded = {rule["name"] for group in api("/api/v1/rules")["groups"] for rule in group["rules"]}
    wanted = {
        line.split(":", 1)[1].strip()
        for line in ALERTS.read_text().splitlines()
        if "- alert:" in line
    }
    assert wanted and wanted <= loaded


def test_prometheus_scrapes_one_target_per_service() -> None:
    processes = {t["labels"]["process"] for t in active_targets(prometheus_url())}
    assert processes == {spec.name for spec in SERVICES}
