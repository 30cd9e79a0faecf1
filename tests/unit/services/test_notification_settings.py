"""Where the notification service finds its SMTP server: by argument (tests, factories) or by
environment (`make run`, the end-to-end stack)."""

from __future__ import annotations

import pytest

from services.notification.settings import NotificationSettings


def test_the_smtp_port_given_by_name_is_the_one_used() -> None:
    assert NotificationSettings(smtp_port=2525).smtp_port == 2525


@pytest.mark.parametrize("variable", ["RENEWALS_NOTIFICATION_SMTP_PORT", "RENEWALS_SMTP_PORT"])
def test_the_smtp_port_comes_from_the_environment(
    variable: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RENEWALS_NOTIFICATION_SMTP_PORT", raising=False)
    monkeypatch.delenv("RENEWALS_SMTP_PORT", raising=False)
    monkeypatch.setenv(variable, "2626")

    assert NotificationSettings().smtp_port == 2626


def test_the_dev_smtp_server_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RENEWALS_NOTIFICATION_SMTP_PORT", raising=False)
    monkeypatch.delenv("RENEWALS_SMTP_PORT", raising=False)

    assert NotificationSettings().smtp_port == 12525
