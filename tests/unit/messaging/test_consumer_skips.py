"""Issue 19 item 3: a consumer skips, unparsed, the types its service takes no action on.

The outbox writes each event's type in the `ce-type` header; `dispatch_some` says which types of
the topic its service ignores; the consumer skips a record whose header names one of them
before any validation, without an inbox row, and counts it. The rest is validated straight from
its bytes (item 6) — the body's own `type` still decides what the event is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import REGISTRY

from shared.contracts import catalog_events
from shared.contracts.envelope import TYPE_HEADER, CloudEvent, encode
from shared.messaging.consumer import (
    Delivery,
    EventConsumer,
    UnitOfWork,
    dispatch_by_type,
    dispatch_some,
    header_type,
)
from shared.messaging.outbox import Outbox
from tests.unit.messaging.catalog_records import (
    TOPIC,
    FakeRecord,
    consumer_of,
    price_event,
    spring_promotion,
)

PRICE, PROMOTION = "price.published", "promotion.published"


def as_outbox_writes_it(event: CloudEvent[Any], offset: int = 0) -> FakeRecord:
    """The record the relay publishes for `event`: its value and the outbox's headers."""
    outbox = Outbox()
    outbox.add(TOPIC, event)
    [(_, key, value, headers)] = outbox.rows
    listed = tuple((name, text.encode()) for name, text in json.loads(headers).items())
    return FakeRecord(value, offset=offset, key=key, headers=listed)


@dataclass
class Calls:
    prices: list[str] = field(default_factory=list)

    async def handle(self, unit: UnitOfWork, delivery: Delivery) -> None:
        self.prices.append(delivery.event.id)


def consumer(calls: Calls, *, only_prices: bool = True) -> EventConsumer:
    handlers = {catalog_events.PricePublished: calls.handle}
    return consumer_of(
        (
            dispatch_some(catalog_events.REGISTRY, handlers)
            if only_prices
            else dispatch_by_type(handlers)
        ),
        service="test-skips",
    )


def skipped_count(event_type: str) -> float:
    labels = {"service": "test-skips", "topic": TOPIC.name, "type": event_type}
    return REGISTRY.get_sample_value("renewals_messages_skipped_total", labels) or 0.0


def test_dispatch_some_ignores_the_types_it_has_no_handler_for() -> None:
    handler = dispatch_some(
        catalog_events.REGISTRY, {catalog_events.PricePublished: Calls().handle}
    )
    assert handler.ignored == frozenset({PROMOTION})
    # dispatch_by_type ignores nothing: a type it lacks is a dead letter, not a skip.
    assert dispatch_by_type({catalog_events.PricePublished: Calls().handle}).ignored == frozenset()


def test_the_outbox_writes_the_type_header_the_consumer_reads() -> None:
    event = spring_promotion()
    assert header_type(as_outbox_writes_it(event).headers) == PROMOTION
    assert header_type(()) is None
    assert header_type(((TYPE_HEADER, None),)) is None
    assert header_type(((TYPE_HEADER, b"\xff\xfe"),)) is None


def test_a_record_of_an_ignored_type_is_skipped_unparsed_and_counted() -> None:
    promotion, kept = spring_promotion(), price_event()
    # Its value is not even JSON: had it been parsed, it would be a dead letter.
    unparsable = FakeRecord(
        b"\x00 not json", offset=1, headers=((TYPE_HEADER, PROMOTION.encode()),)
    )

    deliveries, letters, skipped = consumer(Calls())._parse(
        [as_outbox_writes_it(promotion), unparsable, as_outbox_writes_it(kept, offset=2)]
    )

    assert [d.event.id for d in deliveries] == [kept.id]
    assert letters == []
    assert skipped == {PROMOTION: 2}


def test_without_its_header_an_ignored_type_is_parsed_and_ignored() -> None:
    promotion = spring_promotion()

    deliveries, letters, skipped = consumer(Calls())._parse([FakeRecord(encode(promotion))])

    assert [d.event.id for d in deliveries] == [promotion.id]
    assert (letters, skipped) == ([], {})


def test_a_consumer_that_ignores_nothing_skips_nothing() -> None:
    promotion = spring_promotion()

    deliveries, letters, skipped = consumer(Calls(), only_prices=False)._parse(
        [as_outbox_writes_it(promotion)]
    )

    assert [d.event.id for d in deliveries] == [promotion.id]
    assert (letters, skipped) == ([], {})


async def test_a_batch_of_ignored_types_only_touches_no_database_and_calls_no_handler() -> None:
    """The pool is never opened here: an inbox row or a handler call would raise."""
    calls = Calls()
    before = skipped_count(PROMOTION)

    await consumer(calls).consume_batch(
        [as_outbox_writes_it(spring_promotion(), offset=i) for i in range(3)]
    )

    assert calls.prices == []
    assert skipped_count(PROMOTION) == before + 3
