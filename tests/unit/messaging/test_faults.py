"""Every fault point (shared/messaging/faults.py) is listed in the module's docstring, for the
fault suite to find, and is hit somewhere in the code: a point nobody hits would kill nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.messaging import faults

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
