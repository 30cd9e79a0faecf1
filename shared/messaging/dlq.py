"""Dead letters: the original record, unchanged, on `<topic>.dlq` with headers naming the error."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from faststream.kafka import KafkaBroker

ERROR_HEADER = "x-dlq-error"
ERROR_TYPE_HEADER = "x-dlq-error-type"


@dataclass(frozen=True)
class DeadLetter:
    record: Any  # aiokafka ConsumerRecord
    error_type: str
    error: str
    attempts: int = 0  # handling attempts made: 0 for a record that could not even be parsed


def dead_letter_headers(letter: DeadLetter, *, group_id: str) -> dict[str, str]:
    record = letter.record
    # A header may have no value at all (Kafka allows it) or bytes that are not UTF-8.
    original = {
        name: (value or b"").decode(errors="replace") for name, value in record.headers or ()
    }
    return {
        **original,
        ERROR_HEADER: letter.error[:4000],
        ERROR_TYPE_HEADER: letter.error_type,
        "x-dlq-original-topic": record.topic,
        "x-dlq-original-partition": str(record.partition),
        "x-dlq-original-offset": str(record.offset),
        "x-dlq-consumer-group": group_id,
        "x-dlq-attempts": str(letter.attempts),
        "x-dlq-failed-at": datetime.now(UTC).isoformat(),
    }


async def publish_dead_letters(
    broker: KafkaBroker, letters: list[DeadLetter], *, group_id: str
) -> None:
    """Publish and wait for the broker's acknowledgement of each, before any offset commit."""
    sends = [
        await broker.publish(
            letter.record.value,
            topic=f"{letter.record.topic}.dlq",
            key=letter.record.key,
            headers=dead_letter_headers(letter, group_id=group_id),
            no_confirm=True,
        )
        for letter in letters
    ]
    await asyncio.gather(*sends)
