"""Dead-letter copies that fit the broker (issue 15 item 1): a record too large to be copied
whole keeps its headers and the start of its body, and says so."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from aiokafka.errors import MessageSizeTooLargeError

from shared.messaging.dlq import (
    ERROR_HEADER,
    FALLBACK_MAX_BYTES,
    HEADERS_DROPPED_HEADER,
    ORIGINAL_SIZE_HEADER,
    TRUNCATED_HEADER,
    DeadLetter,
    dead_letter_copy,
    publish_dead_letters,
    record_size,
)

LIMIT = 1_048_576


@dataclass(frozen=True)
class FakeRecord:
    value: bytes | None
    offset: int = 7
    key: bytes | None = b"CSN-1"
    topic: str = "renewal.commands"
    partition: int = 2
    headers: tuple[tuple[str, bytes | None], ...] = (("traceparent", b"00-ab"),)


def letter(value: bytes | None, **fields: Any) -> DeadLetter:
    return DeadLetter(FakeRecord(value, **fields), "InvalidEventError", "not JSON: Expecting")


def test_a_record_that_fits_is_copied_unchanged() -> None:
    copy = dead_letter_copy(letter(b"x" * 1000), group_id="g", max_bytes=LIMIT)

    assert copy.value == b"x" * 1000
    assert copy.topic == "renewal.commands.dlq"
    assert copy.key == b"CSN-1"
    assert TRUNCATED_HEADER not in copy.headers
    assert copy.headers["traceparent"] == "00-ab"


def test_a_record_near_the_limit_keeps_its_headers_and_the_start_of_its_body() -> None:
    # It fitted the topic; with the dead-letter headers added it would not fit the DLQ's.
    value = b"{" + b"y" * (LIMIT - 300)
    assert record_size(b"CSN-1", value, {"traceparent": "00-ab"}) <= LIMIT + 512

    copy = dead_letter_copy(letter(value), group_id="g", max_bytes=LIMIT)

    assert record_size(copy.key, copy.value, copy.headers) <= LIMIT
    assert copy.value is not None and value.startswith(copy.value)
    assert len(copy.value) > LIMIT - 10_000  # cut by what the headers need, not more
    assert copy.headers[TRUNCATED_HEADER] == "true"
    assert copy.headers[ORIGINAL_SIZE_HEADER] == str(len(value))
    assert copy.headers["x-dlq-original-topic"] == "renewal.commands"
    assert copy.headers["x-dlq-original-partition"] == "2"
    assert copy.headers["x-dlq-original-offset"] == "7"
    assert copy.headers[ERROR_HEADER] == "not JSON: Expecting"
    assert copy.headers["traceparent"] == "00-ab"
    assert HEADERS_DROPPED_HEADER not in copy.headers


def test_original_headers_too_large_to_keep_are_left_out_and_counted() -> None:
    headers = tuple((f"h{n}", b"z" * 40_000) for n in range(3))

    copy = dead_letter_copy(letter(b"body" * 10, headers=headers), group_id="g", max_bytes=65_536)

    assert record_size(copy.key, copy.value, copy.headers) <= 65_536
    assert copy.headers[HEADERS_DROPPED_HEADER] == "3"
    assert not any(name.startswith("h") for name in copy.headers)
    assert copy.headers["x-dlq-original-offset"] == "7"
    assert copy.value == b"body" * 10  # the body itself fitted


@dataclass
class RefusingBroker:
    """Accepts what is at most `accepts` bytes; refuses larger records as the broker does."""

    accepts: int
    published: list[dict[str, Any]] = field(default_factory=list)

    async def publish(self, value: bytes | None, **fields: Any) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if len(value or b"") > self.accepts:
            future.set_exception(MessageSizeTooLargeError("MESSAGE_TOO_LARGE"))
        else:
            self.published.append({"value": value, **fields})
            future.set_result(None)
        return future


async def test_a_copy_the_broker_refuses_as_too_large_is_published_shorter() -> None:
    """Were the refusal to fail the batch, its redelivery would fail the same way, for ever."""
    broker = RefusingBroker(accepts=200_000)  # a DLQ topic with a smaller max.message.bytes
    big, small = letter(b"b" * 500_000, offset=1), letter(b"small", offset=2)

    await publish_dead_letters(broker, [big, small], group_id="g", max_bytes=LIMIT)  # type: ignore[arg-type]

    by_offset = {p["headers"]["x-dlq-original-offset"]: p for p in broker.published}
    assert by_offset["2"]["value"] == b"small"
    shorter = by_offset["1"]
    assert 0 < len(shorter["value"]) <= FALLBACK_MAX_BYTES
    assert shorter["headers"][ORIGINAL_SIZE_HEADER] == "500000"
    assert shorter["headers"][TRUNCATED_HEADER] == "true"
