"""Notification's emails about one subscription (`notices.py`), each queued exactly as its
template and the sender read it: its key, kind, buyer (ROLE-3), language and context, from its
event and the directory alone — handlers called directly on a real database."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from deploy.local.samples import subscription, unique_csn
from services.notification.directory import save_snapshots
from services.notification.notices import notice_handlers
from services.notification.settings import NotificationSettings
from shared.clock import FixedClock
from shared.contracts.envelope import EventData
from shared.contracts.renewal_events import (
    AutoRenewChanged,
    RenewalTermsUpdated,
    SeatsUpdated,
    SubscriptionLapsed,
)
from shared.db.settings import DatabaseSettings
from shared.messaging.consumer import Delivery, UnitOfWork
from shared.test_clocks import CsnClock
from tests.integration.helpers import connection_to, delivered

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
RENEWAL_DATE = date(2026, 4, 1)


async def queued_for(
    settings: DatabaseSettings, data: EventData, csn: str
) -> tuple[Delivery, dict[str, Any]]:
    """`data`, about `S-<csn>`, handled with that subscription in the directory (in French,
    paid in EUR): the one email it queued, as its row holds it."""
    sid = f"S-{csn}"
    snapshot = subscription(
        sid, csn, renewal_date=RENEWAL_DATE, product_name="Revit", currency="EUR", locale="fr-FR"
    )
    handled = delivered(data, csn, time=NOW)
    async with connection_to(settings) as connection, connection.transaction():
        await save_snapshots(CsnClock(FixedClock(NOW)).today_for)(
            UnitOfWork(connection), [delivered(snapshot, csn, time=NOW)]
        )
        handler = notice_handlers(FixedClock(NOW), NotificationSettings())[type(data)]
        await handler(UnitOfWork(connection), handled)
        rows = await connection.fetch(
            "SELECT notification_key, kind, csn, recipients, locale, subscription_ids, order_id,"
            " next_attempt_at, context::text AS context FROM emails"
        )
    assert len(rows) == 1
    return handled, {**dict(rows[0]), "context": json.loads(rows[0]["context"])}


def expected(
    csn: str, key: str, kind: str, *, about_order: str | None = None, **context: Any
) -> dict[str, Any]:
    """The row of an email about `S-<csn>` (and `about_order`): to its buyer, in the buyer's
    language (ROLE-3), due now, its context naming the product and the subscription besides
    `context`."""
    sid = f"S-{csn}"
    return {
        "notification_key": key,
        "kind": kind,
        "csn": csn,
        "recipients": [f"buyer@{csn.lower()}.example.com"],
        "locale": "fr-FR",
        "subscription_ids": [sid],
        "order_id": about_order,
        "next_attempt_at": NOW,
        "context": {"product_name": "Revit", "subscription_id": sid, **context},
    }


async def test_lapsed_is_keyed_by_its_renewal_date_and_links_to_renew(
    notification_db: DatabaseSettings,
) -> None:
    csn = unique_csn()
    sid = f"S-{csn}"
    event = SubscriptionLapsed(
        subscription_id=sid, renewal_date=RENEWAL_DATE, grace_ends=date(2026, 5, 16)
    )
    _, email = await queued_for(notification_db, event, csn)
    assert email == expected(
        csn,
        f"lapsed:{sid}:2026-04-01",
        "lapsed",
        renewal_date="2026-04-01",
        grace_ends="2026-05-16",
        renew_link=f"https://account.example.com/renew/{sid}",
    )


@pytest.mark.parametrize("by_request", [True, False])
async def test_auto_renew_changed_is_keyed_by_its_request_else_its_event(
    notification_db: DatabaseSettings, by_request: bool
) -> None:
    csn = unique_csn()
    sid = f"S-{csn}"
    request_id = f"R-{csn}" if by_request else None
    event = AutoRenewChanged(request_id=request_id, subscription_id=sid, enabled=False)
    handled, email = await queued_for(notification_db, event, csn)
    cause = request_id or handled.event.id
    assert email == expected(
        csn,
        f"auto_renew_changed:{sid}:{cause}",
        "auto_renew_changed",
        enabled=False,
        renewal_date="2026-04-01",
    )


@pytest.mark.parametrize(
    ("currency", "seats_added", "shown_currency", "shown_added"),
    [("USD", 3, "USD", 3), (None, None, "EUR", "—")],
)
async def test_seats_added_names_its_order_and_falls_back_to_the_subscriptions_currency(
    notification_db: DatabaseSettings,
    currency: str | None,
    seats_added: int | None,
    shown_currency: str,
    shown_added: int | str,
) -> None:
    csn = unique_csn()
    sid = f"S-{csn}"
    event = SeatsUpdated(
        request_id=f"R-{csn}",
        subscription_id=sid,
        seats=5,
        order_id=f"O-{csn}",
        prorated_total=Decimal("120.50"),
        currency=currency,
        seats_added=seats_added,
    )
    _, email = await queued_for(notification_db, event, csn)
    order_id = f"O-{csn}"
    assert email == expected(
        csn,
        f"seats_added:{order_id}",
        "seats_added",
        about_order=order_id,
        order_id=order_id,
        seats=5,
        seats_added=shown_added,
        prorated_total="120.50",
        currency=shown_currency,
    )


async def test_renewal_terms_changed_is_keyed_by_its_request(
    notification_db: DatabaseSettings,
) -> None:
    csn = unique_csn()
    sid = f"S-{csn}"
    event = RenewalTermsUpdated(
        request_id=f"R-{csn}",
        subscription_id=sid,
        term="monthly",
        seats=2,
        effective_on=RENEWAL_DATE,
    )
    _, email = await queued_for(notification_db, event, csn)
    assert email == expected(
        csn,
        f"renewal_terms_changed:R-{csn}",
        "renewal_terms_changed",
        term_code="monthly",
        seats=2,
        effective_on="2026-04-01",
    )
