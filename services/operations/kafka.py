"""Short-lived broker clients for the operator tools: a consumer that belongs to no group (it
never commits) and the admin client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from shared.messaging.credentials import OPERATOR, client_options
from shared.messaging.settings import MessagingSettings


def bootstrap_servers(bootstrap: str | None = None) -> str:
    return bootstrap or MessagingSettings().kafka_bootstrap


def operator_options(bootstrap: str | None = None) -> dict[str, Any]:
    """The operator principal's connection (RENEWALS_KAFKA_USERNAME may name another)."""
    settings = MessagingSettings()
    return client_options(
        bootstrap_servers(bootstrap), principal=settings.kafka_username or OPERATOR
    )


@asynccontextmanager
async def reader(bootstrap: str | None = None) -> AsyncIterator[AIOKafkaConsumer]:
    """A consumer of no group: it reads wherever it is told and never moves anyone's offsets."""
    consumer = AIOKafkaConsumer(
        **operator_options(bootstrap),
        enable_auto_commit=False,
        request_timeout_ms=10_000,
    )
    await consumer.start()
    try:
        yield consumer
    finally:
        await consumer.stop()


@asynccontextmanager
async def admin(bootstrap: str | None = None) -> AsyncIterator[AIOKafkaAdminClient]:
    client = AIOKafkaAdminClient(**operator_options(bootstrap), request_timeout_ms=10_000)
    await client.start()
    try:
        yield client
    finally:
        await client.close()


class UnknownTopicError(LookupError):
    pass


async def partitions_of(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    # The whole cluster's metadata: once a consumer is assigned partitions, its own cache
    # follows only the topics it is assigned.
    metadata = await consumer._client.fetch_all_metadata()
    partitions = metadata.partitions_for_topic(topic)
    if not partitions:
        raise UnknownTopicError(f"no topic {topic!r} on the broker")
    return [TopicPartition(topic, p) for p in sorted(partitions)]


async def offsets_at(
    consumer: AIOKafkaConsumer, partitions: Iterable[TopicPartition], timestamp_ms: int
) -> dict[TopicPartition, int]:
    """The first offset of each partition at or after the time; its end when nothing is."""
    partitions = list(partitions)
    found = await consumer.offsets_for_times({tp: timestamp_ms for tp in partitions})
    ends = await consumer.end_offsets(partitions)
    return {tp: (found[tp].offset if found.get(tp) else ends[tp]) for tp in partitions}


@dataclass(frozen=True)
class Record:
    """A record as the operator tools show it: headers decoded, the value kept as bytes."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, str]

    @classmethod
    def of(cls, record: Any) -> Record:
        # A header may have no value at all (Kafka allows it; poison messages do it): shown empty.
        headers = {k: (v or b"").decode(errors="replace") for k, v in record.headers or ()}
        return cls(
            record.topic,
            record.partition,
            record.offset,
            record.timestamp,
            record.key,
            record.value,
            headers,
        )

    @property
    def ref(self) -> str:
        """`<topic>:<partition>:<offset>`: names the record for `dlq show` and `x-replayed-from`."""
        return f"{self.topic}:{self.partition}:{self.offset}"


async def read_range(
    consumer: AIOKafkaConsumer,
    starts: dict[TopicPartition, int],
    ends: dict[TopicPartition, int] | None = None,
) -> AsyncIterator[Record]:
    """Every record from the given offsets up to each partition's end (as of now unless given)."""
    if ends is None:
        ends = await consumer.end_offsets(list(starts))
    pending = {tp: end for tp, end in ends.items() if end > starts[tp]}
    if not pending:
        return
    consumer.assign(list(pending))
    for tp in pending:
        consumer.seek(tp, starts[tp])
    while pending:
        batches = await consumer.getmany(*pending, timeout_ms=500, max_records=2000)
        for tp, records in batches.items():
            for record in records:
                if tp in pending and record.offset < pending[tp]:
                    yield Record.of(record)
            if records and records[-1].offset >= pending.get(tp, 0) - 1:
                pending.pop(tp, None)
        for tp in list(pending):
            if await consumer.position(tp) >= pending[tp]:
                pending.pop(tp)
