"""A WorkLoop on the real database: its LISTEN comes back after the connection is lost (as after
a PostgreSQL restart), so a NOTIFY wakes it again without waiting for the poll."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import asyncpg
import pytest

from shared.db.settings import DatabaseSettings
from shared.messaging.loops import WorkLoop
from tests.integration.helpers import eventually, pool_on


@pytest.fixture
async def pool(scratch_database: DatabaseSettings) -> AsyncIterator[asyncpg.Pool]:
    async with pool_on(scratch_database) as pool:
        yield pool


async def test_listen_is_reestablished_after_its_connection_is_killed(
    pool: asyncpg.Pool, admin_db: asyncpg.Connection
) -> None:
    steps: list[int] = []

    async def step() -> int:
        steps.append(1)
        return 0

    loop = WorkLoop("listening", step, service="t", poll_seconds=3600, pool=pool, channel="it_wake")
    task = loop.start()
    try:
        await eventually(lambda: loop._listener is not None, timeout=5, what="the first LISTEN")
        first = loop._listener
        assert first is not None
        await pool.execute("NOTIFY it_wake")
        await eventually(lambda: len(steps) >= 2, timeout=5, what="a step woken by NOTIFY")

        # The listening backend dies, as in a PostgreSQL restart: the loop listens anew.
        await admin_db.execute("SELECT pg_terminate_backend($1)", first.get_server_pid())
        await eventually(
            lambda: loop._listener is not None and loop._listener is not first,
            timeout=5,
            what="a new LISTEN",
        )
        before = len(steps)
        await pool.execute("NOTIFY it_wake")
        await eventually(lambda: len(steps) > before, timeout=5, what="woken by the new LISTEN")
        assert loop.alive
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
