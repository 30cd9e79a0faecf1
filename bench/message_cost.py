"""The Python cost of one message, consumed and produced: µs of this process's CPU per message.

    uv run python -m bench.message_cost            # every step, Kafka and PostgreSQL included
    uv run python -m bench.message_cost --no-io    # the in-memory steps only

Issue 19 item 6. Each step runs the product's own code on real `billing.events` CloudEvents
(`order.placed` with one line, `payment.succeeded`, alternating) in batches of `--batch`:

  consume  FastStream's batch parsing and decoding (`consumer._tolerant_batch_parser` around
           FastStream's own parser, then `_raw_values`); the consumer's parsing and validation
           of each record (`EventConsumer._parse`, with the headers the outbox writes); the
           inbox claim of a batch (`EventConsumer._claim`, one INSERT … unnest) on PostgreSQL
  produce  `Outbox.add` (encoding an event) and `Outbox.flush` (COPY); the relay's publishing of
           a claimed batch to Kafka, acknowledgements awaited (`OutboxRelay._publish`), and for
           comparison aiokafka's producer itself with the same options (`--raw-producer`)

A figure is `time.process_time()` of this process over the step divided by the messages: the
database's and the broker's own CPU are not in it (bench/procstat.py counts those in `make
bench`). It prints one line per step. Not a test: figures move with the machine's load; compare
runs taken one after the other.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import ConsumerRecord
from faststream.kafka.message import KafkaMessage
from faststream.kafka.parser import AioKafkaBatchParser

from shared.contracts import billing_events
from shared.contracts.billing_events import OrderLine, OrderPlaced, PaymentSucceeded
from shared.contracts.envelope import CloudEvent, encode, new_event
from shared.messaging import consumer as consuming
from shared.messaging.broker import create_broker
from shared.messaging.credentials import client_options
from shared.messaging.outbox import Outbox, OutboxRelay
from shared.messaging.settings import MessagingSettings
from shared.plumbing.faults import FaultPoints

BENCH_PRINCIPAL = "test"  # may make `bench.` topics (shared/messaging/principals.py)
NOW = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
# The options of the services' producer (shared/messaging/broker.py), for aiokafka's own.
PRODUCER_OPTIONS: dict[str, Any] = {
    "enable_idempotence": True,
    "acks": "all",
    "linger_ms": 5,
    "max_batch_size": 256 * 1024,
}


@dataclass(frozen=True)
class Figure:
    step: str
    messages: int
    cpu_seconds: float

    def line(self) -> str:
        return f"{self.step:<66} {1e6 * self.cpu_seconds / self.messages:8.1f} µs/message"


def sample_events(count: int) -> list[CloudEvent[Any]]:
    """`order.placed` and `payment.succeeded`, alternating, each of its own CSN and order."""
    events = []
    for i in range(count):
        csn = f"CSN-{i:010d}"
        order_id = f"ORD-{uuid.uuid4()}"
        data: Any
        if i % 2 == 0:
            amount = Decimal("1234.50")
            line = OrderLine(
                subscription_id=f"{csn}-SUB-1",
                product_code="ACDLT",
                product_name="AutoCAD LT",
                term="annual",
                seats=5,
                unit_price=Decimal("246.90"),
                amount=amount,
            )
            data = OrderPlaced(
                order_id=order_id,
                csn=csn,
                currency="USD",
                purchase_method="direct_online",
                lines=[line],
                total=amount,
                request_id=f"req-{uuid.uuid4()}",
            )
        else:
            data = PaymentSucceeded(
                order_id=order_id,
                amount=Decimal("1234.50"),
                currency="USD",
                payment_reference=f"PAY-{uuid.uuid4().hex[:16]}",
            )
        events.append(new_event(data, subject=csn, source="/bench/billing", time=NOW))
    return events


def as_records(outbox: Outbox) -> list[ConsumerRecord[bytes, bytes]]:
    """The outbox's rows as the consumer receives them: value, key and the outbox's headers."""
    records = []
    for offset, (topic, key, value, headers) in enumerate(outbox.rows):
        header_list = [(k, v.encode()) for k, v in json.loads(headers).items()]
        records.append(
            ConsumerRecord(
                topic=topic,
                partition=0,
                offset=offset,
                timestamp=int(NOW.timestamp() * 1000),
                timestamp_type=0,
                key=key,
                value=value,
                checksum=None,
                serialized_key_size=len(key or b""),
                serialized_value_size=len(value),
                headers=header_list,
            )
        )
    return records


def measure(step: str, messages: int, body: Callable[[], None]) -> Figure:
    started = time.process_time()
    body()
    return Figure(step, messages, time.process_time() - started)


async def ameasure(step: str, messages: int, body: Callable[[], Awaitable[None]]) -> Figure:
    started = time.process_time()
    await body()
    return Figure(step, messages, time.process_time() - started)


def _relay_sender(broker: Any) -> Any:
    """What the relay of this tree sends through: the broker's producer (BrokerSender), or the
    broker itself on a tree from before it (the A/B's "before")."""
    from shared.messaging import broker as brokers

    sender = getattr(brokers, "BrokerSender", None)
    return sender(broker) if sender is not None else broker


def the_consumer(handler: Any = None) -> consuming.EventConsumer:
    async def unused(unit: Any, deliveries: Any) -> None:
        raise AssertionError("not called here")

    return consuming.EventConsumer(
        service="bench",
        topic=billing_events.TOPIC,
        registry=billing_events.REGISTRY,
        group_id="bench.billing.events",
        handler=handler or unused,
        pools=consuming.PoolHolder(),
        settings=MessagingSettings(),
        faults=FaultPoints(),
    )


async def in_memory(events: list[CloudEvent[Any]], batch: int, rounds: int) -> list[Figure]:
    figures = []
    total = len(events) * rounds

    def add_all() -> None:
        for _ in range(rounds):
            outbox = Outbox()
            for event in events:
                outbox.add(billing_events.TOPIC, event)

    figures.append(measure("produce: Outbox.add (encode, headers)", total, add_all))

    outbox = Outbox()
    for event in events:
        outbox.add(billing_events.TOPIC, event)
    records = as_records(outbox)
    batches = [tuple(records[i : i + batch]) for i in range(0, len(records), batch)]
    parser = AioKafkaBatchParser(msg_class=KafkaMessage, regex=None)

    async def faststream_parse() -> None:
        for _ in range(rounds):
            for records_of_batch in batches:
                message = await consuming._tolerant_batch_parser(
                    records_of_batch,
                    parser.parse_batch,  # type: ignore[arg-type]  # a KafkaMessage, typed wider
                )
                await consuming._raw_values(message)

    figures.append(
        await ameasure("consume: FastStream batch parse + decode", total, faststream_parse)
    )

    consumer = the_consumer()

    def parse_all() -> None:
        for _ in range(rounds):
            for records_of_batch in batches:
                consumer._parse(records_of_batch)

    figures.append(measure("consume: EventConsumer._parse (validation)", total, parse_all))

    # Notification's view of billing.events: it acts on order.placed, not payment.succeeded.
    ignoring = the_consumer(
        consuming.dispatch_some(billing_events.REGISTRY, {OrderPlaced: consuming.ignore})
    )
    if getattr(ignoring, "ignored", None):  # a consumer that skips what its service ignores

        def parse_half_ignored() -> None:
            for _ in range(rounds):
                for records_of_batch in batches:
                    ignoring._parse(records_of_batch)

        figures.append(
            measure(
                "consume: _parse, every other type ignored (notification's view)",
                total,
                parse_half_ignored,
            )
        )
    return figures


async def with_postgres(events: list[CloudEvent[Any]], batch: int, rounds: int) -> list[Figure]:
    from bench import e2e

    schema = f"bench_msg_{uuid.uuid4().hex[:8]}"
    connection = await e2e.admin_connect()
    figures = []
    try:
        await connection.execute(f"CREATE SCHEMA {schema}; SET search_path = {schema}")
        await connection.execute(
            "CREATE TABLE inbox (event_id text PRIMARY KEY, topic text NOT NULL,"
            " received_at timestamptz NOT NULL DEFAULT now());"
            "CREATE TABLE outbox (id bigserial PRIMARY KEY, topic text NOT NULL, key bytea,"
            " value bytea NOT NULL, headers jsonb NOT NULL DEFAULT '{}'::jsonb,"
            " created_at timestamptz NOT NULL DEFAULT now())"
        )
        consumer = the_consumer()
        outbox = Outbox()
        for event in events:
            outbox.add(billing_events.TOPIC, event)
        records = as_records(outbox)
        deliveries = consumer._parse(records)[0]
        chunks = [deliveries[i : i + batch] for i in range(0, len(deliveries), batch)]

        async def claim_all() -> None:
            for _ in range(rounds):
                async with connection.transaction():
                    for chunk in chunks:
                        await consumer._claim(connection, chunk)
                await connection.execute("TRUNCATE inbox")

        figures.append(
            await ameasure(
                "consume: inbox claim (_claim, PostgreSQL)", len(events) * rounds, claim_all
            )
        )

        async def flush_all() -> None:
            for _ in range(rounds):
                async with connection.transaction():
                    for first in range(0, len(events), batch):
                        chunk = Outbox()
                        chunk.rows = list(outbox.rows[first : first + batch])
                        await chunk.flush(connection)
                await connection.execute("TRUNCATE outbox")

        figures.append(
            await ameasure("produce: Outbox.flush (COPY)", len(events) * rounds, flush_all)
        )
    finally:
        await connection.execute(f"DROP SCHEMA {schema} CASCADE")
        await connection.close()
    return figures


async def with_kafka(
    events: list[CloudEvent[Any]], batch: int, rounds: int, raw_producer: bool
) -> list[Figure]:
    settings = MessagingSettings(kafka_username=BENCH_PRINCIPAL)
    access = client_options(settings.kafka_bootstrap, principal=BENCH_PRINCIPAL)
    topic = f"bench.messages.{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(**access)
    await admin.start()
    figures = []
    try:
        await admin.create_topics([NewTopic(topic, 6, 1)])
        outbox = Outbox()
        for event in events:
            outbox.add(billing_events.TOPIC, event)
        rows = [
            {"id": i, "topic": topic, "key": key, "value": value, "headers": headers}
            for i, (_, key, value, headers) in enumerate(outbox.rows)
        ]
        chunks = [rows[i : i + batch] for i in range(0, len(rows), batch)]
        broker = create_broker(settings, client_id=BENCH_PRINCIPAL)
        producer = AIOKafkaProducer(**access, **PRODUCER_OPTIONS)
        await broker.start()
        await producer.start()
        try:
            relay = OutboxRelay(
                None,  # type: ignore[arg-type]  # only `_publish` is used: no pool needed
                _relay_sender(broker),
                service="bench",
                schema="bench",
                batch_size=batch,
                poll_seconds=1.0,
            )

            async def relay_publish(chunk: list[dict[str, Any]]) -> None:
                await relay._publish(chunk)  # type: ignore[arg-type]

            async def aiokafka_send(chunk: list[dict[str, Any]]) -> None:
                sends = [
                    await producer.send(
                        row["topic"],
                        row["value"],
                        key=row["key"],
                        headers=[(k, v.encode()) for k, v in json.loads(row["headers"]).items()],
                    )
                    for row in chunk
                ]
                await asyncio.gather(*sends)

            ways = {"produce: relay publish (OutboxRelay._publish, acks awaited)": relay_publish}
            if raw_producer:
                ways["produce: aiokafka producer.send itself (comparison)"] = aiokafka_send
            for way in ways.values():  # warm-up: metadata, connections, producer id, the broker
                for chunk in chunks:
                    await way(chunk)
            cpu = dict.fromkeys(ways, 0.0)
            wall = dict.fromkeys(ways, 0.0)
            # Alternated round by round: the broker's own load and warmth are the same for both.
            for _ in range(rounds):
                for step, way in ways.items():
                    started, cpu_started = time.perf_counter(), time.process_time()
                    for chunk in chunks:
                        await way(chunk)
                    cpu[step] += time.process_time() - cpu_started
                    wall[step] += time.perf_counter() - started
            for step in ways:
                figures.append(Figure(step, len(rows) * rounds, cpu[step]))
                print(f"  ({step.split(': ')[1]}: {len(rows) * rounds / wall[step]:,.0f}/s wall)")
        finally:
            await producer.stop()
            await broker.stop()
    finally:
        try:
            await admin.delete_topics([topic])
        finally:
            await admin.close()
    return figures


async def main(args: argparse.Namespace) -> None:
    events = sample_events(args.messages)
    if args.gc_threshold:
        # What a service does once started (shared/plumbing/collector.py), written out here
        # so that the bench runs the same way on a tree without it (the A/B's "before").
        gc.collect()
        gc.freeze()
        gc.set_threshold(args.gc_threshold, *gc.get_threshold()[1:])
    size = sum(len(encode(e)) for e in events) / len(events)
    print(
        f"{args.messages:,} billing.events CloudEvents ({size:.0f} bytes on average),"
        f" batches of {args.batch}, {args.rounds} rounds; µs of this process's CPU per message;"
        f" garbage collector thresholds {gc.get_threshold()}"
    )
    figures = await in_memory(events, args.batch, args.rounds)
    if not args.no_io:
        figures += await with_postgres(events, args.batch, args.rounds)
        figures += await with_kafka(events, args.batch, args.rounds, args.raw_producer)
    for figure in figures:
        print(figure.line())


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.message_cost", description=__doc__)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-io", action="store_true", help="skip PostgreSQL and Kafka")
    parser.add_argument(
        "--gc-threshold",
        type=int,
        default=0,
        help="the youngest generation's threshold, as the services set it (0: CPython's 700)",
    )
    parser.add_argument(
        "--raw-producer", action="store_true", help="also time aiokafka's producer.send itself"
    )
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
