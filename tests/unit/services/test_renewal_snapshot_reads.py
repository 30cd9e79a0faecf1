"""A stored snapshot read twice in a row (the due-date engine's claim then its announce of
`subscription.state`, settlement's load then its announce) is validated once; a new snapshot
of the subscription is read as itself."""

from __future__ import annotations

from datetime import date
from typing import Any

from deploy.local.samples import subscription
from services.renewal.subscriptions import from_row

RENEWAL_DATE = date(2026, 4, 1)


def stored(revision: int, **overrides: Any) -> dict[str, Any]:
    snapshot = subscription("S-1", "C-1", renewal_date=RENEWAL_DATE, revision=revision, **overrides)
    return {
        "snapshot": snapshot.model_dump_json(),
        "renewal_date": RENEWAL_DATE,
        "term": "annual",
        "seats": 1,
        "auto_renew": True,
        "lapse_announced_for": None,
        "expiry_announced_for": None,
        "next_term": None,
        "next_seats": None,
    }


def test_the_same_stored_text_is_validated_once() -> None:
    claimed = from_row(stored(1))  # type: ignore[arg-type]
    announced = from_row(stored(1))  # type: ignore[arg-type]

    assert announced.snapshot is claimed.snapshot


def test_a_new_snapshot_is_read_as_itself() -> None:
    before = from_row(stored(1))  # type: ignore[arg-type]
    after = from_row(stored(2, payment_valid=False))  # type: ignore[arg-type]

    assert (after.snapshot.revision, after.snapshot.payment_method.valid) == (2, False)
    assert (before.snapshot.revision, before.snapshot.payment_method.valid) == (1, True)
