"""The alert rules fire on the series that should fire them, and not on healthy ones:
`promtool test rules` runs deploy/monitoring/alerts.test.yml (promtool comes with Debian's
Prometheus, which deploy/local/bootstrap.sh installs)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

MONITORING = Path(__file__).resolve().parents[3] / "deploy" / "monitoring"


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool not found: run deploy/local/bootstrap.sh (installs prometheus)")
    return found


def assert_promtool_passes(*arguments: str) -> None:
    """`promtool <arguments>` in deploy/monitoring exits 0 (its output is the failure's message)."""
    result = subprocess.run(
        [promtool(), *arguments], cwd=MONITORING, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_alert_rules_pass_their_promtool_unit_tests() -> None:
    assert_promtool_passes("test", "rules", "alerts.test.yml")


def test_every_alert_has_a_promtool_test() -> None:
    rules = (MONITORING / "alerts.yml").read_text()
    tests = (MONITORING / "alerts.test.yml").read_text()
    alerts = [line.split(":", 1)[1].strip() for line in rules.splitlines() if "- alert:" in line]
    untested = [name for name in alerts if f"alertname: {name}" not in tests]
    assert alerts and not untested, f"alerts without a promtool test: {untested}"


def test_the_prometheus_configuration_is_valid() -> None:
    assert_promtool_passes("check", "config", "prometheus.yml")
