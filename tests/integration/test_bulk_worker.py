"""The bulk worker on a real database, called directly (issue 17 items 1, 5): the batches it
claims, the item outcomes and orders it saves (MAN-1, MAN-2), and a batch whose decision raises
(a price that breaks rounding) set aside for an operator while the others of its claim are
ordered (issue 15 item 2). A claim saves its items and batches in one statement, a bulk request
refused whole completed at once (#19 plan item 7).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
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


class CountingPool:
    """The worker's pool, counting the statements its connections are sent."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.statements: list[str] = []

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[it.CountingConnection]:
        async with self.pool.acquire() as connection:
            counting = it.CountingConnection(connection)
            counting.statements = self.statements
            yield counting


async def worked(settings: DatabaseSettings, statements: list[str] | None = None) -> list[int]:
    """What two steps of the worker took: the second finds nothing left to claim. The
    statements it sent are appended to `statements`."""
    pool = await create_pool(settings)
    try:
        counting = CountingPool(pool)
        worker = BulkWorker(
            counting,  # type: ignore[arg-type]
            CLOCK,
            POLICY,
            source=SOURCE,
            per_claim=10,
            poll_seconds=1,
        )
        steps = [await worker.work_pending(), await worker.work_pending()]
        if statements is not None:
            statements += counting.statements
        return steps
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
    good_csn, bad_csn = unique_csn("BULK"), unique_csn("BULK")
    good = await requested(renewal_db, good_csn, [f"S-{good_csn}-1", f"S-{good_csn}-2"])
    bad = await requested(
        renewal_db, bad_csn, [f"S-{bad_csn}-1", f"S-{bad_csn}-2"], product_code="POISON"
    )

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


async def test_issue_19_a_claim_saves_its_items_and_batches_in_one_statement(
    renewal_db: DatabaseSettings,
) -> None:
    """#19 plan item 7: a claim of an ordered request and of a bulk request refused whole
    writes their items and batches in one statement; the refused one is completed at once and
    answered (`bulk.completed` with every outcome, MAN-1) without a second look."""
    ordered_csn = unique_csn("BULK")
    ordered = await requested(renewal_db, ordered_csn, [f"S-{ordered_csn}-1", f"S-{ordered_csn}-2"])
    csn = unique_csn("BULK")
    unknown = [f"S-{csn}-unknown-1", f"S-{csn}-unknown-2"]
    await it.handle_in_transaction(
        renewal_db,
        record_renewal_request(CLOCK, SOURCE, POLICY),
        [it.delivered(renewal_request(csn, unknown), csn, time=NOW)],
    )
    await it.taken_outbox(renewal_db)
    statements: list[str] = []

    assert await worked(renewal_db, statements) == [2, 0]  # both batches, one claim

    async with it.connection_to(renewal_db) as connection:
        batches = await connection.fetch(
            "SELECT request_id, status, worked_at FROM renewal_batches"
        )
    statuses = {row["request_id"]: row["status"] for row in batches}
    refused = next(key for key in statuses if key != ordered)
    assert statuses == {ordered: "ordered", refused: "completed"}
    assert all(row["worked_at"] is not None for row in batches)
    written = [
        s for s in statements if "renewal_batch" in s and not s.lstrip().startswith("SELECT")
    ]
    assert len(written) == 1, written
    events = [e for e in await it.taken_outbox(renewal_db) if e["type"] != "subscription.state"]
    assert sorted(e["type"] for e in events) == [
        "bulk.completed",
        "order.requested",
        "renewal.rejected",
        "renewal.rejected",
    ]
    [completed] = [e for e in events if e["type"] == "bulk.completed"]
    assert completed["subject"] == csn
    assert (completed["data"]["succeeded"], completed["data"]["rejected"]) == (0, 2)
    assert [
        (o["subscription_id"], o["status"], o["reasons"], o["order_id"])
        for o in completed["data"]["outcomes"]
    ] == [(sid, "rejected", ["UNKNOWN_SUBSCRIPTION"], None) for sid in unknown]
