"""A bulk request completes once its last item settles, however its items' settlements meet:
two transactions settling the last two items of one batch at the same time (the payment of one,
the abandonment of another; or two consumers during a rebalance) must not each see the other's
item still waiting and leave the batch waiting for ever — the request then never gets its
`bulk.completed` (CONTRACT.md: each command gets exactly one answer)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import asyncpg

from deploy.local.samples import unique_csn
from services.renewal.batches import SettledItem, settle_items
from shared.clock import FixedClock
from shared.db.settings import DatabaseSettings
from shared.messaging.outbox import Outbox
from tests.integration.helpers import connection_to
from tests.scenarios.steps import until

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


async def _ordered_batch(connection: asyncpg.Connection, key: str, orders: list[str]) -> None:
    """A bulk request whose items each wait for their order's payment."""
    await connection.execute(
        "INSERT INTO renewal_batches (request_id, csn, actor, event_id, total_items, status)"
        " VALUES ($1, $2, '{}'::jsonb, $1, $3, 'ordered')",
        key,
        unique_csn(),
        len(orders),
    )
    await connection.executemany(
        "INSERT INTO renewal_batch_items (request_id, position, subscription_id, status, order_id)"
        " VALUES ($1, $2, $3, 'ordered', $4)",
        [(key, n, f"S-{n}", order) for n, order in enumerate(orders)],
    )


async def _settle(connection: asyncpg.Connection, order_id: str, outbox: Outbox) -> None:
    item = SettledItem(order_id=order_id, status="renewed")
    await settle_items(connection, [item], outbox, clock=FixedClock(NOW), source="/renewal")


async def _waits_for_a_lock(admin_db: asyncpg.Connection, pid: int) -> bool:
    return bool(
        await admin_db.fetchval(
            "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1", pid
        )
    )


async def test_the_last_two_items_settled_at_once_complete_the_batch_once(
    renewal_db: DatabaseSettings, admin_db: asyncpg.Connection
) -> None:
    async with connection_to(renewal_db) as first, connection_to(renewal_db) as second:
        await _ordered_batch(first, "B-race", ["O-1", "O-2"])
        outboxes = [Outbox(), Outbox()]
        first_transaction = first.transaction()
        await first_transaction.start()
        await _settle(first, "O-1", outboxes[0])  # settled, not committed yet

        async def settle_the_other() -> None:
            async with second.transaction():
                await _settle(second, "O-2", outboxes[1])

        other = asyncio.create_task(settle_the_other())
        # The pause where it hurts: the other settlement runs while the first is uncommitted —
        # it either waits for the first (a lock) or ends without it.
        second_pid = second.get_server_pid()

        async def ended_or_waiting() -> bool:
            return other.done() or await _waits_for_a_lock(admin_db, second_pid)

        await until(ended_or_waiting, what="the second settlement to end or wait for the first")
        await first_transaction.commit()
        await other

        status = await first.fetchval(
            "SELECT status FROM renewal_batches WHERE request_id = 'B-race'"
        )
    assert status == "completed"
    answers = [row for outbox in outboxes for row in outbox.rows]
    assert len(answers) == 1  # one bulk.completed, from whichever settled last
