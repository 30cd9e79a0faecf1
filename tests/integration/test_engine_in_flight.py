"""Issue 19: the due-date engine does not read again a subscription whose charge is in flight.

Once it has asked billing to charge a renewal, nothing is left for the engine to do until
billing answers: its next look is put off to the day the subscription would expire (a bound,
should no answer ever come). A failed charge brings the look back at once, so the engine retries
on the policy's schedule or announces the lapse (AUTO-1, LIFE-2) as before; a paid one moves the
renewal date, and with it the next look.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import asyncpg
import pytest

from deploy.local.samples import price, subscription, unique_csn
from services.renewal.due_date_engine import NEXT_CHECK, DueDateEngine
from services.renewal.settlement import Settlement
from services.renewal.state import announced, snapshot_handler
from shared.catalog.store import save_price
from shared.clock import FixedClock
from shared.contracts.billing_events import PaymentFailed, PaymentSucceeded
from shared.contracts.envelope import new_event
from shared.eligibility import Policy
from shared.messaging.consumer import Delivery, UnitOfWork
from tests.integration.helpers import migrated

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
TODAY = NOW.date()
POLICY = Policy()


@pytest.fixture
async def pool(admin_db: asyncpg.Connection) -> AsyncIterator[asyncpg.Pool]:
    async with migrated(admin_db, "renewal") as pool:
        yield pool


def _delivery(data: Any, csn: str) -> Delivery:
    return Delivery(new_event(data, subject=csn, source="/it/in-flight", time=NOW), record=None)


async def _subscriptions_due_on_today(pool: asyncpg.Pool, count: int) -> tuple[str, list[str]]:
    csn = unique_csn()
    snapshots = [
        subscription(f"{csn}-{n}", csn, renewal_date=TODAY, auto_renew=True) for n in range(count)
    ]
    async with pool.acquire() as connection, connection.transaction():
        unit = UnitOfWork(connection)
        await save_price(unit, _delivery(price("ACDLT"), csn))
        save_snapshot = snapshot_handler(POLICY, "/it", FixedClock(NOW))
        for snapshot in snapshots:
            await save_snapshot(unit, [_delivery(snapshot, csn)])
    return csn, [s.subscription_id for s in snapshots]


async def _next_looks(pool: asyncpg.Pool, ids: list[str]) -> dict[str, date]:
    rows = await pool.fetch(
        f"SELECT s.subscription_id, {NEXT_CHECK} AS next_look FROM subscriptions AS s"
        " WHERE s.subscription_id = ANY($1)",
        ids,
    )
    return {row["subscription_id"]: row["next_look"] for row in rows}


async def _answer(pool: asyncpg.Pool, csn: str, answers: list[Any]) -> None:
    async with pool.acquire() as connection, connection.transaction():
        unit = UnitOfWork(connection)
        await announced(settle, POLICY, "/it", FixedClock(NOW))(
            unit, [_delivery(answer, csn) for answer in answers]
        )


async def settle(unit: UnitOfWork, deliveries: list[Delivery]) -> None:
    await Settlement(unit, FixedClock(NOW), "/it", POLICY).apply(deliveries)


def _engine(pool: asyncpg.Pool) -> DueDateEngine:
    return DueDateEngine(
        pool, FixedClock(NOW), POLICY, source="/it", batch_size=50, interval_seconds=1
    )


async def test_a_charge_in_flight_is_not_claimed_again_until_billing_answers(
    pool: asyncpg.Pool,
) -> None:
    """AUTO-1: ordered once; the claims after it find nothing, not even to filter it out."""
    csn, ids = await _subscriptions_due_on_today(pool, 3)
    engine = _engine(pool)

    assert await engine.run_once() == 3
    ordered = await pool.fetch(
        "SELECT subscription_id, order_id FROM auto_renewals WHERE subscription_id = ANY($1)", ids
    )
    assert len(ordered) == 3

    assert all(look > TODAY for look in (await _next_looks(pool, ids)).values())
    assert await engine.run_once() == 0

    # Billing answers: one paid (the renewal date moves on), two failed.
    orders = {row["subscription_id"]: row["order_id"] for row in ordered}
    paid, *failed = ids
    await _answer(
        pool,
        csn,
        [
            PaymentSucceeded(
                order_id=orders[paid],
                payment_reference="it-paid",
                amount=Decimal("1.00"),
                currency="USD",
            ),
            *(
                PaymentFailed(order_id=orders[sid], reason="card declined", next_retry_on=None)
                for sid in failed
            ),
        ],
    )

    looks = await _next_looks(pool, ids)
    assert looks[paid] > TODAY  # its next renewal date
    assert [looks[sid] for sid in failed] == [TODAY, TODAY]  # back at once
    # The engine looks again: the first retry is days away, so today it announces the lapse.
    assert await engine.run_once() == 2
    lapsed = await pool.fetch(
        "SELECT subscription_id FROM subscriptions"
        " WHERE subscription_id = ANY($1) AND lapse_announced_for = $2",
        ids,
        TODAY,
    )
    assert {row["subscription_id"] for row in lapsed} == set(failed)
