"""The Kafka broker every service uses: its own principal, idempotent producer, acks from all
replicas."""

import logging

from faststream.kafka import KafkaBroker

from shared.messaging.credentials import broker_security, credentials
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
