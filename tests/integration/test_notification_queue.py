"""The notification queue's batch upsert gives exactly what one upsert per event gives: one email
per notification key, a line per subscription once, nothing added to an email already sent."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import asyncpg
import pytest

from services.notification.directory import save_order
from services.notification.queue import WAIT_FOR_THE_ORDER_TOTAL, renewal_events_handler
from shared.clock import FixedClock
from shared.contracts.billing_events import OrderLine, OrderPlaced
from shared.contracts.envelope import new_event
from shared.contracts.renewal_events import BulkAccepted, SubscriptionRenewed
from shared.db.migrate import migrate
from shared.db.settings import DatabaseSettings
from shared.messaging.consumer import Delivery, UnitOfWork
from shared.samples import buyer_of
from tests.integration.helpers import connection_to, scratch_schema

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
async def notification_db(admin_db: asyncpg.Connection) -> AsyncIterator[DatabaseSettings]:
    async with scratch_schema(admin_db, "notification") as settings:
        await migrate("notification", settings)
        yield settings


def renewed(prefix: str, order: str, subscription: str, *, buyer: bool = True) -> Delivery:
    data = SubscriptionRenewed(
        subscription_id=subscription,
        order_id=f"{prefix}{order}",
        previous_renewal_date=date(2026, 3, 1),
        renewal_date=date(2027, 3, 1),
        term="annual",
        seats=2,
        product_name=f"Product {subscription}",
        buyer=buyer_of(f"CSN{order}", locale="fr-FR") if buyer else None,
    )
    return Delivery(new_event(data, subject=f"CSN{order}", source="/t", time=NOW), record=None)


def scenario(prefix: str) -> list[Delivery]:
    other = BulkAccepted(request_id=f"{prefix}r", count=2)
    return [
        renewed(prefix, "A", "s1"),
        renewed(prefix, "B", "s3"),
        renewed(prefix, "A", "s2"),
        renewed(prefix, "A", "s1"),  # the same line again (another event id): added once
        Delivery(new_event(other, subject="CSNA", source="/t", time=NOW), record=None),
        renewed(prefix, "C", "s4"),  # already queued with s1: s4 is added
        renewed(prefix, "C", "s1"),  # ... s1 is not added again
        renewed(prefix, "D", "s5"),  # already sent: unchanged
        renewed(prefix, "E", "s6", buyer=False),  # nobody to write to
    ]


async def emails(connection: asyncpg.Connection, prefix: str) -> dict[str, Any]:
    rows = await connection.fetch(
        "SELECT notification_key, csn, recipients, locale, context::text AS context,"
        " subscription_ids, status FROM emails WHERE order_id LIKE $1 || '%'",
        prefix,
    )
    found = {}
    for row in rows:
        context = json.loads(row["context"])
        context["order_id"] = context["order_id"].removeprefix(prefix)
        key = row["notification_key"].replace(prefix, "")
        found[key] = {**dict(row), "notification_key": key, "context": context}
    return found


async def test_one_upsert_for_the_batch_equals_one_upsert_per_event(
    notification_db: DatabaseSettings,
) -> None:
    handle = renewal_events_handler(FixedClock(NOW))
    async with connection_to(notification_db) as connection:
        for prefix in ("batch-", "single-"):
            for order, status in (("C", "pending"), ("D", "sent")):
                context = {"order_id": f"{prefix}{order}", "items": [{"subscription_id": "s1"}]}
                await connection.execute(
                    """INSERT INTO emails (notification_key, kind, csn, recipients, locale,
                           context, subscription_ids, order_id, next_attempt_at, created_at,
                           status)
                       VALUES ($1, 'order_confirmation', 'CSN', '{x@example.com}', 'en-US',
                               $2::jsonb, '{s1}', $3, $4, $4, $5)""",
                    f"order_confirmation:{prefix}{order}",
                    json.dumps(context),
                    f"{prefix}{order}",
                    NOW,
                    status,
                )
        async with connection.transaction():
            await handle(UnitOfWork(connection), scenario("batch-"))
        for delivery in scenario("single-"):
            async with connection.transaction():
                await handle(UnitOfWork(connection), [delivery])

        batched = await emails(connection, "batch-")
        one_by_one = await emails(connection, "single-")

    assert batched == one_by_one
    assert sorted(batched) == [f"order_confirmation:{order}" for order in "ABCD"]
    a = batched["order_confirmation:A"]
    assert a["subscription_ids"] == ["s1", "s2"]
    assert [item["subscription_id"] for item in a["context"]["items"]] == ["s1", "s2"]
    assert a["recipients"] == ["buyer@csna.example.com"] and a["locale"] == "fr-FR"
    assert batched["order_confirmation:C"]["subscription_ids"] == ["s1", "s4"]
    assert batched["order_confirmation:D"]["subscription_ids"] == ["s1"]


async def _due_and_total(connection: asyncpg.Connection, order_id: str) -> tuple[Any, Any]:
    row = await connection.fetchrow(
        "SELECT next_attempt_at, context ->> 'total' AS total FROM emails WHERE order_id = $1",
        order_id,
    )
    return row["next_attempt_at"], row["total"]


async def test_note_2_a_confirmation_queued_before_its_order_waits_for_the_total_then_goes(
    notification_db: DatabaseSettings,
) -> None:
    """subscription.renewed and billing's order.placed travel on two topics: when the renewal
    comes first, the confirmation is held back until the order (and its total) arrives."""
    handle = renewal_events_handler(FixedClock(NOW))
    order = OrderPlaced(
        order_id="race-A",
        csn="CSNA",
        purchase_method="direct_online",
        currency="EUR",
        total=Decimal("1260.00"),
        lines=[
            OrderLine(
                subscription_id="s1",
                product_code="ACDLT",
                term="annual",
                seats=3,
                unit_price=Decimal("420.00"),
                amount=Decimal("1260.00"),
            ),
        ],
    )
    async with connection_to(notification_db) as connection:
        async with connection.transaction():
            await handle(UnitOfWork(connection), [renewed("race-", "A", "s1")])
        due, total = await _due_and_total(connection, "race-A")
        assert total is None and due == NOW + WAIT_FOR_THE_ORDER_TOTAL

        async with connection.transaction():
            await save_order(
                UnitOfWork(connection),
                Delivery(new_event(order, subject="CSNA", source="/t", time=NOW), record=None),
            )
        assert await _due_and_total(connection, "race-A") == (NOW, "1260.00")
