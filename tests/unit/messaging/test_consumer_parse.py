"""The consumer's first step: each record parsed on its own, bad ones set aside as dead letters."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest
from aiokafka.structs import ConsumerRecord
from faststream.kafka.message import KafkaMessage
from faststream.kafka.parser import AioKafkaBatchParser

from deploy.local.samples import price
from shared.contracts import catalog_events
from shared.contracts.envelope import TYPE_HEADER, CloudEvent, encode
from shared.messaging.consumer import (
    Delivery,
    EventConsumer,
    PermanentError,
    UnitOfWork,
    _raw_values,
    _tolerant_batch_parser,
    dispatch_by_type,
    handles_batch,
    header_type,
)
from shared.messaging.dlq import ERROR_HEADER, ERROR_TYPE_HEADER, DeadLetter, dead_letter_headers
from tests.unit.messaging.catalog_records import (
    TOPIC,
    FakeRecord,
    consumer_of,
    price_event,
    spring_promotion,
)


def consumer() -> EventConsumer:
    async def unused(unit: UnitOfWork, deliveries: list[Delivery]) -> None:
        raise AssertionError("parsing never calls the handler")

    return consumer_of(unused)


def records(*values: bytes | None) -> list[FakeRecord]:
    return [FakeRecord(value, offset=offset) for offset, value in enumerate(values)]


def valid_json_with(**changes: Any) -> bytes:
    document = json.loads(encode(price_event()))
    document.update(changes)
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (b"\xff\xfe not json at all", "not JSON"),
        (b"{truncated", "not JSON"),
        (b"[1, 2, 3]", "not a CloudEvent: the JSON is not an object"),
        (b'"a string"', "not a CloudEvent: the JSON is not an object"),
        (None, "empty message"),
        (valid_json_with(type="price.withdrawn"), "unknown type 'price.withdrawn'"),
        (b'{"hello": "world"}', "unknown type None"),
        (valid_json_with(data={"product_code": "ACDLT"}), "data.term: Field required"),
        (
            valid_json_with(data={**price().model_dump(mode="json"), "list_price": 466.0}),
            "data.list_price",
        ),
        (valid_json_with(specversion="0.3"), "specversion"),
    ],
    ids=[
        "garbage-bytes",
        "truncated-json",
        "json-array",
        "json-string",
        "no-value",
        "unknown-type",
        "not-a-cloudevent",
        "missing-field",
        "money-as-float",
        "wrong-specversion",
    ],
)
def test_a_bad_record_becomes_a_dead_letter_naming_its_problem(
    value: bytes | None, problem: str
) -> None:
    deliveries, letters, _ = consumer()._parse(records(value))

    assert deliveries == []
    [letter] = letters
    assert letter.error_type == "InvalidEventError"
    assert problem in letter.error
    assert letter.record.value == value


def nested_json(size: int = 10_000) -> bytes:
    """About `size` bytes of JSON nested deeper than Python's recursion limit (issue 15)."""
    depth = size // 2
    return b"[" * depth + b"]" * depth


def huge_integer_json() -> bytes:
    """Valid JSON whose integer has more digits than Python converts by default (ValueError)."""
    return b'{"type": "price.published", "n": ' + b"7" * 5000 + b"}"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (nested_json(), "RecursionError"),
        (b'{"data": ' * 2000 + b"1" + b"}" * 2000, "RecursionError"),
        (huge_integer_json(), "integer string conversion"),
        (b"null", "not a CloudEvent"),
        (b"42", "not a CloudEvent"),
    ],
    ids=["nested-arrays", "nested-objects", "huge-integer", "json-null", "json-number"],
)
def test_any_failure_of_json_decoding_is_a_dead_letter_too(value: bytes, problem: str) -> None:
    """Issue 15 item 1: these escaped `_parse` and rewound the batch for ever."""
    valid = price_event()

    deliveries, letters, _ = consumer()._parse(records(value, encode(valid)))

    assert [d.event.id for d in deliveries] == [valid.id]  # the rest of the batch proceeds
    [letter] = letters
    assert letter.error_type == "InvalidEventError"
    assert problem in letter.error
    assert letter.record.offset == 0


def test_an_unexpected_exception_while_parsing_one_record_dead_letters_that_record() -> None:
    """Whatever a parser bug raises for one record, the record is set aside with the error's
    type and message, and the rest of the batch proceeds."""

    class FaultyRegistry:
        topic = TOPIC.name

        def parse(self, raw: bytes | None, type_hint: str | None = None) -> CloudEvent[Any]:
            if raw == b"bad":
                raise KeyError("a parser bug")
            return catalog_events.REGISTRY.parse(raw, type_hint)

    valid = price_event()
    faulty = consumer()
    faulty.registry = FaultyRegistry()  # type: ignore[assignment]

    deliveries, letters, _ = faulty._parse(records(b"bad", encode(valid)))

    assert [d.event.id for d in deliveries] == [valid.id]
    [letter] = letters
    assert (letter.error_type, letter.error) == ("KeyError", "'a parser bug'")


