"""The container stack's defaults (deploy/docker/stack.env): test clocks off unless a test turns
them on (issue 16, item 5), and no password in the committed settings."""

from __future__ import annotations

from pathlib import Path

from tests.scenarios.stack import TEST_STACK_SETTINGS

STACK_ENV = Path(__file__).resolve().parents[3] / "deploy" / "docker" / "stack.env"


def settings() -> dict[str, str]:
    lines = STACK_ENV.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))


def test_test_clocks_are_off_in_the_container_stack_and_on_for_the_tests_only() -> None:
    assert settings()["RENEWALS_TEST_CLOCKS_ENABLED"] == "false"
    assert TEST_STACK_SETTINGS["RENEWALS_TEST_CLOCKS_ENABLED"] == "true"


def test_the_committed_stack_settings_hold_no_password() -> None:
    assert not [key for key in settings() if "PASSWORD" in key or "SECRET" in key]
