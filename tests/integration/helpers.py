"""Helpers of the integration tests: waiting, apps run in-process, connections, offsets.

A FastStream app runs in the test's event loop with `await app.start()` / `await app.stop()`
(faststream/_internal/application.py: the startup hooks, the real broker, the after-startup
hooks; then the shutdown hooks and the broker's stop). `TestApp`/`TestKafkaBroker` would patch
the broker, and offsets and redelivery only exist on the real one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from faststream import FastStream

from shared.db.pool import connect
from shared.db.settings import DatabaseSettings


async def eventually(
    check: Callable[[], object], *, timeout: float = 15.0, what: str = "condition"
) -> None:
    """Poll `check` (sync or async) until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout}s for {what}")
        await asyncio.sleep(0.05)


@asynccontextmanager
async def running(
    app: FastStream, ready: Callable[[], object], *, timeout: float = 20.0
) -> AsyncIterator[FastStream]:
    """The app started against the real broker, once `ready()` says so; stopped afterwards."""
    try:
        await app.start()
        await eventually(ready, timeout=timeout, what="the app to be ready")
        yield app
    finally:
        await app.stop()


@asynccontextmanager
async def connection_to(settings: DatabaseSettings) -> AsyncIterator[asyncpg.Connection]:
    connection = await connect(settings)
    try:
        yield connection
    finally:
        await connection.close()


async def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in partitions])
        return {tp.partition: offset for tp, offset in ends.items()}
    finally:
        await consumer.stop()


async def committed_offsets(
    admin: AIOKafkaAdminClient, group_id: str, topic: str
) -> dict[int, int]:
    """The group's committed offset per partition of `topic` (partitions never committed: absent)."""
    offsets = await admin.list_consumer_group_offsets(group_id)
    return {
        tp.partition: meta.offset
        for tp, meta in offsets.items()
        if tp.topic == topic and meta.offset >= 0
    }
