"""The bulk worker on a real database, called directly (issue 17 items 1, 5): the batches it
claims, the item outcomes and orders it saves (MAN-1, MAN-2), and a batch whose decision raises
(a price that breaks rounding) set aside for an operator while the others of its claim are
ordered (issue 15 item 2).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from deploy.local.samples import renewal_request, subscription, unique_csn
from services.renewal.bulk_worker import BulkWorker
from services.renewal.renewal_requests import record_renewal_request
from services.renewal.state import snapshot_handler
from shared.clock import FixedClock
from shared.db.pool import create_pool
from shared.db.settings import DatabaseSettings
from shared.eligibility import Policy
from tests.integration import helpers as it

CLOCK = FixedClock(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
NOW, POLICY, SOURCE = CLOCK.now(), Policy(), "/it/bulk"
RENEWAL_DATE = NOW.date() + timedelta(days=30)  # inside the manual renewal window
POISON = "1E+27"  # passes validation, breaks rounding to cents


@pytest.fixture
async def renewal_db(admin_db: asyncpg.Connection) -> AsyncIterator[DatabaseSettings]:
    """Renewal's schema, its catalog copy holding a good price and a poisoned one."""
    async with it.migrated_schema(admin_db, "renewal") as settings:
        await priced(settings, {"ACDLT": "420", "POISON": POISON})
        yield settings


async def priced(settings: DatabaseSettings, prices: dict[str, str]) -> None:
    async with it.connection_to(settings) as connection:
        await connection.executemany(
            "INSERT INTO prices (product_code, term, currency, list_price, renewal_price)"
            " VALUES ($1, 'annual', 'USD', $2::numeric, $2::numeric)",
            prices.items(),
        )


async def requested(settings: DatabaseSettings, csn: str, sids: list[str], **snapshot: Any) -> str:
    """A renewal request of `sids` (those not stored are unknown to renewal), recorded: its key."""
    for sid in sids[:2]:
        await it.handle_in_transaction(
            settings,
            snapshot_handler(POLICY, SOURCE, CLOCK),
            [
                it.delivered(
                    subscription(sid, csn, renewal_date=RENEWAL_DATE, **snapshot), csn, time=NOW
                )
            ],
        )
    intake = record_renewal_request(CLOCK, SOURCE, POLICY)
    await it.handle_in_transaction(
        settings, intake, [it.delivered(renewal_request(csn, sids), csn, time=NOW)]
    )
    await it.taken_outbox(settings)  # the intake's answers: what the worker writes is looked at
    async with it.connection_to(settings) as connection:
        return str(
            await connection.fetchval("SELECT request_id FROM renewal_batches WHERE csn = $1", csn)
        )


async def worked(settings: DatabaseSettings) -> list[int]:
    """What two steps of the worker took: the second finds nothing left to claim."""
    pool = await create_pool(settings)
    try:
        worker = BulkWorker(pool, CLOCK, POLICY, source=SOURCE, per_claim=10, poll_seconds=1)
        return [await worker.work_pending(), await worker.work_pending()]
    finally:
        await pool.close()


async def test_man_1_each_item_saves_its_outcome_and_the_eligible_ones_one_order(
    renewal_db: DatabaseSettings,
) -> None:
    csn = unique_csn("BULK")
    sids = [f"S-{csn}-1", f"S-{csn}-2", f"S-{csn}-unknown"]
    key = await requested(renewal_db, csn, sids)

    assert await worked(renewal_db) == [1, 0]

    async with it.connection_to(renewal_db) as connection:
        batch = await connection.fetchval(
            "SELECT status FROM renewal_batches WHERE request_id = $1", key
        )
        items = await connection.fetch(
            "SELECT subscription_id, status, reasons, order_id FROM renewal_batch_items"
            " WHERE request_id = $1 ORDER BY position",
            key,
        )
        [order] = await connection.fetch("SELECT order_id, subscription_ids, purpose FROM orders")
    assert batch == "ordered"
    assert [(i["status"], i["order_id"]) for i in items] == [
        ("ordered", order["order_id"]),
        ("ordered", order["order_id"]),
        ("rejected", None),
    ]
    assert items[2]["reasons"] == ["UNKNOWN_SUBSCRIPTION"]
    assert (order["subscription_ids"], order["purpose"]) == (sids[:2], "renewal")
    events = [
        e["type"] for e in await it.taken_outbox(renewal_db) if e["type"] != "subscription.state"
    ]
    assert sorted(events) == ["order.requested", "renewal.rejected"]


async def test_a_batch_whose_decision_raises_is_set_aside_and_the_others_are_ordered(
    renewal_db: DatabaseSettings,
) -> None:
    good = await requested(renewal_db, unique_csn("BULK"), [f"S-{unique_csn()}"])
    bad_csn = unique_csn("BULK")
    bad = await requested(renewal_db, bad_csn, [f"S-{bad_csn}"], product_code="POISON")

    assert await worked(renewal_db) == [2, 0]  # the claim failed: each batch worked alone

    async with it.connection_to(renewal_db) as connection:
        batches = await connection.fetch("SELECT request_id, status FROM renewal_batches")
        parked = await connection.fetch(
            "SELECT item, reason FROM parked_items WHERE loop = 'bulk_worker'"
        )
    statuses = {row["request_id"]: row["status"] for row in batches}
    reasons = {row["item"]: row["reason"] for row in parked}
    assert statuses == {good: "ordered", bad: "failed"}
    assert list(reasons) == [bad]
    assert "InvalidOperation" in reasons[bad]
