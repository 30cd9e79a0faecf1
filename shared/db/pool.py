"""asyncpg pools pinned to one service schema."""

import asyncpg

from shared.db.settings import DatabaseSettings


async def create_pool(settings: DatabaseSettings) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        host=settings.host,
        port=settings.port,
        database=settings.database,
        user=settings.user,
        password=settings.password,
        min_size=settings.pool_min_size,
        max_size=settings.pool_max_size,
        # The role can use only its own schema; the search_path makes unqualified names land there.
        # No JIT: the services' statements are short, and a generic plan's estimate (a claim's
        # `key <= $1` is a third of the table to the planner) crosses jit_above_cost and pays
        # ~35 ms of compiling for a statement that runs in 0.1 ms (issue 19 item 2).
        server_settings={
            "search_path": settings.schema_name,
            "application_name": settings.user,
            "jit": "off",
        },
    )
    assert pool is not None
    return pool


async def connect(settings: DatabaseSettings) -> asyncpg.Connection:
    return await asyncpg.connect(
        host=settings.host,
        port=settings.port,
        database=settings.database,
        user=settings.user,
        password=settings.password,
        server_settings={"search_path": settings.schema_name},
    )
