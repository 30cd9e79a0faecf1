"""The outbox relay: rows written in a transaction reach Kafka in id order and are deleted once
the broker acknowledged them; a row the broker refuses for its own sake (too large, a topic that
stays unknown) is parked and the others go out (issue 15, item 2); any other failed publish
rolls the claim back and the rows stay.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import signal
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from aiokafka.errors import KafkaTimeoutError
from faststream.kafka import KafkaBroker
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from deploy.local.client import TopicWatcher
from deploy.local.launcher import REPO_ROOT
from deploy.local.samples import event, price, unique_csn
from shared.contracts import topics
from shared.contracts.envelope import CONTENT_TYPE, CloudEvent, new_event
from shared.contracts.topics import Topic
from shared.db.migrate import migrate
from shared.db.settings import DatabaseSettings
from shared.messaging import tracing
from shared.messaging.broker import ALONE_BYTES, BrokerSender
from shared.messaging.credentials import broker_security, credentials
from shared.messaging.outbox import Outbox, OutboxRelay
from shared.messaging.partitioning import partition_of
from shared.plumbing.http import InLoopServer
from shared.plumbing.metrics import OUTBOX_PARKED
from shared.plumbing.otlp import PublishedSpans
from tests.integration.helpers import (
    connection_to,
    eventually,
    pool_on,
    records_on,
    started_broker,
)

INFRA = REPO_ROOT / "deploy" / "local" / "infra.sh"


@pytest.fixture
async def pool(scratch_database: DatabaseSettings) -> AsyncIterator[asyncpg.Pool]:
    await migrate("quote", scratch_database)
    async with pool_on(scratch_database) as pool:
        yield pool


@pytest.fixture
async def broker(kafka_bootstrap: str) -> AsyncIterator[KafkaBroker]:
    async with started_broker(kafka_bootstrap, "it-relay") as broker:
        yield broker


def relay(
    pool: asyncpg.Pool,
    broker: Any,
    database: DatabaseSettings,
    *,
    batch_size: int = 100,
    poll_seconds: float = 0.2,
) -> OutboxRelay:
    """A relay sending through `broker`'s producer (a test's own sender passes as it is)."""
    return OutboxRelay(
        pool,
        BrokerSender(broker) if isinstance(broker, KafkaBroker) else broker,
        service="it-relay",
        schema=database.schema_name,
        batch_size=batch_size,
        poll_seconds=poll_seconds,
    )


def prices(key: str, count: int) -> list[CloudEvent[Any]]:
    return [event(price(f"P{n:03d}"), subject=key, source="/it/outbox") for n in range(count)]


async def write(pool: asyncpg.Pool, rows: list[tuple[Topic, CloudEvent[Any]]]) -> None:
    async with pool.acquire() as connection, connection.transaction():
        outbox = Outbox()
        for topic, item in rows:
            outbox.add(topic, item)
        await outbox.flush(connection)


async def outbox_ids(pool: asyncpg.Pool) -> list[int]:
    return [row["id"] for row in await pool.fetch("SELECT id FROM outbox ORDER BY id")]


async def outbox_empty(pool: asyncpg.Pool) -> bool:
    return not await pool.fetchval("SELECT count(*) FROM outbox")


async def drain(outbox_relay: OutboxRelay) -> list[int]:
    published = []
    while count := await outbox_relay.publish_pending():
        published.append(count)
    return published


async def test_rows_are_published_in_id_order_then_deleted(
    pool: asyncpg.Pool,
    broker: KafkaBroker,
    fresh_topic: Topic,
    scratch_database: DatabaseSettings,
    kafka_bootstrap: str,
) -> None:
    key = unique_csn()
    events = prices(key, 20)
    await write(pool, [(fresh_topic, e) for e in events[:12]])
    await write(pool, [(fresh_topic, e) for e in events[12:]])
    assert len(await outbox_ids(pool)) == 20

    async with TopicWatcher(kafka_bootstrap, [fresh_topic]) as watcher:
        published = await drain(relay(pool, broker, scratch_database, batch_size=8))
        seen = await watcher.wait_for(lambda s: True, count=20, timeout=10)

    assert published == [8, 8, 4]
    assert await outbox_ids(pool) == []
    assert await records_on(kafka_bootstrap, fresh_topic.name) == 20  # each once, none unread
    # One key, one partition: the order on it is the order the rows were written.
    assert [s.event["id"] for s in seen] == [e.id for e in events]
    assert {s.partition for s in seen} == {seen[0].partition}
    for s in seen:
        assert s.key == key.encode()
        assert s.headers["content-type"] == CONTENT_TYPE
        assert s.headers["ce-type"] == "price.published"


async def test_a_keyed_record_goes_where_aiokafka_would_put_it(
    broker: KafkaBroker, fresh_topic: Topic
) -> None:
    """#19 plan item 3b: the relay's sender computes each key's partition itself, once per key
    (`partitioning.partition_of`): the same partition aiokafka's producer picks for that key
    on the topic's partitions, so the order of a key's events is the same as before."""
    sender = BrokerSender(broker)
    keys = [unique_csn().encode() for _ in range(30)] + [b"", b"k", "Zürich".encode()]
    ours: list[int] = []
    for key in keys:
        sent = await (await sender.send(fresh_topic.name, b"ours", key=key, headers=[]))
        # aiokafka's own choice for the same key: no partition given, its default partitioner.
        theirs = await (await sender.producer.send(fresh_topic.name, b"theirs", key=key))
        assert sent.partition == theirs.partition, key
        ours.append(sent.partition)
    assert sender.producer.client.cluster.partitions_for_topic(fresh_topic.name) == {0, 1, 2}
    assert set(ours) == {0, 1, 2}  # the keys spread over every partition: the check means something


class CountingProducer:
    """Counts what the relay hands aiokafka's producer: records one by one, or batches."""

    def __init__(self, producer: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sends = 0
        self.batches: list[int] = []  # the partition of each batch sent
        send, send_batch = producer.send, producer.send_batch

        async def counted_send(*args: Any, **kwargs: Any) -> Any:
            self.sends += 1
            return await send(*args, **kwargs)

        async def counted_send_batch(batch: Any, topic: str, *, partition: int) -> Any:
            self.batches.append(partition)
            return await send_batch(batch, topic, partition=partition)

        monkeypatch.setattr(producer, "send", counted_send)
        monkeypatch.setattr(producer, "send_batch", counted_send_batch)


async def test_a_claim_goes_out_as_one_batch_per_partition_each_key_in_order(
    pool: asyncpg.Pool,
    broker: KafkaBroker,
    fresh_topic: Topic,
    scratch_database: DatabaseSettings,
    kafka_bootstrap: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """#19 item 6: the relay appends a claim's records to one aiokafka batch per partition
    (create_batch / send_batch), not `producer.send` per record; every row once, each key's
    events in the order they were written."""
    outbox_relay = relay(pool, broker, scratch_database, batch_size=500)
    await write(pool, [(fresh_topic, prices(unique_csn(), 1)[0])])
    await drain(outbox_relay)  # the producer learns the topic's partitions (its first record)
    keys = [unique_csn() for _ in range(12)]
    events = {key: prices(key, 5) for key in keys}
    # Interleaved, as a relay's claim is: one event of each key, then the next of each.
    await write(pool, [(fresh_topic, events[key][n]) for n in range(5) for key in keys])
    counting = CountingProducer(BrokerSender(broker).producer, monkeypatch)

    async with TopicWatcher(kafka_bootstrap, [fresh_topic]) as watcher:
        assert await drain(outbox_relay) == [60]
        seen = await watcher.wait_for(lambda s: True, count=60, timeout=10)

    partitions = {partition_of(key.encode(), 3) for key in keys}
    assert counting.sends == 0
    assert sorted(counting.batches) == sorted(partitions) and len(partitions) > 1
    assert await records_on(kafka_bootstrap, fresh_topic.name) == 61  # each once
    for key in keys:
        assert [s.event["id"] for s in seen if s.key == key.encode()] == [e.id for e in events[key]]


async def test_a_key_keeps_its_order_over_batches_that_fill_up(
    pool: asyncpg.Pool,
    broker: KafkaBroker,
    fresh_topic: Topic,
    scratch_database: DatabaseSettings,
    kafka_bootstrap: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """#19 item 6: a partition's records beyond one batch (256 KiB) go in the next batch,
    queued after it; a record larger than ALONE_BYTES goes through `producer.send` alone, as
    before batches. One key: one partition, its order the order of the rows."""
    outbox_relay = relay(pool, broker, scratch_database, batch_size=500)
    key = unique_csn()
    await write_raw(pool, fresh_topic, key, b"0")
    await drain(outbox_relay)  # the producer learns the topic's partitions
    values = [b"%d " % n + b"x" * 30_000 for n in range(1, 25)]  # 24 x 30 kB: 3 batches
    values[10] = b"10 " + b"y" * (ALONE_BYTES + 1)
    for value in values:
        await write_raw(pool, fresh_topic, key, value)
    counting = CountingProducer(BrokerSender(broker).producer, monkeypatch)

    async with TopicWatcher(kafka_bootstrap, [fresh_topic]) as watcher:
        assert await drain(outbox_relay) == [24]
        seen = await watcher.wait_for(lambda s: True, count=24, timeout=10)

    assert [s.value for s in seen] == values
    assert counting.sends == 1 and len(counting.batches) >= 3
    assert set(counting.batches) == {partition_of(key.encode(), 3)}


async def test_rows_of_a_rolled_back_transaction_are_never_published(
    pool: asyncpg.Pool, broker: KafkaBroker, scratch_database: DatabaseSettings
) -> None:
    with contextlib.suppress(RuntimeError):
        async with pool.acquire() as connection, connection.transaction():
            outbox = Outbox()
            outbox.add(Topic("it.never"), prices(unique_csn(), 1)[0])
            await outbox.flush(connection)
            raise RuntimeError("the business change failed")

    assert await outbox_ids(pool) == []
    assert await relay(pool, broker, scratch_database).publish_pending() == 0


async def parked_rows(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    return list(await pool.fetch("SELECT id, topic, value, error FROM outbox_parked ORDER BY id"))


async def write_raw(pool: asyncpg.Pool, topic: Topic, key: str, value: bytes) -> None:
    await pool.execute(
        "INSERT INTO outbox (topic, key, value, headers) VALUES ($1, $2, $3, $4)",
        topic.name,
        key.encode(),
        value,
        '{"content-type": "application/cloudevents+json"}',
    )


async def test_an_event_too_large_for_the_broker_is_parked_and_the_others_go_out_in_order(
    pool: asyncpg.Pool,
    broker: KafkaBroker,
    fresh_topic: Topic,
    scratch_database: DatabaseSettings,
    kafka_bootstrap: str,
) -> None:
    """Issue 15: a `bulk.completed` carrying 12,000 ids, stored whole, refused by the broker."""
    key = unique_csn()
    before, after = prices(key, 2)
    await write(pool, [(fresh_topic, before)])
    await write_raw(pool, fresh_topic, key, b'{"ids": "' + b"x" * 2_000_000 + b'"}')
    await write(pool, [(fresh_topic, after)])
    big_id = (await outbox_ids(pool))[1]
    outbox_relay = relay(pool, broker, scratch_database, poll_seconds=0.1)
    parked_before = OUTBOX_PARKED.labels("it-relay", fresh_topic.name)._value.get()

    async with TopicWatcher(kafka_bootstrap, [fresh_topic]) as watcher:
        task = asyncio.create_task(outbox_relay.loop.run())
        try:
            seen = await watcher.wait_for(lambda s: True, count=2, timeout=10)

            async def outbox_empty() -> bool:
                return await outbox_ids(pool) == []

            await eventually(outbox_empty, timeout=5, what="the claim committed")
            assert outbox_relay.healthy and outbox_relay.loop.failures == 0
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    assert [s.event["id"] for s in seen] == [before.id, after.id]
    [parked] = await parked_rows(pool)
    assert parked["id"] == big_id and len(parked["value"]) > 2_000_000
    assert parked["error"].startswith("MessageSizeTooLargeError")
    assert OUTBOX_PARKED.labels("it-relay", fresh_topic.name)._value.get() == parked_before + 1


async def parked_between_two_published(
    pool: asyncpg.Pool,
    broker: KafkaBroker,
    database: DatabaseSettings,
    kafka_bootstrap: str,
    fresh_topic: Topic,
    refused_topic: Topic,
) -> asyncpg.Record:
    """Three rows of one key, the middle one for `refused_topic`, drained in one claim: the
    two others published in their order, the outbox left empty; the middle row's parked row."""
    before, refused, after = prices(unique_csn(), 3)
    await write(pool, [(fresh_topic, before), (refused_topic, refused)])
    await write(pool, [(fresh_topic, after)])
    rows = await outbox_ids(pool)
    async with TopicWatcher(kafka_bootstrap, [fresh_topic]) as watcher:
        assert await drain(relay(pool, broker, database)) == [3]
        seen = await watcher.wait_for(lambda s: True, count=2, timeout=10)
    assert [s.event["id"] for s in seen] == [before.id, after.id]
    assert await records_on(kafka_bootstrap, fresh_topic.name) == 2
    assert await outbox_ids(pool) == []
    [parked] = await parked_rows(pool)
    assert parked["id"] == rows[1]
    return parked


async def test_an_event_for_a_topic_that_stays_unknown_is_parked(
    pool: asyncpg.Pool,
    fresh_topic: Topic,
    scratch_database: DatabaseSettings,
    kafka_bootstrap: str,
) -> None:
    # The services' broker, with a short request timeout: a topic missing from the metadata
    # fails after `request_timeout_ms` (40 s by default).
    impatient = KafkaBroker(
        kafka_bootstrap,
        enable_idempotence=True,
        acks="all",
        allow_auto_create_topics=False,
        request_timeout_ms=2000,
        security=broker_security(credentials()),
    )
    await impatient.start()
    try:
        missing = Topic(f"it.{uuid.uuid4().hex[:12]}.missing")
        parked = await parked_between_two_published(
            pool, impatient, scratch_database, kafka_bootstrap, fresh_topic, missing
        )
        assert parked["error"].startswith("UnknownTopicOrPartitionError")
    finally:
        await impatient.stop()


async def test_an_event_for_a_topic_the_service_may_not_write_is_parked(
    pool: asyncpg.Pool,
    broker: KafkaBroker,
    fresh_topic: Topic,
    scratch_database: DatabaseSettings,
    kafka_bootstrap: str,
) -> None:
    """The broker's ACLs refuse the principal this topic (the test principal may not write
    billing.events): parked with the error; the rest of the outbox goes out, in order."""
    parked = await parked_between_two_published(
        pool, broker, scratch_database, kafka_bootstrap, fresh_topic, topics.BILLING_EVENTS
    )
    assert parked["error"].startswith("TopicAuthorizationFailedError")


class UnreachableBroker:
    """A broker that is away: every send times out, as aiokafka's does."""

    async def send(self, *args: Any, **kwargs: Any) -> Any:
        raise KafkaTimeoutError()

    async def send_many(self, *args: Any, **kwargs: Any) -> Any:
        raise KafkaTimeoutError()


async def test_a_broker_away_parks_nothing_and_leaves_the_rows_in_place(
    pool: asyncpg.Pool, fresh_topic: Topic, scratch_database: DatabaseSettings
) -> None:
    await write(pool, [(fresh_topic, e) for e in prices(unique_csn(), 3)])
    rows = await outbox_ids(pool)

    with pytest.raises(KafkaTimeoutError):
        await relay(pool, UnreachableBroker(), scratch_database).publish_pending()

    assert await outbox_ids(pool) == rows  # the claim was rolled back: the loop backs off
    assert await parked_rows(pool) == []


async def test_the_relay_wakes_on_notify_without_waiting_for_its_poll(
    pool: asyncpg.Pool,
    broker: KafkaBroker,
    fresh_topic: Topic,
    scratch_database: DatabaseSettings,
    kafka_bootstrap: str,
) -> None:
    outbox_relay = relay(pool, broker, scratch_database, poll_seconds=60)
    task = asyncio.create_task(outbox_relay.loop.run())
    try:
        await eventually(
            lambda: outbox_relay.loop.waiting, timeout=5, what="the relay waiting after its pass"
        )
        events = prices(unique_csn(), 3)
        async with TopicWatcher(kafka_bootstrap, [fresh_topic]) as watcher:
            await write(pool, [(fresh_topic, e) for e in events])
            seen = await watcher.wait_for(lambda s: True, count=3, timeout=5)
        assert [s.event["id"] for s in seen] == [e.id for e in events]
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class GatedBroker:
    """A broker whose sends wait at a gate: a relay caught between its claim and its send."""

    def __init__(self, broker: KafkaBroker) -> None:
        self.sender = BrokerSender(broker)
        self.gate = asyncio.Event()
        self.reached = asyncio.Event()

    async def send(self, *args: Any, **kwargs: Any) -> Any:
        self.reached.set()
        await self.gate.wait()
        return await self.sender.send(*args, **kwargs)

    async def send_many(self, *args: Any, **kwargs: Any) -> Any:
        self.reached.set()
        await self.gate.wait()
        return await self.sender.send_many(*args, **kwargs)


async def test_two_relays_of_one_schema_keep_the_order_of_a_key(
    pool: asyncpg.Pool,
    broker: KafkaBroker,
    fresh_topic: Topic,
    scratch_database: DatabaseSettings,
    kafka_bootstrap: str,
) -> None:
    events = prices(unique_csn(), 10)
    await write(pool, [(fresh_topic, e) for e in events])
    slow = GatedBroker(broker)
    first = relay(pool, slow, scratch_database, batch_size=5)
    second = relay(pool, broker, scratch_database, batch_size=5)

    async with TopicWatcher(kafka_bootstrap, [fresh_topic]) as watcher:
        claimed = asyncio.create_task(first.publish_pending())
        await asyncio.wait_for(slow.reached.wait(), 5)  # rows 1-5 claimed, not yet sent
        # Two replicas of one service, one outbox: the second waits its turn.
        assert await second.publish_pending() == 0
        slow.gate.set()
        await asyncio.wait_for(claimed, 10)
        await drain(second)
        seen = await watcher.wait_for(lambda s: True, count=10, timeout=10)

    assert await records_on(kafka_bootstrap, fresh_topic.name) == 10  # neither relay sent one twice
    # CONTRACT.md: keyed by the CSN "so that everything about one customer stays in order".
    assert [s.event["id"] for s in seen] == [e.id for e in events]


def now() -> datetime:
    return datetime.now(UTC)


class OtlpCollector:
    """A minimal OTLP/HTTP trace receiver: what a Jaeger or an OpenTelemetry Collector gets."""

    def __init__(self) -> None:
        self.spans: list[Any] = []
        self.server = InLoopServer(
            Starlette(routes=[Route("/v1/traces", self.receive, methods=["POST"])]),
            "127.0.0.1",
            0,
        )

    async def receive(self, request: Request) -> Response:
        export = ExportTraceServiceRequest.FromString(await request.body())
        for resource in export.resource_spans:
            for scope in resource.scope_spans:
                self.spans += scope.spans
        return Response(ExportTraceServiceResponse().SerializeToString())


async def test_each_published_event_is_exported_as_a_span_of_its_trace_over_otlp(
    pool: asyncpg.Pool,
    broker: KafkaBroker,
    fresh_topic: Topic,
    scratch_database: DatabaseSettings,
) -> None:
    collector = OtlpCollector()
    port = await collector.server.start()
    try:
        spans = PublishedSpans.to_endpoint("it", f"http://127.0.0.1:{port}")
        outbox_relay = relay(pool, broker, scratch_database)
        outbox_relay.spans = spans
        command = event(price("P001"), subject=unique_csn(), source="/it/otlp")
        caused = new_event(
            price("P002"), subject=command.subject, source="/it/otlp", time=now(), cause=command
        )
        await write(pool, [(fresh_topic, command), (fresh_topic, caused)])
        await drain(outbox_relay)
        assert await asyncio.to_thread(spans.flush)
        await eventually(lambda: len(collector.spans) == 2, timeout=10, what="two spans")
    finally:
        await collector.server.stop()

    by_id = {span.span_id.hex(): span for span in collector.spans}
    first, second = (tracing.parse(e.traceparent, e.tracestate) for e in (command, caused))
    assert first is not None and second is not None
    assert set(by_id) == {first.span_id, second.span_id}
    assert {span.trace_id.hex() for span in collector.spans} == {first.trace_id}
    assert by_id[second.span_id].parent_span_id.hex() == first.span_id
    assert by_id[first.span_id].name == command.type


async def test_a_replica_holding_the_lock_row_makes_the_others_wait(
    pool: asyncpg.Pool, broker: KafkaBroker, fresh_topic: Topic, scratch_database: DatabaseSettings
) -> None:
    """One relay of a schema at a time: the lock is the schema's `outbox_lock` row."""
    await write(pool, [(fresh_topic, e) for e in prices(unique_csn(), 3)])
    async with pool.acquire() as other_replica, other_replica.transaction():
        await other_replica.execute("SELECT FROM outbox_lock FOR UPDATE")
        assert await relay(pool, broker, scratch_database).publish_pending() == 0
    assert await relay(pool, broker, scratch_database).publish_pending() == 3


def old_advisory_key(schema: str) -> int:
    """The key the relay used to lock (a database-wide advisory lock) before issue 16."""
    digest = hashlib.sha256(f"outbox:{schema}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


async def test_another_service_s_role_can_neither_take_nor_block_the_relay_lock(
    pool: asyncpg.Pool, broker: KafkaBroker, fresh_topic: Topic, scratch_database: DatabaseSettings
) -> None:
    """Issue 16, item 6: billing's role holding the relay's former advisory key silenced the
    quote schema's relay; the lock row it cannot even reach."""
    schema = scratch_database.schema_name
    await write(pool, [(fresh_topic, e) for e in prices(unique_csn(), 2)])
    async with connection_to(DatabaseSettings.for_service("billing")) as intruder:
        await intruder.execute("SELECT pg_advisory_lock($1)", old_advisory_key(schema))
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            async with intruder.transaction():
                await intruder.execute(f'SELECT FROM "{schema}".outbox_lock FOR UPDATE')

        assert await relay(pool, broker, scratch_database).publish_pending() == 2
    assert await outbox_ids(pool) == []


class SentThenHeld:
    """A sender whose `hold_after`-th `send_many` finds the broker frozen (SIGSTOP): its records
    go into the producer and their acks cannot come; it then waits to be released. A relay
    caught between its send and its acks."""

    def __init__(self, broker: KafkaBroker, hold_after: int) -> None:
        self.sender = BrokerSender(broker)
        self.hold_after = hold_after
        self.calls = 0
        self.held: list[asyncio.Future[Any]] = []
        self.frozen: int | None = None  # the broker's pid, while SIGSTOPped
        self.sent = asyncio.Event()
        self.release = asyncio.Event()

    async def send(self, *args: Any, **kwargs: Any) -> Any:
        return await self.sender.send(*args, **kwargs)

    async def send_many(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        if self.calls != self.hold_after:
            return await self.sender.send_many(*args, **kwargs)
        self.frozen = kafka_pid()
        os.kill(self.frozen, signal.SIGSTOP)
        self.held = await self.sender.send_many(*args, **kwargs)
        self.sent.set()
        await self.release.wait()
        return self.held


def thaw(pid: int | None) -> None:
    """SIGCONT: a broker left frozen (the test failed before its restart, or the restart did)
    must not stall the rest of the suite; a killed one is gone already."""
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)


def kafka_pid() -> int:
    """The suite's broker process, as deploy/local/infra.sh recorded it."""
    return int((REPO_ROOT / ".local" / "run" / "kafka.pid").read_text())


async def restart_kafka() -> None:
    """SIGKILL the suite's broker and start it again (deploy/local/infra.sh, as the fault suite
    does); returns once its partitions have leaders again."""
    process = await asyncio.create_subprocess_exec(
        str(INFRA),
        "restart-kafka",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    assert process.returncode == 0, output.decode(errors="replace")


async def test_a_broker_killed_between_send_and_acks_loses_and_parks_nothing(
    pool: asyncpg.Pool,
    broker: KafkaBroker,
    fresh_topic: Topic,
    scratch_database: DatabaseSettings,
    kafka_bootstrap: str,
) -> None:
    """Session 9's fault run once missed one `subscription.renewed` after a broker SIGKILL, with
    renewal's outbox empty. Here the broker dies while a claim's records are in the producer and
    their acks are not in: every row must reach the topic (the producer retries; the rows are
    deleted only after their acks), none is parked for a refusal that was only the restart."""
    keys = [unique_csn() for _ in range(30)]
    events = [e for key in keys for e in prices(key, 20)]  # 600 rows, 30 keys
    await write(pool, [(fresh_topic, e) for e in events])
    sender = SentThenHeld(broker, hold_after=2)
    outbox_relay = relay(pool, sender, scratch_database, batch_size=100, poll_seconds=0.2)
    async with TopicWatcher(kafka_bootstrap, [fresh_topic]) as watcher:
        task = asyncio.create_task(outbox_relay.loop.run())
        try:
            await asyncio.wait_for(sender.sent.wait(), timeout=20)
            unacknowledged = sum(not ack.done() for ack in sender.held)
            await restart_kafka()  # SIGKILL of the frozen broker, then a start
            sender.release.set()
            await eventually(
                lambda: outbox_empty(pool), timeout=120, what="the outbox relayed after the restart"
            )
        finally:
            thaw(sender.frozen)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        assert unacknowledged == len(sender.held) > 0  # the kill came between send and acks
        assert await parked_rows(pool) == []
        seen = await watcher.wait_for(lambda s: True, count=len(events), timeout=60)

    assert {s.event["id"] for s in seen} == {e.id for e in events}
    # Each key's events in the order they were written (a resend after the restart may repeat
    # some: at least once; the consumers' inbox makes that once).
    for key in keys:
        ids = [s.event["id"] for s in seen if s.key == key.encode()]
        assert list(dict.fromkeys(ids)) == [e.id for e in events if e.subject == key]
