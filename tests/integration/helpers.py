"""Helpers of the integration tests: waiting, apps run in-process, connections, offsets.

A FastStream app runs in the test's event loop with `await app.start()` / `await app.stop()`
(faststream/_internal/application.py: the startup hooks, the real broker, the after-startup
hooks; then the shutdown hooks and the broker's stop). `TestApp`/`TestKafkaBroker` would patch
the broker, and offsets and redelivery only exist on the real one.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import date, datetime
from decimal import Decimal
from types import ModuleType, SimpleNamespace
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from faststream import FastStream
from faststream.kafka import KafkaBroker

from deploy.local.client import TopicWatcher
from services.operations.health import http_ready as service_ready
from shared.contracts.common import PriceLine, Term
from shared.contracts.envelope import EventData, new_event
from shared.contracts.quote_events import QuoteSent
from shared.contracts.topics import DLQ_PARTITIONS, Topic
from shared.db.migrate import migrate
from shared.db.pool import connect, create_pool
from shared.db.settings import DatabaseSettings
from shared.messaging.broker import create_broker
from shared.messaging.consumer import (
    BatchHandler,
    DeadLetter,
    Delivery,
    EventConsumer,
    PoolHolder,
    UnitOfWork,
)
from shared.messaging.credentials import client_options
from shared.messaging.settings import MessagingSettings
from shared.plumbing.faults import FaultPoints


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


@asynccontextmanager
async def pool_on(settings: DatabaseSettings) -> AsyncIterator[asyncpg.Pool]:
    """A pool on the settings' schema, as the service opens one; closed afterwards."""
    pool = await create_pool(settings)
    try:
        yield pool
    finally:
        await pool.close()


@asynccontextmanager
async def pools_on(settings: DatabaseSettings) -> AsyncIterator[PoolHolder]:
    """The holder a service's runtime hands its loops and providers, holding a pool on the
    settings' schema; closed afterwards."""
    async with pool_on(settings) as pool:
        holder = PoolHolder()
        holder.pool = pool
        yield holder


def read_from_a_record(delivery: Delivery[Any]) -> Delivery[Any]:
    """The delivery as the consumer reads it from a record (a dead letter names its record)."""
    record = SimpleNamespace(topic="t", partition=0, offset=1)
    return Delivery(delivery.event, record, delivery.signer, delivery.unproven)


async def consumed_as_a_batch(
    settings: DatabaseSettings,
    contract: ModuleType,
    handler: BatchHandler,
    deliveries: list[Delivery[Any]],
    *,
    service: str,
    attempts: int = 1,
) -> tuple[int, list[DeadLetter]]:
    """`deliveries` handled by a real consumer of the `contract`'s topic (its TOPIC, REGISTRY):
    as one batch in one transaction and, when that fails, each alone — (handled, dead letters)."""
    async with pools_on(settings) as pools:
        consumer = EventConsumer(
            service=service,
            topic=contract.TOPIC,
            registry=contract.REGISTRY,
            group_id="it",
            handler=handler,
            pools=pools,
            settings=MessagingSettings(handler_max_attempts=attempts),
            faults=FaultPoints(),
        )
        handled, _, letters = await consumer._handle(deliveries)
    return handled, letters


async def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = AIOKafkaConsumer(**client_options(bootstrap), enable_auto_commit=False)
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


async def records_on(bootstrap: str, topic: str) -> int:
    """Every record the broker holds on `topic` (the sum of its end offsets): what a watcher may
    not have read yet is counted too."""
    return sum((await end_offsets(bootstrap, topic)).values())


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


async def committed_to_the_end(
    bootstrap: str,
    admin: AIOKafkaAdminClient,
    group_id: str,
    topic: str,
    timeout: float = 10.0,
) -> None:
    """Wait until the group has committed past every record on `topic` as of now (partitions
    that hold none aside). A consumer dead-letters a record before it commits past it: after
    this, the DLQ holds the letters of every one of those records."""
    ends = await end_offsets(bootstrap, topic)
    wanted = {p: end for p, end in ends.items() if end > 0}

    async def committed() -> bool:
        got = await committed_offsets(admin, group_id, topic)
        return all(got.get(p) == end for p, end in wanted.items())

    await eventually(committed, timeout=timeout, what=f"{group_id} to commit {wanted}")


async def http_ready(port: int, host: str = "127.0.0.1") -> bool:
    """Whether the service's `/ready` answers 200, as `renewals health` and an orchestrator ask."""
    ready, _ = await service_ready(f"{host}:{port}")
    return ready


async def caught_up(
    watcher: TopicWatcher, topic: str, partition: int, timeout: float = 10.0
) -> None:
    """Wait until the watcher has read everything on the partition as of now."""
    ends = await end_offsets(watcher.bootstrap, topic)
    last = ends[partition] - 1

    def read_to_the_end() -> bool:
        return any(
            s.topic == topic and s.partition == partition and s.offset >= last for s in watcher.seen
        )

    await eventually(read_to_the_end, timeout=timeout, what=f"{topic}[{partition}] read to {last}")


@asynccontextmanager
async def started_broker(bootstrap: str, client_id: str) -> AsyncIterator[KafkaBroker]:
    """The service's FastStream broker (create_broker), connected; stopped afterwards."""
    broker = create_broker(MessagingSettings(kafka_bootstrap=bootstrap), client_id=client_id)
    await broker.start()
    try:
        yield broker
    finally:
        await broker.stop()


@asynccontextmanager
async def kafka_admin_client(bootstrap: str) -> AsyncIterator[AIOKafkaAdminClient]:
    admin = AIOKafkaAdminClient(**client_options(bootstrap), request_timeout_ms=10_000)
    await admin.start()
    try:
        yield admin
    finally:
        await admin.close()


