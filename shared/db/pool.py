"""asyncpg pools pinned to one service schema."""

import asyncio
import logging

import asyncpg

from shared.db.settings import DatabaseSettings

log = logging.getLogger(__name__)


class PooledConnection(asyncpg.Connection):
    """A pool's connection, handed back as it is: asyncpg's default sends a reset query on
    every release (`pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL`), a round
    trip and four statements for each use of the pool, which the hot paths acquire per batch
    and the email senders per email (issue 19 item 6). Nothing here leaves session state on a
    connection: settings are transaction-local (`set_config(..., true)`), no advisory lock is
    taken, a listener is removed before its connection goes back (asyncpg then UNLISTENs),
    and a transaction left open is still rolled back by asyncpg on release."""

    def get_reset_query(self) -> str:
        return ""


async def create_pool(settings: DatabaseSettings) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        host=settings.host,
        port=settings.port,
        database=settings.database,
        user=settings.user,
        password=settings.password,
        min_size=settings.pool_min_size,
        max_size=settings.pool_max_size,
        connection_class=PooledConnection,
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


async def close_pool(pool: asyncpg.Pool, timeout_seconds: float = 10.0) -> None:
    """Closed gracefully within the timeout, else terminated: `Pool.close()` waits for every
    connection to come back, and one a bug never gives back would hold a stopping service for
    ever (asyncpg's own advice is to bound it)."""
    try:
        await asyncio.wait_for(pool.close(), timeout_seconds)
    except TimeoutError:
        log.error(
            "pool did not close in time; its connections are terminated",
            extra={
                "timeout_seconds": timeout_seconds,
                "held": pool.get_size() - pool.get_idle_size(),
            },
        )
        pool.terminate()


async def connect(settings: DatabaseSettings) -> asyncpg.Connection:
    return await asyncpg.connect(
        host=settings.host,
        port=settings.port,
        database=settings.database,
        user=settings.user,
        password=settings.password,
        server_settings={"search_path": settings.schema_name},
    )
