"""Every fault point (shared/plumbing/faults.py) is listed in the module's docstring, for the
fault suite to find, and is hit somewhere in the code: a point nobody hits would kill nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.plumbing import faults

ROOT = Path(__file__).resolve().parents[3]
POINTS = {
    name: value for name, value in vars(faults).items() if name.isupper() and isinstance(value, str)
}


def test_there_are_fault_points_for_the_loops() -> None:
    assert {
        "engine_before_commit",
        "engine_after_commit",
        "reminders_after_commit",
        "automatic_quotes_after_commit",
        "quote_expiry_after_commit",
        "outbox_after_publish_before_delete",
    } <= set(POINTS.values())


@pytest.mark.parametrize("constant", sorted(POINTS))
def test_a_fault_point_is_documented_and_hit(constant: str) -> None:
    assert f"`{POINTS[constant]}`" in (faults.__doc__ or "")
    code = [
        path.read_text()
        for folder in ("services", "shared")
        for path in (ROOT / folder).rglob("*.py")
        if path.name != "faults.py"
    ]
    assert any(f"hit({constant})" in text for text in code), f"nobody hits {constant}"


def test_an_armed_point_fires_only_after_its_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fault suite arms a point to fire later in its run (RENEWALS_FAULTS_AFTER)."""
    kills: list[int] = []
    monkeypatch.setattr(faults.os, "kill", lambda pid, signal: kills.append(signal))
    now = [1000.0]
    monkeypatch.setattr(faults.time, "monotonic", lambda: now[0])
    points = faults.FaultPoints(
        {faults.AFTER_DB_COMMIT, faults.SENDER_MID_CLAIM}, after={faults.AFTER_DB_COMMIT: 30}
    )
    points.hit(faults.AFTER_DB_COMMIT)
    assert kills == []
    points.hit(faults.SENDER_MID_CLAIM)  # armed with no delay: at once
    assert len(kills) == 1
    now[0] += 30
    points.hit(faults.OUTBOX_AFTER_PUBLISH_BEFORE_DELETE)  # not armed
    assert len(kills) == 1
    points.hit(faults.AFTER_DB_COMMIT)
    assert kills == [faults.signal.SIGKILL] * 2


def test_the_delays_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.messaging.settings import MessagingSettings

    monkeypatch.setenv("RENEWALS_FAULTS", '["after_db_commit"]')
    monkeypatch.setenv("RENEWALS_FAULTS_AFTER", '{"after_db_commit": 12.5}')
    settings = MessagingSettings()
    assert settings.faults == {"after_db_commit"}
    assert settings.faults_after == {"after_db_commit": 12.5}
