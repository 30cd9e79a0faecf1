"""Issue 15, item 5 — `/live` and `/ready` of a real `ServiceRuntime` (no consumers: it must not
join the groups of a stack running beside the tests): `/live` fails once a loop's task has died,
and `/ready` says `database` only while a `SELECT 1` through the pool succeeds."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from services.quote.expiry import QuoteExpiry
from shared.clock import SystemClock
from shared.db.settings import DatabaseSettings
from shared.messaging.runtime import ServiceRuntime
from shared.messaging.settings import MessagingSettings
from tests.integration.helpers import eventually, running


async def get(port: int, path: str) -> tuple[int, dict[str, bool]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
        await writer.drain()
        response = await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()
    head, _, body = response.partition(b"\r\n\r\n")
    lines = (line.split() for line in body.decode().splitlines())
    return int(head.split()[1]), {name: state == "ok" for name, state in lines}


@pytest.fixture
async def runtime(
    scratch_database: DatabaseSettings, kafka_bootstrap: str
) -> AsyncIterator[ServiceRuntime]:
    messaging = MessagingSettings(kafka_bootstrap=kafka_bootstrap, metrics_sample_seconds=0.2)
    runtime = ServiceRuntime("it-health", messaging, scratch_database)
    runtime.migrations_of = "quote"
    runtime.work(lambda pool: QuoteExpiry(pool, SystemClock(), "/it", 0.2).work_loop())
    app = runtime.build_app()

    async def ready() -> bool:
        return runtime.health is not None and (await get(runtime.health.port, "/ready"))[0] == 200

    async with running(app, ready):
        yield runtime


async def test_live_fails_when_a_loop_task_dies(runtime: ServiceRuntime) -> None:
    assert runtime.health is not None
    assert await get(runtime.health.port, "/live") == (
        200,
        {"outbox_relay": True, "metrics": True, "quote_expiry": True},
    )
    [expiry] = [loop for loop in runtime.work_loops if loop.name == "quote_expiry"]
    task = expiry._task
    assert task is not None
    task.cancel()  # as a loop task ended by a bug would be: done, not running
    with contextlib.suppress(asyncio.CancelledError):
        await task

    status, checks = await get(runtime.health.port, "/live")
    assert status == 503 and checks["quote_expiry"] is False and checks["outbox_relay"] is True


async def test_ready_says_database_only_while_the_database_answers(
    runtime: ServiceRuntime,
) -> None:
    assert runtime.health is not None
    status, checks = await get(runtime.health.port, "/ready")
    assert status == 200 and checks["database"] is True

    # The pool object stays; its connections no longer work (as with the database away), and
    # the last answer is made old rather than waiting for it to age — once a check has failed:
    # a `SELECT 1` answered just before the terminate would otherwise record its answer after.
    runtime.pools.get().terminate()
    [metrics] = [loop for loop in runtime.work_loops if loop.name == "metrics"]
    await eventually(lambda: metrics.failures > 0, timeout=5, what="a database check to fail")
    runtime._database_answered_at = None

    async def not_ready() -> bool:
        status, checks = await get(runtime.health.port, "/ready")  # type: ignore[union-attr]
        return status == 503 and checks["database"] is False

    await eventually(not_ready, timeout=5, what="/ready to say the database is away")
