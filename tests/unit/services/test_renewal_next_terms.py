"""TERM-1, SEAT-2 decided once: renewal's stored row buys at its next renewal what the rules
say its eligibility view buys (services/renewal/subscriptions.py delegates to the package)."""

from __future__ import annotations

from datetime import date

import pytest

from deploy.local.samples import subscription
from services.renewal.subscriptions import Subscription, to_domain

RENEWAL_DATE = date(2026, 4, 1)


@pytest.mark.parametrize(
    ("next_term", "next_seats", "bought"),
    [
        (None, None, ("annual", 5)),  # nothing recorded: the running term and seats
        ("three_year", None, ("three_year", 5)),  # TERM-1
        (None, 2, ("annual", 2)),  # SEAT-2, down
        ("monthly", 9, ("monthly", 9)),
    ],
)
def test_the_row_and_the_rules_buy_the_same_next_renewal(
    next_term: str | None, next_seats: int | None, bought: tuple[str, int]
) -> None:
    snapshot = subscription("S-1", "C-1", renewal_date=RENEWAL_DATE)
    row = Subscription(
        snapshot,
        RENEWAL_DATE,
        "annual",
        5,
        False,
        next_term=next_term,  # type: ignore[arg-type]
        next_seats=next_seats,
    )
    domain = to_domain(row)
    assert (row.renewal_term, row.renewal_seats) == bought
    assert (domain.renewal_term, domain.renewal_seats) == bought
