"""Dead letters: the original record on `<topic>.dlq` with headers naming the error.

The copy is the original, unchanged, whenever the broker can take it. A record that (with the
dead-letter headers added) would be larger than the broker takes keeps every header and the
start of its body, with `x-dlq-truncated` and `x-dlq-original-size` saying so: the origin
headers (`x-dlq-original-topic`, `-partition`, `-offset`) still lead to the whole original.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiokafka.errors import MessageSizeTooLargeError
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from faststream.kafka import KafkaBroker

log = logging.getLogger(__name__)

ERROR_HEADER = "x-dlq-error"
ERROR_TYPE_HEADER = "x-dlq-error-type"
TRUNCATED_HEADER = "x-dlq-truncated"
ORIGINAL_SIZE_HEADER = "x-dlq-original-size"
HEADERS_DROPPED_HEADER = "x-dlq-original-headers-dropped"

# Room for what the producer adds on top of our headers (FastStream's `content-type` and
# `correlation_id`) and for the record's own varints, in the size estimate.
PRODUCER_SLACK_BYTES = 512
# The size a copy refused by the broker anyway is cut down to (a DLQ topic configured with a
# smaller `max.message.bytes` than the setting says): small enough for any broker.
FALLBACK_MAX_BYTES = 64 * 1024


@dataclass(frozen=True)
class DeadLetter:
    record: Any  # aiokafka ConsumerRecord
    error_type: str
    error: str
    attempts: int = 0  # handling attempts made: 0 for a record that could not even be parsed


@dataclass(frozen=True)
class DeadLetterCopy:
    """What is published to `<topic>.dlq` for one dead letter."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: dict[str, str]


def dead_letter_headers(letter: DeadLetter, *, group_id: str) -> dict[str, str]:
    record = letter.record
    return {**_original_headers(record), **_dlq_headers(letter, group_id=group_id)}


def _original_headers(record: Any) -> dict[str, str]:
    # A header may have no value at all (Kafka allows it) or bytes that are not UTF-8.
    return {name: (value or b"").decode(errors="replace") for name, value in record.headers or ()}


def _dlq_headers(letter: DeadLetter, *, group_id: str) -> dict[str, str]:
    record = letter.record
    return {
        ERROR_HEADER: letter.error[:4000],
        ERROR_TYPE_HEADER: letter.error_type,
        "x-dlq-original-topic": record.topic,
        "x-dlq-original-partition": str(record.partition),
        "x-dlq-original-offset": str(record.offset),
        "x-dlq-consumer-group": group_id,
        "x-dlq-attempts": str(letter.attempts),
        "x-dlq-failed-at": datetime.now(UTC).isoformat(),
    }


def record_size(key: bytes | None, value: bytes | None, headers: dict[str, str]) -> int:
    """The size the producer checks against its `max_request_size`, plus the slack it adds."""
    encoded = [(name, text.encode()) for name, text in headers.items()]
    size = DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, encoded)
    return int(size) + PRODUCER_SLACK_BYTES


def dead_letter_copy(letter: DeadLetter, *, group_id: str, max_bytes: int) -> DeadLetterCopy:
    """The original record with the dead-letter headers, cut to fit in `max_bytes`: first its
    body is truncated; should the headers alone not fit, the original headers are left out."""
    record = letter.record
    topic = f"{record.topic}.dlq"
    headers = dead_letter_headers(letter, group_id=group_id)
    value: bytes | None = record.value
    if record_size(record.key, value, headers) <= max_bytes:
        return DeadLetterCopy(topic, record.key, value, headers)
    original_size = len(value or b"")
    headers = {**headers, TRUNCATED_HEADER: "true", ORIGINAL_SIZE_HEADER: str(original_size)}
    if record_size(record.key, b"", headers) > max_bytes:
        dropped = len(_original_headers(record))
        headers = {
            **_dlq_headers(letter, group_id=group_id),
            TRUNCATED_HEADER: "true",
            ORIGINAL_SIZE_HEADER: str(original_size),
            HEADERS_DROPPED_HEADER: str(dropped),
        }
    body = (value or b"")[: max(0, max_bytes - record_size(record.key, b"", headers))]
    # The record's length varints grow with the body: take off the few bytes they add.
    while body and (excess := record_size(record.key, body, headers) - max_bytes) > 0:
        body = body[: len(body) - excess]
    return DeadLetterCopy(topic, record.key, body, headers)


async def publish_dead_letters(
    broker: KafkaBroker, letters: list[DeadLetter], *, group_id: str, max_bytes: int
) -> None:
    """Publish and wait for the broker's acknowledgement of each, before any offset commit.

    A copy the producer or the broker refuses as too large is cut down to `FALLBACK_MAX_BYTES`
    and published again: a size refusal would otherwise fail the batch, and its redelivery
    would fail the same way, for ever."""
    copies = [
        dead_letter_copy(letter, group_id=group_id, max_bytes=max_bytes) for letter in letters
    ]
    sends: list[asyncio.Future[Any] | BaseException] = []
    for copy in copies:
        try:
            sends.append(await _send(broker, copy))
        except MessageSizeTooLargeError as refused:  # the producer's own check
            sends.append(refused)
    outcomes = await asyncio.gather(
        *(_already(send) if isinstance(send, BaseException) else send for send in sends),
        return_exceptions=True,
    )
    for letter, copy, outcome in zip(letters, copies, outcomes, strict=True):
        if isinstance(outcome, MessageSizeTooLargeError):
            smaller = dead_letter_copy(letter, group_id=group_id, max_bytes=FALLBACK_MAX_BYTES)
            log.warning(
                "dead letter refused as too large; publishing a shorter copy",
                extra={
                    "topic": copy.topic,
                    "bytes": len(copy.value or b""),
                    "cut_to": len(smaller.value or b""),
                    "error": repr(outcome),
                },
            )
            await (await _send(broker, smaller))
        elif isinstance(outcome, BaseException):
            raise outcome


async def _send(broker: KafkaBroker, copy: DeadLetterCopy) -> asyncio.Future[Any]:
    future: asyncio.Future[Any] = await broker.publish(
        copy.value,
        topic=copy.topic,
        key=copy.key,
        headers=copy.headers,
        no_confirm=True,
    )
    return future


async def _already(error: BaseException) -> None:
    raise error