def test_a_batch_is_split_into_deliveries_and_dead_letters_in_record_order() -> None:
    first, second = price_event(), price_event(product_code="ACAD")
    batch = records(b"garbage", encode(first), b"[]", encode(second), None)

    deliveries, letters, _ = consumer()._parse(batch)

    assert [d.event.id for d in deliveries] == [first.id, second.id]
    assert [d.record.offset for d in deliveries] == [1, 3]
    assert [letter.record.offset for letter in letters] == [0, 2, 4]
    assert deliveries[1].data == price(product_code="ACAD")
    assert isinstance(deliveries[0].data, catalog_events.PricePublished)


def test_the_same_event_id_twice_in_one_batch_is_handled_once() -> None:
    event = price_event()
    other = price_event()
    # A redelivered copy may even differ in its bytes (another producer re-serialised it):
    # the id is what makes it the same event.
    copy = price_event(event_id=event.id, list_price="999.00")

    deliveries, letters, _ = consumer()._parse(
        records(encode(event), encode(other), encode(event), encode(copy))
    )

    assert letters == []
    assert [d.event.id for d in deliveries] == [event.id, other.id]
    assert deliveries[0].record.offset == 0  # the first copy is the one kept


def test_dead_letter_headers_keep_the_original_headers_and_name_the_error_and_origin() -> None:
    record = FakeRecord(
        b"garbage",
        offset=41,
        partition=3,
        topic="catalog.events",
        headers=(("content-type", b"application/cloudevents+json"), ("traceparent", b"00-ab")),
    )
    letter = DeadLetter(record, "InvalidEventError", "not JSON: Expecting value", attempts=3)

    headers = dead_letter_headers(letter, group_id="quote.catalog.events")

    assert headers["content-type"] == "application/cloudevents+json"
    assert headers["traceparent"] == "00-ab"
    assert headers[ERROR_HEADER] == "not JSON: Expecting value"
    assert headers[ERROR_TYPE_HEADER] == "InvalidEventError"
    assert headers["x-dlq-original-topic"] == "catalog.events"
    assert headers["x-dlq-original-partition"] == "3"
    assert headers["x-dlq-original-offset"] == "41"
    assert headers["x-dlq-consumer-group"] == "quote.catalog.events"
    assert headers["x-dlq-attempts"] == "3"
    assert datetime.fromisoformat(headers["x-dlq-failed-at"]).tzinfo is not None
    assert all(isinstance(value, str) for value in headers.values())


def test_dead_letter_headers_of_a_record_with_a_null_or_binary_header_value() -> None:
    """Kafka allows a header without a value: it must not fail the dead letter (issue 15)."""
    record = FakeRecord(b"x", headers=(("empty", None), ("binary", b"\xff\xfe")))  # type: ignore[arg-type]
    letter = DeadLetter(record, "InvalidEventError", "not JSON")

    headers = dead_letter_headers(letter, group_id="g")

    assert headers["empty"] == ""
    assert headers["binary"] == "\ufffd\ufffd"
    assert headers[ERROR_HEADER] == "not JSON"


def test_dead_letter_headers_cap_a_huge_error_message() -> None:
    letter = DeadLetter(FakeRecord(b"x"), "InvalidEventError", "e" * 10_000)

    headers = dead_letter_headers(letter, group_id="g")

    assert len(headers[ERROR_HEADER]) == 4000


def test_dead_letter_headers_of_a_record_without_headers() -> None:
    letter = DeadLetter(FakeRecord(b"x", headers=()), "ValueError", "boom")

    headers = dead_letter_headers(letter, group_id="g")

    assert headers[ERROR_HEADER] == "boom"
    assert all(name.startswith("x-dlq-") for name in headers)


async def test_dispatch_by_type_hands_each_delivery_in_order_to_its_handler() -> None:
    seen: list[str] = []

    async def on_price(unit: UnitOfWork, delivery: Delivery) -> None:
        seen.append(delivery.data.product_code)

    handle = dispatch_by_type({catalog_events.PricePublished: on_price})
    deliveries = [
        Delivery(price_event(product_code=code), FakeRecord(None)) for code in ("A", "B", "C")
    ]

    await handle(UnitOfWork(connection=None), deliveries)  # type: ignore[arg-type]

    assert seen == ["A", "B", "C"]


async def test_dispatch_by_type_refuses_an_unhandled_type_as_a_permanent_error() -> None:
    async def on_price(unit: UnitOfWork, delivery: Delivery) -> None:
        raise AssertionError("not called for a promotion")

    handle = dispatch_by_type({catalog_events.PricePublished: on_price})
    delivery = Delivery(spring_promotion(), FakeRecord(None))

    with pytest.raises(PermanentError, match=r"promotion\.published is not handled"):
        await handle(UnitOfWork(connection=None), [delivery])  # type: ignore[arg-type]


