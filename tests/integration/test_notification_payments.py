"""Notification's payment emails from the payment event alone (issue 17 item 3, issue 19 item 3):
no `order.placed` seen, no orders kept — handlers called directly on a real database."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from deploy.local.samples import subscription, unique_csn
from services.notification.app import billing_events_handler
from services.notification.directory import save_snapshots
from services.notification.notices import notice_handlers
from services.notification.settings import NotificationSettings
from shared.clock import FixedClock
from shared.contracts.billing_events import PaymentAwaitingManual, PaymentFailed
from shared.contracts.envelope import EventData
from shared.db.settings import DatabaseSettings
from shared.messaging.consumer import PermanentError
from shared.test_clocks import CsnClock
from tests.integration.helpers import connection_to, delivered, handle_in_transaction

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def subscriptions_of(csn: str) -> list[str]:
    """The two subscriptions `emailed` puts in the directory for `csn`."""
    return [f"S1-{csn}", f"S2-{csn}"]


async def emailed(
    settings: DatabaseSettings, csn: str, *events: EventData
) -> dict[str, list[dict[str, Any]]]:
    """`events` about `csn` handled as one batch of `billing.events`, with its two subscriptions
    in the directory (`subscription.upserted`: AutoCAD LT and Revit, paid by bank transfer, in
    French) and nothing of billing's: the emails queued, by order, as their rows hold them."""
    snapshots = [
        subscription(
            sid,
            csn,
            renewal_date=date(2026, 4, 1),
            product_name=name,
            payment_type="bank_transfer",
            locale="fr-FR",
        )
        for sid, name in zip(subscriptions_of(csn), ("AutoCAD LT", "Revit"), strict=True)
    ]
    await handle_in_transaction(
        settings,
        save_snapshots(CsnClock(FixedClock(NOW)).today_for),
        [delivered(s, csn, time=NOW) for s in snapshots],
    )
    await handle_in_transaction(
        settings,
        billing_events_handler(notice_handlers(FixedClock(NOW), NotificationSettings())),
        [delivered(e, csn, time=NOW) for e in events],
    )
    async with connection_to(settings) as connection:
        rows = await connection.fetch(
            "SELECT order_id, notification_key, kind, csn, recipients, locale, subscription_ids,"
            " context::text AS context FROM emails"
        )
    by_order: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_order[row["order_id"]].append({**dict(row), "context": json.loads(row["context"])})
    return by_order


def awaiting_manual(csn: str, ids: list[str], reference: str) -> PaymentAwaitingManual:
    """Billing's bank transfer of 99.00 USD for `ids`, to be paid by 15 March."""
    return PaymentAwaitingManual(
        order_id=f"ORD-{csn}",
        amount=Decimal("99.00"),
        currency="USD",
        payment_reference=reference,
        pay_by=date(2026, 3, 15),
        csn=csn,
        subscription_ids=ids,
    )


async def test_issue_17_3_a_payment_failed_with_no_order_placed_ever_seen_is_emailed(
    notification_db: DatabaseSettings,
) -> None:
    csn = unique_csn()
    ids = subscriptions_of(csn)
    failed = PaymentFailed(
        order_id=f"ORD-{csn}",
        reason="card declined",
        next_retry_on=date(2026, 3, 4),
        csn=csn,
        subscription_ids=ids,
        amount=Decimal("1260.00"),
        currency="EUR",
    )
    [email] = (await emailed(notification_db, csn, failed))[failed.order_id]
    async with connection_to(notification_db) as connection:
        # Notification keeps no orders: the email came from the event alone.
        assert await connection.fetchval("SELECT to_regclass('orders')") is None

    assert (email["notification_key"], email["kind"]) == (
        f"payment_failed:{failed.order_id}",
        "payment_failed",
    )
    assert (email["csn"], email["locale"]) == (csn, "fr-FR")
    assert email["recipients"] == [f"buyer@{csn.lower()}.example.com"]  # ROLE-3
    assert email["subscription_ids"] == ids
    context = email["context"]
    assert (context["amount"], context["currency"]) == ("1260.00", "EUR")
    assert context["product_name"] == "AutoCAD LT, Revit"
    assert (context["reason"], context["next_retry_on"]) == ("card declined", "2026-03-04")


async def test_issue_17_3_an_awaiting_manual_payment_is_emailed_from_its_event(
    notification_db: DatabaseSettings,
) -> None:
    csn = unique_csn()
    ids = subscriptions_of(csn)
    awaiting = awaiting_manual(csn, ids[:1], "SIM-1")
    [email] = (await emailed(notification_db, csn, awaiting))[awaiting.order_id]

    assert email["kind"] == "awaiting_manual_payment"
    assert email["subscription_ids"] == ids[:1]
    context = email["context"]
    assert (context["amount"], context["currency"]) == ("99.00", "USD")
    assert (context["payment_reference"], context["pay_by"]) == ("SIM-1", "2026-03-15")
    assert context["payment_method"] == "bank_transfer"


async def test_a_refused_order_gets_no_email(notification_db: DatabaseSettings) -> None:
    """A `payment.failed` with `refusals` (billing never placed the order): nothing charged,
    nothing to tell; the awaiting payment beside it in the batch is the positive signal that
    the batch was handled."""
    csn = unique_csn()
    ids = subscriptions_of(csn)
    refused = PaymentFailed(
        order_id=f"REFUSED-{csn}",
        reason="order refused: NO_LINES",
        next_retry_on=None,
        refusals=["NO_LINES"],
        csn=csn,
        subscription_ids=ids,
    )
    awaiting = awaiting_manual(csn, ids, "SIM-2")
    emails = await emailed(notification_db, csn, refused, awaiting)
    assert len(emails[awaiting.order_id]) == 1
    assert list(emails) == [awaiting.order_id]  # none about the refused order


async def test_a_payment_event_from_before_billing_named_its_order_is_a_dead_letter(
    notification_db: DatabaseSettings,
) -> None:
    """One published before billing named the order's subscriptions cannot be addressed: it is
    dead-lettered with the reason, for an operator, rather than lost."""
    csn = unique_csn()
    old = PaymentFailed(order_id=f"ORD-{csn}", reason="declined", next_retry_on=None)
    with pytest.raises(PermanentError, match="names no subscriptions"):
        await emailed(notification_db, csn, old)
