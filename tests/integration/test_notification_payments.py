"""Notification's payment emails from the payment event alone (issue 17 item 3, issue 19 item 3):
no `order.placed` seen, no orders kept — handlers called directly on a real database."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import asyncpg
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
from shared.messaging.consumer import Delivery, PermanentError, UnitOfWork
from shared.test_clocks import CsnClock
from tests.integration.helpers import connection_to, delivered

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def delivery(data: EventData, subject: str) -> Delivery:
    return delivered(data, subject, time=NOW)


async def given_directory(connection: asyncpg.Connection, csn: str) -> list[str]:
    """Two subscriptions of `csn` in the directory (`subscription.upserted`), paid by bank
    transfer; nothing of billing's."""
    ids = [f"S1-{csn}", f"S2-{csn}"]
    snapshots = [
        subscription(
            sid,
            csn,
            renewal_date=date(2026, 4, 1),
            product_name=name,
            payment_type="bank_transfer",
            locale="fr-FR",
        )
        for sid, name in zip(ids, ("AutoCAD LT", "Revit"), strict=True)
    ]
    async with connection.transaction():
        await save_snapshots(CsnClock(FixedClock(NOW)).today_for)(
            UnitOfWork(connection), [delivery(s, csn) for s in snapshots]
        )
    return ids


async def handle(connection: asyncpg.Connection, *deliveries: Delivery) -> None:
    handler = billing_events_handler(notice_handlers(FixedClock(NOW), NotificationSettings()))
    async with connection.transaction():
        await handler(UnitOfWork(connection), list(deliveries))


async def queued(connection: asyncpg.Connection, order_id: str) -> list[dict[str, Any]]:
    rows = await connection.fetch(
        "SELECT notification_key, kind, csn, recipients, locale, subscription_ids,"
        " context::text AS context FROM emails WHERE order_id = $1",
        order_id,
    )
    return [{**dict(row), "context": json.loads(row["context"])} for row in rows]


async def test_issue_17_3_a_payment_failed_with_no_order_placed_ever_seen_is_emailed(
    notification_db: DatabaseSettings,
) -> None:
    csn = unique_csn()
    async with connection_to(notification_db) as connection:
        ids = await given_directory(connection, csn)
        failed = PaymentFailed(
            order_id=f"ORD-{csn}",
            reason="card declined",
            next_retry_on=date(2026, 3, 4),
            csn=csn,
            subscription_ids=ids,
            amount=Decimal("1260.00"),
            currency="EUR",
        )
        await handle(connection, delivery(failed, csn))
        [email] = await queued(connection, failed.order_id)
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
    async with connection_to(notification_db) as connection:
        ids = await given_directory(connection, csn)
        awaiting = PaymentAwaitingManual(
            order_id=f"ORD-{csn}",
            amount=Decimal("99.00"),
            currency="USD",
            payment_reference="SIM-1",
            pay_by=date(2026, 3, 15),
            csn=csn,
            subscription_ids=ids[:1],
        )
        await handle(connection, delivery(awaiting, csn))
        [email] = await queued(connection, awaiting.order_id)

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
    async with connection_to(notification_db) as connection:
        ids = await given_directory(connection, csn)
        refused = PaymentFailed(
            order_id=f"REFUSED-{csn}",
            reason="order refused: NO_LINES",
            next_retry_on=None,
            refusals=["NO_LINES"],
            csn=csn,
            subscription_ids=ids,
        )
        awaiting = PaymentAwaitingManual(
            order_id=f"ORD-{csn}",
            amount=Decimal("99.00"),
            currency="USD",
            payment_reference="SIM-2",
            pay_by=date(2026, 3, 15),
            csn=csn,
            subscription_ids=ids,
        )
        await handle(connection, delivery(refused, csn), delivery(awaiting, csn))
        assert len(await queued(connection, awaiting.order_id)) == 1
        assert await queued(connection, refused.order_id) == []


async def test_a_payment_event_from_before_billing_named_its_order_is_a_dead_letter(
    notification_db: DatabaseSettings,
) -> None:
    """One published before billing named the order's subscriptions cannot be addressed: it is
    dead-lettered with the reason, for an operator, rather than lost."""
    csn = unique_csn()
    async with connection_to(notification_db) as connection:
        await given_directory(connection, csn)
        old = PaymentFailed(order_id=f"ORD-{csn}", reason="declined", next_retry_on=None)
        with pytest.raises(PermanentError, match="names no subscriptions"):
            await handle(connection, delivery(old, csn))