async def test_a_batch_handler_gets_all_its_deliveries_at_once_in_order() -> None:
    calls: list[list[str]] = []
    singles: list[str] = []

    async def on_prices(unit: UnitOfWork, deliveries: list[Delivery]) -> None:
        calls.append([d.data.product_code for d in deliveries])

    async def on_promotion(unit: UnitOfWork, delivery: Delivery) -> None:
        singles.append(delivery.data.promotion_code)

    handle = dispatch_by_type(
        {
            catalog_events.PricePublished: handles_batch(on_prices),
            catalog_events.PromotionPublished: on_promotion,
        }
    )
    deliveries = [
        Delivery(price_event(product_code="A"), FakeRecord(None)),
        Delivery(spring_promotion(), FakeRecord(None)),
        Delivery(price_event(product_code="B"), FakeRecord(None)),
        Delivery(price_event(product_code="C"), FakeRecord(None)),
    ]

    await handle(UnitOfWork(connection=None), deliveries)  # type: ignore[arg-type]

    assert calls == [["A", "B", "C"]]
    assert singles == ["SPRING"]


async def test_a_batch_handler_registered_for_two_types_gets_them_together_in_order() -> None:
    seen: list[list[str]] = []

    async def on_catalog(unit: UnitOfWork, deliveries: list[Delivery]) -> None:
        seen.append([d.event.type for d in deliveries])

    both = handles_batch(on_catalog)
    handle = dispatch_by_type(
        {catalog_events.PricePublished: both, catalog_events.PromotionPublished: both}
    )
    deliveries = [
        Delivery(price_event(product_code="A"), FakeRecord(None)),
        Delivery(spring_promotion(), FakeRecord(None)),
    ]

    await handle(UnitOfWork(connection=None), deliveries)  # type: ignore[arg-type]

    assert seen == [["price.published", "promotion.published"]]


# Validation straight from the bytes, by the `ce-type` header (issue 19 item 6) ---------------


def typed(value: bytes, event_type: str, offset: int = 0) -> FakeRecord:
    """A record with the `ce-type` header the outbox writes."""
    return FakeRecord(value, offset=offset, headers=((TYPE_HEADER, event_type.encode()),))


def test_a_record_with_its_type_header_gives_the_same_event_as_without() -> None:
    event = price_event()

    [with_header], _, _ = consumer()._parse([typed(encode(event), "price.published")])
    [without], _, _ = consumer()._parse(records(encode(event)))

    assert with_header.event == without.event == event


def test_the_body_type_decides_when_the_header_names_another() -> None:
    """The header is a hint for validation: a body of another type is read as what it is."""
    event = spring_promotion()

    [delivery], letters, _ = consumer()._parse([typed(encode(event), "price.published")])

    assert isinstance(delivery.data, catalog_events.PromotionPublished)
    assert letters == []


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (valid_json_with(data={**price().model_dump(mode="json"), "list_price": 466.0}), "list"),
        (valid_json_with(type="price.withdrawn"), "unknown type 'price.withdrawn'"),
        (b"{truncated", "not JSON"),
        (None, "empty message"),
    ],
    ids=["money-as-float", "unknown-body-type", "truncated-json", "no-value"],
)
def test_a_bad_record_under_a_valid_type_header_is_a_dead_letter_naming_its_problem(
    value: bytes | None, problem: str
) -> None:
    record = FakeRecord(value, headers=((TYPE_HEADER, b"price.published"),))

    deliveries, letters, _ = consumer()._parse([record])

    assert deliveries == []
    [letter] = letters
    assert letter.error_type == "InvalidEventError"
    assert problem in letter.error


def test_the_type_header_is_read_whatever_its_bytes() -> None:
    assert header_type(((TYPE_HEADER, b"price.published"),)) == "price.published"
    assert header_type(()) is None
    assert header_type(None) is None
    assert header_type(((TYPE_HEADER, None),)) is None
    assert header_type(((TYPE_HEADER, b"\xff\xfe"),)) is None


async def test_faststream_parses_one_record_of_the_batch_and_the_message_carries_them_all() -> None:
    """FastStream's parser decodes every header it is shown: a header without value, or not
    UTF-8, would fail it. It is shown a readable copy of the first record only (the message's
    id and consumer come from it); the message carries every record as it came."""
    faststream = AioKafkaBatchParser(msg_class=KafkaMessage, regex=None)
    shown: list[tuple[Any, ...]] = []

    async def faststream_parser(readable: tuple[Any, ...]) -> KafkaMessage:
        shown.append(readable)
        return await faststream.parse_batch(readable)  # type: ignore[return-value]

    batch = tuple(
        ConsumerRecord(
            topic=TOPIC.name,
            partition=0,
            offset=offset,
            timestamp=1_700_000_000_000,
            timestamp_type=0,
            key=b"ACDLT",
            value=b"v",
            checksum=None,
            serialized_key_size=5,
            serialized_value_size=1,
            headers=[("x-bin", b"\xff"), ("x-none", None)],
        )
        for offset in range(3)
    )
    with pytest.raises((UnicodeDecodeError, AttributeError)):
        await faststream.parse_batch(batch)  # FastStream alone fails on these headers

    message = await _tolerant_batch_parser(batch, faststream_parser)

    assert [len(records) for records in shown] == [1]
    assert message.raw_message == batch
    assert message.body == [b"v", b"v", b"v"]
    assert await _raw_values(message) == [b"v", b"v", b"v"]
