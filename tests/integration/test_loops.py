"""A WorkLoop on the real database: its LISTEN comes back after the connection is lost (as after
a PostgreSQL restart), so a NOTIFY wakes it again without waiting for the poll."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from asyncpg.pool import PoolConnectionProxy

from shared.db.pool import create_pool
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


class _ListenHeldOpen:
    """The real pool, whose connections' LISTEN waits at a gate: where a shutdown can land."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.listening = asyncio.Event()
        self.gate = asyncio.Event()

    async def acquire(self) -> _HeldListener:
        return _HeldListener(await self.pool.acquire(), self)

    async def release(self, connection: _HeldListener) -> None:
        await self.pool.release(connection.connection)


class _HeldListener:
    def __init__(self, connection: PoolConnectionProxy[Any], held: _ListenHeldOpen) -> None:
        self.connection = connection
        self.held = held

    async def add_listener(self, channel: str, callback: Any) -> None:
        self.held.listening.set()
        await self.held.gate.wait()
        await self.connection.add_listener(channel, callback)


async def test_a_loop_stopped_during_its_listen_gives_the_connection_back(
    scratch_database: DatabaseSettings,
) -> None:
    # Seen in CI: a service stopped just after it started never finished stopping — the loop
    # cancelled in the middle of its first LISTEN kept the connection, and `pool.close()` waits
    # for every connection to come back.
    async def step() -> int:
        return 0

    real_pool = await create_pool(scratch_database)
    try:
        held = _ListenHeldOpen(real_pool)
        loop = WorkLoop(
            "stopping",
            step,
            service="t",
            poll_seconds=3600,
            pool=held,  # type: ignore[arg-type]
            channel="it_stop",
        )
        task = loop.start()
        await asyncio.wait_for(held.listening.wait(), 5)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert real_pool.get_size() - real_pool.get_idle_size() == 0, "a connection still held"
        await asyncio.wait_for(real_pool.close(), 5)
    finally:
        real_pool.terminate()  # after a failure here, not a close that would wait for ever
