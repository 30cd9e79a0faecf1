"""The services' pools (shared/db/pool.py): a connection goes back to its pool without asyncpg's
reset query (issue 19 item 6), and still without what a use left open."""

from __future__ import annotations

import asyncpg

from tests.integration.helpers import migrated_schema, pool_on


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
