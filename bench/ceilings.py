"""The raw ceilings of this machine, measured in the same run as the end-to-end figure.

- Kafka: produce N CloudEvent-shaped messages (a real `renewal.requested`, ~400 bytes) with the
  services' idempotent producer settings to a fresh 6-partition topic while a consumer reads them
  back; the rate is N / (first send → last message consumed).
- PostgreSQL: a renewal-shaped transaction (inbox insert + subscription update + outbox insert)
  through asyncpg on one connection, one message per transaction and 100 per transaction, in a
  `bench` schema of our own (dropped at the end).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from deploy.local import samples
from shared.contracts.envelope import CONTENT_TYPE, encode
from shared.messaging.credentials import client_options

Progress = Callable[[str], None]

BENCH_PRINCIPAL = "test"


@dataclass(frozen=True)
class KafkaCeiling:
    messages: int
    message_bytes: int
    produce_seconds: float  # first send → last acknowledgement
    roundtrip_seconds: float  # first send → last message consumed

    @property
    def rate(self) -> float:
        return self.messages / self.roundtrip_seconds


def _payloads(count: int) -> list[tuple[bytes, bytes]]:
    """(key, value): real `renewal.requested` CloudEvents, each with its own ids and CSN."""
    template = json.loads(
        encode(samples.event(samples.renewal_request("CSN-0", ["CSN-0-SUB-1"]), subject="CSN-0"))
    )
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    payloads = []
    for i in range(count):
        csn = f"CSN-{i:010d}"
        template["id"] = str(uuid.uuid4())
        template["time"] = now
        template["subject"] = csn
        template["data"]["request_id"] = f"req-{uuid.uuid4()}"
        template["data"]["actor"] = {"user_id": f"{csn}-buyer", "csn": csn}
        template["data"]["subscription_ids"] = [f"{csn}-SUB-1"]
        payloads.append((csn.encode(), json.dumps(template, separators=(",", ":")).encode()))
    return payloads


async def kafka_roundtrip(
    bootstrap: str, messages: int, progress: Progress, partitions: int = 6
) -> KafkaCeiling:
    topic = f"bench.roundtrip.{uuid.uuid4().hex[:8]}"
    payloads = _payloads(messages)
    # The test principal: the one that may make `bench.` topics (shared/messaging/principals.py).
    access = client_options(bootstrap, principal=BENCH_PRINCIPAL)
    admin = AIOKafkaAdminClient(**access)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1)])
        consumer = AIOKafkaConsumer(
            **access, enable_auto_commit=False, auto_offset_reset="earliest"
        )
        # The same producer settings as the services' broker (shared/messaging/broker.py).
        producer = AIOKafkaProducer(
            **access,
            enable_idempotence=True,
            acks="all",
            linger_ms=5,
            max_batch_size=256 * 1024,
        )
        await consumer.start()
        await producer.start()
        try:
            deadline = time.monotonic() + 30
            while len(consumer.partitions_for_topic(topic) or ()) < partitions:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"topic {topic} has no metadata after 30 s")
                await consumer._client.force_metadata_update()
                await asyncio.sleep(0.1)
            assigned = [TopicPartition(topic, p) for p in range(partitions)]
            consumer.assign(assigned)
            await consumer.seek_to_beginning(*assigned)
            # Warm up the producer's connection and the topic's partition leaders (not timed).
            await producer.partitions_for(topic)

            received = 0
            done = asyncio.Event()
            last_seen = 0.0

            async def consume() -> None:
                nonlocal received, last_seen
                while received < messages:
                    batches = await consumer.getmany(timeout_ms=200, max_records=5000)
                    for records in batches.values():
                        received += len(records)
                    if batches:
                        last_seen = time.perf_counter()
                done.set()

            reader = asyncio.create_task(consume())
            headers = [("content-type", CONTENT_TYPE.encode())]
            started = time.perf_counter()
            sends = [
                await producer.send(topic, value, key=key, headers=headers)
                for key, value in payloads
            ]
            await asyncio.gather(*sends)
            produced = time.perf_counter()
            try:
                await asyncio.wait_for(done.wait(), 60)
            finally:
                reader.cancel()
            progress(f"kafka: {messages:,} produced and consumed back on {topic}")
            return KafkaCeiling(
                messages=messages,
                message_bytes=round(sum(len(v) for _, v in payloads) / len(payloads)),
                produce_seconds=produced - started,
                roundtrip_seconds=last_seen - started,
            )
        finally:
            await producer.stop()
            await consumer.stop()
    finally:
        try:
            await admin.delete_topics([topic])
        finally:
            await admin.close()


@dataclass(frozen=True)
class PgCeiling:
    name: str
    messages: int
    per_transaction: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.messages / self.seconds


SCHEMA = """
DROP SCHEMA IF EXISTS bench CASCADE;
CREATE SCHEMA bench;
SET search_path = bench;
CREATE TABLE inbox (
    event_id text PRIMARY KEY, topic text NOT NULL, received_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE subscriptions (
    subscription_id text PRIMARY KEY, revision bigint NOT NULL DEFAULT 1,
    renewal_date date NOT NULL, updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE outbox (
    id bigserial PRIMARY KEY, topic text NOT NULL, key bytea, value bytea NOT NULL,
    headers jsonb NOT NULL DEFAULT '{}'::jsonb, created_at timestamptz NOT NULL DEFAULT now()
);
CREATE FUNCTION notify_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_notify('bench_outbox', ''); RETURN NULL; END; $$;
CREATE TRIGGER outbox_inserted AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION notify_outbox();
INSERT INTO subscriptions (subscription_id, renewal_date)
    SELECT 'SUB-' || g, current_date FROM generate_series(0, {rows} - 1) AS g;
"""

INSERT_INBOX = "INSERT INTO inbox (event_id, topic) VALUES ($1, 'bench')"
UPDATE_SUBSCRIPTION = (
    "UPDATE subscriptions SET renewal_date = renewal_date + 365, updated_at = now()"
    " WHERE subscription_id = $1"
)
INSERT_OUTBOX = (
    "INSERT INTO outbox (topic, key, value, headers) VALUES ('bench', $1, $2, $3::jsonb)"
)
HEADERS = json.dumps({"content-type": CONTENT_TYPE, "ce-type": "subscription.renewed"})
SUBSCRIPTION_ROWS = 10_000


async def postgres_transactions(
    connect: Callable[[], Awaitable[asyncpg.Connection]],
    *,
    single: int,
    batched: int,
    statementwise: int,
    progress: Progress,
) -> list[PgCeiling]:
    """Three shapes of the same work; returns one figure per shape."""
    connection: asyncpg.Connection = await connect()
    value = b"x" * 400
    try:
        await connection.execute(SCHEMA.replace("{rows}", str(SUBSCRIPTION_ROWS)))
        results = []

        def subscription(i: int) -> str:
            return f"SUB-{i % SUBSCRIPTION_ROWS}"

        # 1. One message per transaction: three statements and a commit (a WAL flush) each.
        started = time.perf_counter()
        for i in range(single):
            async with connection.transaction():
                await connection.execute(INSERT_INBOX, f"one-{i}")
                await connection.execute(UPDATE_SUBSCRIPTION, subscription(i))
                await connection.execute(INSERT_OUTBOX, subscription(i).encode(), value, HEADERS)
        results.append(PgCeiling("1 per transaction", single, 1, time.perf_counter() - started))
        progress(f"postgres: {single:,} transactions of 1 message")

        # 2. 100 per transaction, set-based: what the consumer's inbox claim and outbox COPY do.
        started = time.perf_counter()
        for first in range(0, batched, 100):
            ids = range(first, min(first + 100, batched))
            async with connection.transaction():
                await connection.execute(
                    "INSERT INTO inbox (event_id, topic) SELECT unnest($1::text[]), 'bench'",
                    [f"batch-{i}" for i in ids],
                )
                await connection.execute(
                    "UPDATE subscriptions AS s SET renewal_date = s.renewal_date + 365,"
                    " updated_at = now() FROM unnest($1::text[]) AS u(subscription_id)"
                    " WHERE s.subscription_id = u.subscription_id",
                    [subscription(i) for i in ids],
                )
                await connection.copy_records_to_table(
                    "outbox",
                    records=[("bench", subscription(i).encode(), value, HEADERS) for i in ids],
                    columns=["topic", "key", "value", "headers"],
                )
        results.append(
            PgCeiling("100 per transaction, set-based", batched, 100, time.perf_counter() - started)
        )
        progress(f"postgres: {batched:,} messages in transactions of 100, set-based")

        # 3. 100 per transaction but a statement (a round trip) per message: the handlers' shape.
        started = time.perf_counter()
        for first in range(0, statementwise, 100):
            async with connection.transaction():
                for i in range(first, min(first + 100, statementwise)):
                    await connection.execute(INSERT_INBOX, f"rows-{i}")
                    await connection.execute(UPDATE_SUBSCRIPTION, subscription(i))
                    await connection.execute(
                        INSERT_OUTBOX, subscription(i).encode(), value, HEADERS
                    )
        results.append(
            PgCeiling(
                "100 per transaction, statement by statement",
                statementwise,
                100,
                time.perf_counter() - started,
            )
        )
        progress(f"postgres: {statementwise:,} messages in transactions of 100, row by row")
        return results
    finally:
        try:
            await connection.execute("DROP SCHEMA IF EXISTS bench CASCADE")
        finally:
            await connection.close()
