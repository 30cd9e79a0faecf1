"""The simulated payment provider on the real database: its ledger (`simulated_provider_charges`)
is the provider's side of the world — a charge made with a key is there whatever happens to
billing afterwards, a key charged again is the same charge, and `lookup` finds what was made."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal

import asyncpg
import pytest

from services.billing.provider import ChargeRequest, ChargeResult
from services.billing.simulator import SimulatedPaymentProvider
from shared.clock import FixedClock
from shared.contracts.subscription_events import PaymentMethod
from shared.db.settings import DatabaseSettings
from shared.messaging.consumer import PoolHolder
from tests.integration.helpers import eventually, pool_on

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
CARD = PaymentMethod(type="card", recurring=True, valid=True)


@pytest.fixture
async def ledger(billing_db: DatabaseSettings) -> AsyncIterator[tuple[asyncpg.Pool, str]]:
    async with pool_on(billing_db) as pool:
        yield pool, billing_db.schema_name


def provider_on(pool: asyncpg.Pool) -> SimulatedPaymentProvider:
    pools = PoolHolder()
    pools.pool = pool
    return SimulatedPaymentProvider(pools, FixedClock(NOW))


async def test_a_charge_is_written_to_the_ledger_and_found_by_its_key(
    ledger: tuple[asyncpg.Pool, str],
) -> None:
    pool, _ = ledger
    provider = provider_on(pool)

    assert await provider.lookup("ORD-1") is None
    charged = await provider.charge(
        idempotency_key="ORD-1", amount=Decimal("840.00"), currency="USD", method=CARD
    )

    assert charged.outcome == "succeeded"
    assert await provider.lookup("ORD-1") == charged
    rows = await pool.fetch("SELECT * FROM simulated_provider_charges")
    assert [
        (r["idempotency_key"], r["amount"], r["currency"], r["outcome"], r["at"]) for r in rows
    ] == [("ORD-1", Decimal("840.00"), "USD", "succeeded", NOW)]


async def test_a_key_charged_again_is_the_same_charge_not_a_second_one(
    ledger: tuple[asyncpg.Pool, str],
) -> None:
    pool, _ = ledger
    provider = provider_on(pool)
    asked = [
        ChargeRequest("ORD-1", Decimal("840.00"), "USD", CARD),
        ChargeRequest("ORD-2", Decimal("420.13"), "USD", CARD),  # declined: insufficient funds
    ]

    first = await provider.charge_many(asked)
    again = await provider.charge_many([*asked, ChargeRequest("ORD-3", Decimal("1"), "EUR", CARD)])

    assert [r.outcome for r in first] == ["succeeded", "failed"]
    assert again[:2] == first
    assert again[2].outcome == "succeeded"
    counted = await pool.fetch(
        "SELECT idempotency_key, count(*) AS n FROM simulated_provider_charges"
        " GROUP BY idempotency_key ORDER BY idempotency_key"
    )
    assert [(r["idempotency_key"], r["n"]) for r in counted] == [
        ("ORD-1", 1),
        ("ORD-2", 1),
        ("ORD-3", 1),
    ]
    found = await provider.lookup_many(["ORD-2", "ORD-9"])
    assert found == {"ORD-2": first[1]}


async def test_the_ledger_outlives_the_callers_transaction(
    ledger: tuple[asyncpg.Pool, str],
) -> None:
    """The provider writes on a connection of its own: a billing transaction that rolls back
    after the call does not take the charge back (money taken is taken)."""
    pool, _ = ledger
    provider = provider_on(pool)

    async with pool.acquire() as connection:
        transaction = connection.transaction()
        await transaction.start()
        result = await provider.charge(
            idempotency_key="ORD-1", amount=Decimal("10.00"), currency="USD", method=CARD
        )
        await transaction.rollback()

    assert (
        await provider.lookup("ORD-1")
        == result
        == ChargeResult("succeeded", payment_reference=result.payment_reference)
    )


async def test_issue_19_a_key_being_charged_by_another_call_is_that_charge_once_it_commits(
    ledger: tuple[asyncpg.Pool, str],
) -> None:
    """Two chargers on one order (a lease run out under a live attempt): the second call's
    insert waits for the first's to commit, then answers with the charge the first made — one
    row, the same outcome — instead of failing with `ConcurrentChargeError` (the ledger read
    again in the insert's own snapshot, before #19, could not see it)."""
    pool, _ = ledger
    provider = provider_on(pool)
    async with pool.acquire() as first, first.transaction():
        await first.execute(
            "INSERT INTO simulated_provider_charges (idempotency_key, amount, currency, outcome,"
            " payment_reference, at) VALUES ('ORD-1', 840.00, 'USD', 'succeeded', 'SIM-FIRST', $1)",
            NOW,
        )
        second = asyncio.create_task(
            provider.charge_many([ChargeRequest("ORD-1", Decimal("840.00"), "USD", CARD)])
        )
        waiting = (
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            " AND query LIKE '%INSERT INTO simulated_provider_charges%'"
        )
        # The second insert waits on the first's uncommitted row.
        await eventually(lambda: pool.fetchval(waiting), timeout=10, what="the second insert")
    assert await second == [ChargeResult("succeeded", "SIM-FIRST")]
    assert await pool.fetchval("SELECT count(*) FROM simulated_provider_charges") == 1
