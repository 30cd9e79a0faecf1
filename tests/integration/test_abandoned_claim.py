"""Issue 19: the abandoned-orders loop reads only the reservations that wait for a manual
payment, not every order in flight.

An automatic renewal reserves its subscription's next term with no `pay_by` (billing charges
it at once); only a manual payment gets one. The loop polls every few seconds: when its claim
read every reservation and joined each to its subscription before comparing `pay_by` with the
CSN's today, a bench at 200,000 subscriptions paid 39 ms a poll to find nothing.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime
from typing import Any

import asyncpg
import pytest

from services.renewal.abandoned import RELEASE
from tests.integration.helpers import migrated

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
IN_FLIGHT = 300


@pytest.fixture
async def pool(admin_db: asyncpg.Connection) -> AsyncIterator[asyncpg.Pool]:
    async with migrated(admin_db, "renewal") as pool:
        yield pool


def scans_of(plan: dict[str, Any], relation: str) -> Iterator[dict[str, Any]]:
    if plan.get("Relation Name") == relation:
        yield plan
    for child in plan.get("Plans", ()):
        yield from scans_of(child, relation)


async def test_the_claim_joins_no_reservation_without_a_pay_by(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as connection, connection.transaction():
        # automatic renewals in flight: reserved, no manual payment awaited
        await connection.execute("SET LOCAL renewal.seeding = on")  # rows that publish nothing
        await connection.execute(
            "INSERT INTO term_reservations (subscription_id, order_id, term_start, reserved_at)"
            " SELECT 'S-' || n, 'O-' || n, $1, $2 FROM generate_series(1, $3) AS n",
            date(2026, 5, 1),
            NOW,
            IN_FLIGHT,
        )
        await connection.execute("ANALYZE term_reservations")
        explained = await connection.fetchval(
            "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + RELEASE, NOW, 100
        )

    plan = json.loads(explained)[0]["Plan"]
    # none joined to its subscription (nor its CSN's clock and zone) to be thrown away after
    probes = sum(scan["Actual Loops"] for scan in scans_of(plan, "subscriptions"))
    assert probes == 0