@asynccontextmanager
async def topic_pairs(admin: AIOKafkaAdminClient, *topics: Topic) -> AsyncIterator[None]:
    """Create the topics, each with its `.dlq` twin, as deploy/local/create_topics.py does;
    delete them afterwards."""
    names = [name for topic in topics for name in (topic.name, topic.dlq)]
    await admin.create_topics(
        [NewTopic(topic.name, topic.partitions, replication_factor=1) for topic in topics]
        + [NewTopic(topic.dlq, DLQ_PARTITIONS, replication_factor=1) for topic in topics]
    )

    async def have_leaders() -> bool:
        described = await admin.describe_topics(names)
        return len(described) == len(names) and all(
            t["error_code"] == 0
            and t["partitions"]
            and all(p["leader"] >= 0 for p in t["partitions"])
            for t in described
        )

    try:
        await eventually(have_leaders, timeout=10, what=f"{names} to have leaders")
        yield
    finally:
        await admin.delete_topics(names)


@asynccontextmanager
async def scratch_schema(
    admin_db: asyncpg.Connection, service: str
) -> AsyncIterator[DatabaseSettings]:
    """A throwaway schema owned by the service's role; the service's settings pointing at it."""
    schema = f"it_{uuid.uuid4().hex[:12]}"
    settings = DatabaseSettings.for_service(service).model_copy(update={"schema_name": schema})
    await admin_db.execute(f'CREATE SCHEMA "{schema}" AUTHORIZATION "{settings.user}"')
    try:
        yield settings
    finally:
        await admin_db.execute(f'DROP SCHEMA "{schema}" CASCADE')


@asynccontextmanager
async def migrated_schema(
    admin_db: asyncpg.Connection, service: str
) -> AsyncIterator[DatabaseSettings]:
    """A migrated throwaway schema of the service; the service's settings pointing at it."""
    async with scratch_schema(admin_db, service) as settings:
        await migrate(service, settings)
        yield settings


@asynccontextmanager
async def migrated(admin_db: asyncpg.Connection, service: str) -> AsyncIterator[asyncpg.Pool]:
    """A migrated throwaway schema of the service, and a pool on it."""
    async with migrated_schema(admin_db, service) as settings, pool_on(settings) as pool:
        yield pool


async def insert_quote(pool: asyncpg.Pool, quote_number: str, csn: str, expires_on: date) -> None:
    await pool.execute(
        """INSERT INTO quotes (quote_number, csn, channel, kind, subscription_ids, recipients,
                               currency, total, lines, expires_on, created_at)
           VALUES ($1, $2, 'sales', 'renewal', '{}', '{}', 'USD', 1, '[]', $3, now())""",
        quote_number,
        csn,
        expires_on,
    )


# Handlers called directly, on the real database -------------------------------------------------

Handle = Callable[[UnitOfWork, Any], Awaitable[None]]


def delivered(
    data: EventData, csn: str, *, time: datetime, signer: str | None = None
) -> Delivery[Any]:
    """`data` about `csn` as the consumer hands it to a handler; `signer`: the proven signer of
    a command topic's record (None: a topic without signatures)."""
    event = new_event(data, subject=csn, source="/it", time=time)
    return Delivery(event, record=None, signer=signer)


async def handle_in_transaction(settings: DatabaseSettings, handle: Handle, handled: Any) -> None:
    """The handler in one transaction with its outbox, as the consumer runs it: `handled` is a
    delivery for a per-event handler, a list of them for a batch handler."""
    async with connection_to(settings) as connection, connection.transaction():
        unit = UnitOfWork(connection)
        await handle(unit, handled)
        await unit.outbox.flush(connection)


async def taken_outbox(
    settings: DatabaseSettings, topic: str | None = None
) -> list[dict[str, Any]]:
    """The events written to the outbox since the last call, in their order (all are taken;
    those of `topic` returned when it is given)."""
    async with connection_to(settings) as connection:
        rows = await connection.fetch("SELECT topic, value FROM outbox ORDER BY id")
        await connection.execute("DELETE FROM outbox")
    return [json.loads(row["value"]) for row in rows if topic in (None, row["topic"])]


class CountingConnection:
    """A handler's connection, counting the statements it is sent (set-based handling: one
    statement per batch, whatever its size)."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        self.connection = connection
        self.statements: list[str] = []

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.connection, name)
        if name in ("execute", "fetch", "fetchrow", "fetchval", "executemany"):

            async def counted(query: str, *args: Any, **kwargs: Any) -> Any:
                self.statements.append(query)
                return await attribute(query, *args, **kwargs)

            return counted
        return attribute


def renewal_quote_sent(
    subscription_id: str,
    quote_number: str,
    *,
    term: Term,
    seats: int,
    unit_price: Decimal,
    expires_on: date,
) -> QuoteSent:
    """The quote service's `quote.sent` of a renewal quote for one subscription, at `unit_price`
    a seat, nothing off."""
    amount = unit_price * seats
    line = PriceLine(
        subscription_id=subscription_id,
        product_code="ACDLT",
        term=term,
        seats=seats,
        unit_price=unit_price,
        discount=Decimal("0"),
        amount=amount,
    )
    return QuoteSent(
        request_id=None,
        quote_number=quote_number,
        kind="renewal",
        subscription_ids=[subscription_id],
        expires_on=expires_on,
        currency="USD",
        total=amount,
        lines=[line],
        recipients=[],
        promotions=[],
    )


async def index_names(connection: asyncpg.Connection, schema: str) -> set[str]:
    """The indexes of a schema's `subscriptions`."""
    rows = await connection.fetch(
        "SELECT indexname FROM pg_indexes WHERE schemaname = $1 AND tablename = 'subscriptions'",
        schema,
    )
    return {row["indexname"] for row in rows}
