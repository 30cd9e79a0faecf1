"""The Kafka broker every service uses: its own principal, idempotent producer, acks from all
replicas."""

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from faststream.kafka import KafkaBroker

from shared.messaging.credentials import broker_security, credentials
from shared.messaging.partitioning import partition_of
from shared.messaging.settings import MessagingSettings

# A record as the relay hands it over: (key, value, headers).
Record = tuple[bytes | None, bytes, Sequence[tuple[str, bytes]]]
# A record larger than this goes through `send` alone, as before batches: the producer refuses
# one larger than its requests at once (RENEWALS_MAX_MESSAGE_BYTES), where an empty batch would
# take it and send the broker a batch to refuse. The relay's events are about 1 KB.
ALONE_BYTES = 64 * 1024


def create_broker(settings: MessagingSettings, *, client_id: str) -> KafkaBroker:
    return KafkaBroker(
        settings.kafka_servers,
        client_id=client_id,
        # The service's own principal (shared/messaging/principals.py), SASL/SCRAM-SHA-512.
        security=broker_security(credentials(settings, service=client_id)),
        enable_idempotence=True,  # retries never duplicate or reorder within a partition
        acks="all",
        linger_ms=5,  # lets the relay's bursts travel as a few produce requests
        max_batch_size=256 * 1024,
        # Topics are created by the project (deploy/local/create_topics.py), never by accident.
        allow_auto_create_topics=False,
        # FastStream's own lines go through the service's JSON log handler too.
        logger=logging.getLogger(f"renewals.broker.{client_id}"),
    )


class BrokerSender:
    """Sends records through the aiokafka producer the broker connected, as they are: for the
    outbox relay, whose rows are CloudEvents already encoded with their headers.

    Why not `broker.publish`: FastStream builds a publish command, a correlation id and a
    header dict per message and runs its publish middlewares, about 12 of the relay's 28 µs a
    message (bench/message_cost.py); none of it is needed here. Why the broker's own producer
    and not one of the relay's: one idempotent producer per process, with the broker's options
    (its SASL principal, acks, linger), and nothing more to start and stop.
    """

    def __init__(self, broker: KafkaBroker) -> None:
        self.broker = broker

    @property
    def producer(self) -> AIOKafkaProducer:
        # FastStream 0.7 has no public accessor: `config.producer` is its publishing wrapper,
        # whose state holds aiokafka's producer once the broker is connected (IncorrectState
        # before). tests/integration/test_outbox_relay.py fails if that changes.
        state: Any = self.broker.config.producer
        producer: AIOKafkaProducer = state._producer.producer
        return producer

    async def send(
        self,
        topic: str,
        value: bytes,
        *,
        key: bytes | None,
        headers: Sequence[tuple[str, bytes]],
    ) -> asyncio.Future[Any]:
        """Queue the record; returns its acknowledgement to wait for.

        A keyed record goes to the partition aiokafka's default partitioner would pick, computed
        here once per key (`partitioning.partition_of`); before the producer knows the topic
        (its first record), aiokafka picks it itself, the same way."""
        producer = self.producer
        partition = None
        if key is not None:
            partitions = producer.client.cluster.partitions_for_topic(topic)
            if partitions:
                partition = partition_of(key, len(partitions))
        future: asyncio.Future[Any] = await producer.send(
            topic, value, key=key, headers=headers, partition=partition
        )
        return future

    async def send_many(self, topic: str, records: Sequence[Record]) -> list[asyncio.Future[Any]]:
        """Queue the records of one topic, in their order; returns the acknowledgement of each
        (one shared by the records that travel in one batch). Never raises: a record that could
        not be queued has its error as its acknowledgement.

        Why batches: `producer.send` costs about 11 µs of Python a record (its metadata wait,
        serialisation, partitioner and accumulator, each time); appending to an aiokafka batch
        per partition (`create_batch`, `send_batch`) about 2 (bench/message_cost.py). The same
        producer, so the same idempotence (a batch gets its sequence numbers when it is
        drained, whichever way it was made); the partition `send` would choose
        (`partition_of`); a partition's batches are queued in order, so a key's records keep
        theirs. Before the producer knows the topic (its first record), and for a record
        without a key, `send` as before: aiokafka waits for the metadata and picks the
        partition itself.
        """
        producer = self.producer
        partitions = producer.client.cluster.partitions_for_topic(topic)
        acknowledgements: list[asyncio.Future[Any] | None] = [None] * len(records)
        # Per partition: the batch being filled and the positions of its records.
        filling: dict[int, tuple[Any, list[int]]] = {}
        try:
            for position, (key, value, headers) in enumerate(records):
                if key is None or not partitions:
                    acknowledgements[position] = await self.send(
                        topic, value, key=key, headers=headers
                    )
                    continue
                partition = partition_of(key, len(partitions))
                if len(value) > ALONE_BYTES:
                    # After the records of its partition before it.
                    if partition in filling:
                        batch, members = filling.pop(partition)
                        await self._send_batch(batch, topic, partition, members, acknowledgements)
                    acknowledgements[position] = await self.send(
                        topic, value, key=key, headers=headers
                    )
                    continue
                if partition in filling:
                    batch, members = filling[partition]
                    if _append(batch, key, value, headers):
                        members.append(position)
                        continue
                    # Full: off it goes, and a new batch takes the record.
                    await self._send_batch(batch, topic, partition, members, acknowledgements)
                    del filling[partition]
                batch = producer.create_batch()
                _append(batch, key, value, headers)  # an empty batch takes any record
                filling[partition] = (batch, [position])
            for partition, (batch, members) in filling.items():
                await self._send_batch(batch, topic, partition, members, acknowledgements)
        except Exception as error:
            # Refused by the producer itself (too large, a topic that stays unknown, the
            # accumulator full or closed): that record and every one not queued yet are
            # answered with the error; the relay tries each alone, or rolls its claim back.
            return [ack or _failed(error) for ack in acknowledgements]
        return [ack or _failed(RuntimeError("not queued")) for ack in acknowledgements]

    async def _send_batch(
        self,
        batch: Any,
        topic: str,
        partition: int,
        members: list[int],
        acknowledgements: list[asyncio.Future[Any] | None],
    ) -> None:
        sent = await self.producer.send_batch(batch, topic, partition=partition)
        for position in members:
            acknowledgements[position] = sent


def _append(batch: Any, key: bytes, value: bytes, headers: Sequence[tuple[str, bytes]]) -> bool:
    """Whether the batch took the record (False: it is full, and closed itself)."""
    return batch.append(timestamp=None, key=key, value=value, headers=headers) is not None


def _failed(error: BaseException) -> asyncio.Future[Any]:
    failed: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    failed.set_exception(error)
    return failed
