"""The notification queue's batch upsert gives exactly what one upsert per event gives: one email
per notification key, a line per subscription once, nothing added to an email already sent; an
order confirmation is made from `subscription.renewed` alone, with the order's total, and is due
once it has every line of its order (issue 17 item 3, issue 19 item 1)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import asyncpg

from deploy.local.samples import buyer_of
from services.notification.queue import renewal_events_handler
from shared.clock import FixedClock
from shared.contracts.envelope import new_event
from shared.contracts.renewal_events import BulkAccepted, SubscriptionRenewed
from shared.db.settings import DatabaseSettings
from shared.messaging.consumer import Delivery, UnitOfWork
from tests.integration.helpers import connection_to

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LATER = datetime(2026, 3, 1, 12, 5, tzinfo=UTC)


def renewed(
    prefix: str,
    order: str,
    subscription: str,
    *,
    buyer: bool = True,
    total: str | None = "840.00",
    renewed_in_order: int | None = 1,
) -> Delivery:
    data = SubscriptionRenewed(
        subscription_id=subscription,
        order_id=f"{prefix}{order}",
        previous_renewal_date=date(2026, 3, 1),
        renewal_date=date(2027, 3, 1),
        term="annual",
        seats=2,
        product_name=f"Product {subscription}",
        buyer=buyer_of(f"CSN{order}", locale="fr-FR") if buyer else None,
        order_total=None if total is None else Decimal(total),
        currency=None if total is None else "EUR",
        renewed_in_order=renewed_in_order,
    )
    return Delivery(new_event(data, subject=f"CSN{order}", source="/t", time=NOW), record=None)


def scenario(prefix: str) -> list[Delivery]:
    other = BulkAccepted(request_id=f"{prefix}r", count=2)
    return [
        renewed(prefix, "A", "s1", renewed_in_order=2),
        renewed(prefix, "B", "s3"),
        renewed(prefix, "A", "s2", renewed_in_order=2),
        renewed(prefix, "A", "s1", renewed_in_order=2),  # the same line again: added once
        Delivery(new_event(other, subject="CSNA", source="/t", time=NOW), record=None),
        renewed(prefix, "C", "s4"),  # already queued with s1: s4 is added
        renewed(prefix, "C", "s1"),  # ... s1 is not added again
        renewed(prefix, "D", "s5"),  # already sent: unchanged
        renewed(prefix, "E", "s6", buyer=False),  # nobody to write to
    ]


async def emails(connection: asyncpg.Connection, prefix: str) -> dict[str, Any]:
    rows = await connection.fetch(
        "SELECT notification_key, csn, recipients, locale, context::text AS context,"
        " subscription_ids, status, next_attempt_at FROM emails WHERE order_id LIKE $1 || '%'",
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


async def queued(connection: asyncpg.Connection, order_id: str) -> asyncpg.Record:
    row = await connection.fetchrow(
        "SELECT next_attempt_at, context::text AS context, subscription_ids FROM emails"
        " WHERE order_id = $1",
        order_id,
    )
    assert row is not None
    return row


async def claimable(connection: asyncpg.Connection, order_id: str, now: datetime) -> bool:
    """Whether a sender's claim (services/notification/leases.py) would take it at `now`."""
    return bool(
        await connection.fetchval(
            "SELECT count(*) FROM emails WHERE order_id = $1 AND status = 'pending'"
            " AND GREATEST(next_attempt_at, lease_until) <= $2",
            order_id,
            now,
        )
    )


async def test_issue_17_3_a_confirmation_carries_its_total_and_is_due_at_once(
    notification_db: DatabaseSettings,
) -> None:
    """NOTE-2, MAN-3: `subscription.renewed` carries the order's total; no other topic is
    waited for — nothing of billing's has reached this schema."""
    handle = renewal_events_handler(FixedClock(NOW))
    async with connection_to(notification_db) as connection:
        async with connection.transaction():
            await handle(UnitOfWork(connection), [renewed("one-", "A", "s1", total="1260.00")])
        row = await queued(connection, "one-A")
        assert await connection.fetchval("SELECT to_regclass('orders')") is None  # none kept
    context = json.loads(row["context"])
    assert (context["total"], context["currency"]) == ("1260.00", "EUR")
    assert row["next_attempt_at"] == NOW


async def test_man_3_an_order_split_over_batches_is_sent_only_with_every_line(
    notification_db: DatabaseSettings,
) -> None:
    """An order that renewed three subscriptions, its events in two consumer batches: after
    the first the confirmation is queued but no sender can claim it (it would go out with two
    lines of three); the batch with its last line makes it due, with all three and the total."""
    async with connection_to(notification_db) as connection:
        async with connection.transaction():
            await renewal_events_handler(FixedClock(NOW))(
                UnitOfWork(connection),
                [renewed("split-", "A", sid, renewed_in_order=3) for sid in ("s1", "s2")],
            )
        assert not await claimable(connection, "split-A", LATER)
        async with connection.transaction():  # the first batch seen again changes nothing
            await renewal_events_handler(FixedClock(NOW))(
                UnitOfWork(connection), [renewed("split-", "A", "s2", renewed_in_order=3)]
            )
        assert not await claimable(connection, "split-A", LATER)
        async with connection.transaction():
            await renewal_events_handler(FixedClock(LATER))(
                UnitOfWork(connection), [renewed("split-", "A", "s3", renewed_in_order=3)]
            )
        row = await queued(connection, "split-A")
        assert await claimable(connection, "split-A", LATER)
    context = json.loads(row["context"])
    assert row["next_attempt_at"] == LATER
    assert row["subscription_ids"] == ["s1", "s2", "s3"]
    assert [item["subscription_id"] for item in context["items"]] == ["s1", "s2", "s3"]
    assert context["total"] == "840.00"


async def test_an_event_announced_before_the_order_fields_existed_is_confirmed_at_once(
    notification_db: DatabaseSettings,
) -> None:
    """An event in flight when renewal started carrying the order: no total, no count — its
    line is confirmed at once (without a total), never held."""
    handle = renewal_events_handler(FixedClock(NOW))
    async with connection_to(notification_db) as connection:
        async with connection.transaction():
            await handle(
                UnitOfWork(connection),
                [renewed("old-", "A", "s1", total=None, renewed_in_order=None)],
            )
        row = await queued(connection, "old-A")
    assert row["next_attempt_at"] == NOW
    assert json.loads(row["context"])["total"] is None
