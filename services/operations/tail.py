"""Follow a topic: its CloudEvents as they arrive (or from the beginning, or since a while ago),
filtered by CSN, type or request id."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from services.operations.kafka import Record, offsets_at, partitions_of, read_range, reader
from shared.contracts.envelope import json_object

_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_since(text: str) -> timedelta:
    """`30s`, `10m`, `2h`, `1d`."""
    match = _DURATION.match(text.strip())
    if not match:
        raise ValueError(f"not a duration: {text!r} (say 30s, 10m, 2h or 1d)")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


@dataclass(frozen=True)
class EventFilter:
    csn: str | None = None
    type: str | None = None
    request_id: str | None = None

    def matches(self, record: Record) -> bool:
        event = decode(record.value)
        if self.csn is not None:
            key = record.key.decode(errors="replace") if record.key is not None else None
            if self.csn not in (key, event.get("subject")):
                return False
        if self.type is not None and event.get("type") != self.type:
            return False
        if self.request_id is not None:
            data = event.get("data")
            if not isinstance(data, dict) or data.get("request_id") != self.request_id:
                return False
        return True


def decode(value: bytes | None) -> dict[str, Any]:
    """The CloudEvent as a dict; `{}` for what is not a JSON object (dead letters can be)."""
    return json_object(value) or {}


def shown(record: Record) -> dict[str, Any]:
    """What `tail --json` prints per record: where it is, its key and headers, the event."""
    event = decode(record.value)
    return {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "timestamp_ms": record.timestamp_ms,
        "key": record.key.decode(errors="replace") if record.key is not None else None,
        "headers": record.headers,
        "event": event if event else (record.value or b"").decode(errors="replace"),
    }


async def tail(
    topic: str,
    *,
    where: EventFilter,
    from_beginning: bool = False,
    since: timedelta | None = None,
    follow: bool = True,
    bootstrap: str | None = None,
) -> AsyncIterator[Record]:
    """The topic's matching records, oldest first; with `follow`, then every new one for ever."""
    async with reader(bootstrap) as consumer:
        partitions = await partitions_of(consumer, topic)
        if from_beginning:
            starts = await consumer.beginning_offsets(partitions)
        elif since is not None:
            starts = await offsets_at(
                consumer, partitions, int((time.time() - since.total_seconds()) * 1000)
            )
        else:
            starts = await consumer.end_offsets(partitions)
        ends = await consumer.end_offsets(partitions)
        async for record in read_range(consumer, dict(starts), ends):
            if where.matches(record):
                yield record
        if not follow:
            return
        consumer.assign(partitions)
        for tp in partitions:
            consumer.seek(tp, max(ends[tp], starts[tp]))
        while True:
            batches = await consumer.getmany(timeout_ms=500, max_records=500)
            for records in batches.values():
                for raw in records:
                    record = Record.of(raw)
                    if where.matches(record):
                        yield record
