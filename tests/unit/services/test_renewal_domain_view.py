"""The eligibility view of a stored subscription (services/renewal/subscriptions.py `to_domain`),
built from the snapshot already validated, is the one the eligibility package's own parser
makes of the same fields: every rule (AUTO-1, LIFE-2, LIFE-3, TERM-1, SEAT-2, ROLE-2) reads the
same subscription either way. Its grace (LIFE-3, LIFE-5) is asked of the row itself, unconverted
(#19 plan item 9): the same day as the view's, whatever decides it."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from deploy.local.samples import subscription
from services.renewal.subscriptions import Subscription, to_domain
from shared import eligibility
from shared.contracts.common import Person
from shared.contracts.subscription_events import SubscriptionFlags

RENEWAL_DATE = date(2026, 4, 1)
STORED_DATE = date(2027, 4, 1)  # the product moved it: the view takes the stored one


def parsed(row: Subscription) -> eligibility.Subscription:
    """What the eligibility package reads from the snapshot's fields and the stored ones."""
    fields = row.snapshot.model_dump(mode="json")
    fields.update(
        renewal_date=row.renewal_date.isoformat(),
        term=row.term,
        seats=row.seats,
        auto_renew=row.auto_renew,
        next_term=row.next_term,
        next_seats=row.next_seats,
    )
    return eligibility.subscription_from_dict(fields)


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"status": "trial", "plan": "premium", "payment_type": "invoice", "payment_valid": False},
        {"purchase_method": "partner", "partner_csn": "C-PARTNER", "managed_org": True},
        {
            "flags": SubscriptionFlags(
                maintenance_plan=True,
                third_party_platform=True,
                legacy_system=True,
                retired_product=True,
            )
        },
        {"primary_admin": Person(user_id="U-ADMIN", email="admin@example.com", locale="fr-FR")},
    ],
)
@pytest.mark.parametrize(("next_term", "next_seats"), [(None, None), ("three_year", 2)])
def test_the_view_is_what_the_package_parses_from_the_same_fields(
    overrides: dict[str, Any], next_term: str | None, next_seats: int | None
) -> None:
    snapshot = subscription("S-1", "C-1", renewal_date=RENEWAL_DATE, **overrides)
    row = Subscription(
        snapshot,
        STORED_DATE,
        "monthly",
        7,
        True,
        next_term=next_term,  # type: ignore[arg-type]
        next_seats=next_seats,
    )

    view = to_domain(row)

    assert view == parsed(row)
    assert (view.renewal_date, view.term, view.seats, view.auto_renew) == (
        STORED_DATE,
        "monthly",
        7,
        True,
    )


@pytest.mark.parametrize(
    "overrides",
    [
        {},  # self-service: the 45 days of a manual payment
        {"country": "BR"},  # no self-service: 30 days
        {"purchase_method": "partner", "partner_csn": "C-PARTNER", "country": "BR"},
        {
            "flags": SubscriptionFlags(
                maintenance_plan=False,
                third_party_platform=False,
                legacy_system=False,
                retired_product=True,
            )
        },
    ],
)
@pytest.mark.parametrize(("term", "next_term"), [("annual", None), ("annual", "monthly")])
def test_life_3_the_rows_grace_is_the_views(
    overrides: dict[str, Any], term: str, next_term: str | None
) -> None:
    snapshot = subscription("S-1", "C-1", renewal_date=RENEWAL_DATE, **overrides)
    row = Subscription(snapshot, STORED_DATE, term, 1, True, next_term=next_term)  # type: ignore[arg-type]
    policy = eligibility.Policy()

    assert eligibility.grace_ends(row, policy) == eligibility.grace_ends(to_domain(row), policy)
    assert eligibility.grace_ends(row, eligibility.Policy(grace_days_otherwise=3)) == (
        eligibility.grace_ends(to_domain(row), eligibility.Policy(grace_days_otherwise=3))
    )
