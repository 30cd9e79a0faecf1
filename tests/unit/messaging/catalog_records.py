"""What the consumer's unit tests hand it: catalog records as aiokafka gives them, catalog
events, and a consumer that never opens a database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from deploy.local.samples import price
from shared.contracts import catalog_events
from shared.contracts.envelope import CloudEvent, EventRegistry, new_event
from shared.contracts.topics import Topic
from shared.messaging.consumer import BatchHandler, EventConsumer, PoolHolder
from shared.messaging.settings import MessagingSettings
from shared.messaging.signing import SignatureVerifier
from shared.plumbing.faults import FaultPoints

TOPIC = catalog_events.TOPIC
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class FakeRecord:
    """The fields of an aiokafka ConsumerRecord the consumer reads."""

    value: bytes | None
    offset: int = 0
    key: bytes | None = b"ACDLT"
    topic: str = TOPIC.name
    partition: int = 0
    headers: tuple[tuple[str, bytes | None], ...] = ()


def price_event(event_id: str | None = None, **fields: Any) -> CloudEvent[Any]:
    """A `price.published` of ACDLT (`fields` change the price)."""
    return new_event(
        price(**fields), subject="ACDLT", source="/catalog", time=NOW, event_id=event_id
    )


def spring_promotion(percent_off: str = "15") -> CloudEvent[Any]:
    """A `promotion.published`: SPRING, `percent_off` on ACDLT for March."""
    promotion = catalog_events.PromotionPublished(
        promotion_code="SPRING",
        product_codes=["ACDLT"],
        percent_off=percent_off,  # type: ignore[arg-type]
        starts_on=NOW.date(),
        ends_on=datetime(2025, 4, 1, tzinfo=UTC).date(),
    )
    return new_event(promotion, subject="ACDLT", source="/catalog", time=NOW)


def consumer_of(
    handler: BatchHandler,
    *,
    service: str = "test",
    topic: Topic = TOPIC,
    registry: EventRegistry = catalog_events.REGISTRY,
    verifier: SignatureVerifier | None = None,
) -> EventConsumer:
    """The service's consumer of `topic` (its group `<service>.<topic>`), on a pool that is never
    opened: a database access would raise."""
    return EventConsumer(
        service=service,
        topic=topic,
        registry=registry,
        group_id=f"{service}.{topic.name}",
        handler=handler,
        pools=PoolHolder(),
        settings=MessagingSettings(),
        faults=FaultPoints(),
        verifier=verifier,
    )
