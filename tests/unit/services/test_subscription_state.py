"""Renewal's `subscription.state` builder (services/renewal/state.py): the status as the
product holds it — trial or active upstream, lapsed or expired once the due-date engine
announced it for the current renewal date (LIFE-2, LIFE-3)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from deploy.local.samples import subscription
from services.renewal.state import StateAnnouncer, status_of
from services.renewal.subscriptions import Subscription
from shared.eligibility import Policy

RENEWAL_DATE = date(2026, 4, 1)
EARLIER = RENEWAL_DATE - timedelta(days=365)


def held(status: str = "active", **fields: object) -> Subscription:
    snapshot = subscription("S-1", "C-1", renewal_date=RENEWAL_DATE, status=status)
    return Subscription(snapshot, RENEWAL_DATE, "annual", 1, False, **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("subscription_held", "status"),
    [
        (held(), "active"),
        (held("trial"), "trial"),
        (held(lapse_announced_for=RENEWAL_DATE), "lapsed"),
        (held(lapse_announced_for=RENEWAL_DATE, expiry_announced_for=RENEWAL_DATE), "expired"),
        # Announced for the date before a renewal moved it: active again.
        (held(lapse_announced_for=EARLIER, expiry_announced_for=EARLIER), "active"),
    ],
)
def test_the_status_follows_what_the_engine_announced(
    subscription_held: Subscription, status: str
) -> None:
    assert status_of(subscription_held) == status


def test_the_state_carries_the_next_term_and_grace_from_the_policy() -> None:
    """TERM-1/SEAT-2 what the next renewal buys; WIN-2/LIFE-3 grace by the policy."""
    row = {"open_quote": None, "pending_order": "O-1", "state_version": 4}
    state = StateAnnouncer(Policy(), "/t").state_of(held(next_term="three_year", next_seats=3), row)
    assert (state.next_term, state.next_seats, state.pending_order, state.version) == (
        "three_year",
        3,
        "O-1",
        4,
    )
    assert state.grace_ends == RENEWAL_DATE + timedelta(days=45)
