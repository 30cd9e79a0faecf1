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
