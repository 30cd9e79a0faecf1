"""The Kafka broker every service uses, and the outbox relay's producer: both idempotent, acks
from all replicas."""

import logging
from typing import Any

from aiokafka import AIOKafkaProducer
from faststream.kafka import KafkaBroker

from shared.messaging.settings import MessagingSettings

PRODUCER_OPTIONS: dict[str, Any] = {
    "enable_idempotence": True,  # retries never duplicate or reorder within a partition
    "acks": "all",
    "linger_ms": 5,  # lets the relay's bursts travel as a few produce requests
    "max_batch_size": 256 * 1024,
}


def create_broker(settings: MessagingSettings, *, client_id: str) -> KafkaBroker:
    return KafkaBroker(
        settings.kafka_bootstrap,
        client_id=client_id,
        **PRODUCER_OPTIONS,
        # Topics are created by the project (deploy/local/create_topics.py), never by accident.
        allow_auto_create_topics=False,
        # FastStream's own lines go through the service's JSON log handler too.
        logger=logging.getLogger(f"renewals.broker.{client_id}"),
    )


def create_outbox_producer(
    settings: MessagingSettings, *, client_id: str, **overrides: Any
) -> AIOKafkaProducer:
    """aiokafka's producer itself, for the outbox relay: every event the product emits goes out
    through it, and `broker.publish` costs about twice its CPU per message (FastStream builds a
    publish command and runs its middlewares for each). The rows are CloudEvents already
    encoded, so nothing of FastStream's is needed on the way out."""
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        client_id=f"{client_id}-outbox",
        **{**PRODUCER_OPTIONS, **overrides},
    )
