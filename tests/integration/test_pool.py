"""The services' pools (shared/db/pool.py): a connection goes back to its pool without asyncpg's
reset query (issue 19 item 6), and still without what a use left open; a stopping service's
pool is closed within a bound even when a connection never came back."""

from __future__ import annotations

import asyncio

import asyncpg

from shared.db.pool import close_pool, create_pool
from tests.integration.helpers import eventually, migrated_schema, pool_on


async def test_a_released_connection_sends_no_reset_query(admin_db: asyncpg.Connection) -> None:
    async with migrated_schema(admin_db, "quote") as settings:
        one = settings.model_copy(update={"pool_min_size": 1, "pool_max_size": 1})
        async with pool_on(one) as pool:
            sent: list[str] = []
            async with pool.acquire() as connection:
                connection.add_query_logger(lambda record: sent.append(record.query))
                await connection.fetchval("SELECT 1")
            async with pool.acquire() as connection:  # the same one: the pool holds one
                await connection.fetchval("SELECT 2")
            assert sent == ["SELECT 1", "SELECT 2"]  # nothing in between: no reset


async def test_a_transaction_left_open_is_rolled_back_before_the_next_use(
    admin_db: asyncpg.Connection,
) -> None:
    """The one reset that matters to the product: asyncpg still ends an open transaction."""
    async with migrated_schema(admin_db, "quote") as settings:
        one = settings.model_copy(update={"pool_min_size": 1, "pool_max_size": 1})
        async with pool_on(one) as pool:
            connection = await pool.acquire()
            await connection.execute("BEGIN")
            await connection.execute(
                "INSERT INTO test_clocks (csn, today) VALUES ('C-x', current_date)"
            )
            await pool.release(connection)
            async with pool.acquire() as again:
                assert not again.is_in_transaction()
                assert await again.fetchval("SELECT count(*) FROM test_clocks") == 0


async def test_a_pool_with_a_connection_never_given_back_is_still_closed(
    admin_db: asyncpg.Connection,
) -> None:
    async with migrated_schema(admin_db, "quote") as settings:
        pool = await create_pool(settings)
        try:
            held = await pool.acquire()  # as a bug that never releases it would
            backend = held.get_server_pid()
            await asyncio.wait_for(close_pool(pool, timeout_seconds=0.5), 10)

            async def backend_gone() -> bool:
                query = "SELECT count(*) FROM pg_stat_activity WHERE pid = $1"
                return await admin_db.fetchval(query, backend) == 0

            await eventually(backend_gone, timeout=5, what="the held connection to be closed")
        finally:
            pool.terminate()
