"""Follow one renewal across the services: the events that mention an id (a request id, order
id, subscription id or quote number), then every event of their traces, in time order.

Each event's `traceparent` (CloudEvents distributed tracing, W3C trace context) names its trace
and span, its `tracestate` the span that caused it (shared/messaging/tracing.py). The topics are
read once, from `since` ago to their end, by a consumer of no group.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from services.operations.kafka import (
    UnknownTopicError,
    offsets_at,
    partitions_of,
    read_range,
    reader,
)
from services.operations.tail import decode
from shared.contracts.topics import ALL_TOPICS
from shared.messaging import tracing

DEFAULT_SINCE = timedelta(hours=24)
# The ids an operator follows a renewal by, in the order they are shown.
KEY_FIELDS = (
    "request_id",
    "order_id",
    "quote_number",
    "subscription_id",
    "subscription_ids",
    "notification_id",
    "payment_reference",
)
_MAX_DEPTH = 6  # how deep into an event's data an id is looked for


@dataclass(frozen=True)
class Step:
    """One event of a trace, where it was read, and what it says about the renewal."""

    topic: str
    partition: int
    offset: int
    published_at: datetime  # the record's timestamp: when the service's outbox published it
    event_id: str
    type: str
    source: str
    subject: str
    time: str | None  # the event's own `time`, from the service's clock
    trace_id: str | None
    span_id: str | None
    parent_id: str | None
    keys: dict[str, Any]
    since_start: float = 0.0  # seconds
    since_previous: float = 0.0
    depth: int = 0  # how many causes up to the trace's first event found

    @property
    def service(self) -> str:
        """The last part of the CloudEvents `source` (`/renewals/billing` → `billing`)."""
        return self.source.rstrip("/").rsplit("/", 1)[-1] or self.source

    def as_json(self) -> dict[str, Any]:
        document = asdict(self)
        document["published_at"] = self.published_at.isoformat()
        document["service"] = self.service
        return document


@dataclass
class Trace:
    """What `renewals trace ID` found: the ids of the traces, and their steps in order."""

    id: str
    since: timedelta
    trace_ids: list[str] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "since_seconds": self.since.total_seconds(),
            "trace_ids": self.trace_ids,
            "steps": [step.as_json() for step in self.steps],
        }


def read_step(record: Any) -> tuple[Step, dict[str, Any]] | None:
    """The step a record is and its event's data, or None for what is not a CloudEvent."""
    event = decode(record.value)
    if not isinstance(event.get("type"), str) or not isinstance(event.get("id"), str):
        return None
    span = tracing.parse(_text(event.get("traceparent")), _text(event.get("tracestate")))
    data = event.get("data")
    data = data if isinstance(data, dict) else {}
    step = Step(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        published_at=datetime.fromtimestamp(record.timestamp_ms / 1000, UTC),
        event_id=event["id"],
        type=event["type"],
        source=str(event.get("source", "?")),
        subject=str(event.get("subject", "")),
        time=_text(event.get("time")),
        trace_id=span.trace_id if span else None,
        span_id=span.span_id if span else None,
        parent_id=span.parent_id if span else None,
        keys={name: data[name] for name in KEY_FIELDS if data.get(name) is not None},
    )
    return step, data


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def mentions(value: Any, wanted: str, depth: int = 0) -> bool:
    """Whether `wanted` is one of the strings of an event's data (ids in lists and nested
    outcomes included)."""
    if isinstance(value, str):
        return value == wanted
    if depth >= _MAX_DEPTH:
        return False
    if isinstance(value, dict):
        return any(mentions(item, wanted, depth + 1) for item in value.values())
    if isinstance(value, list):
        return any(mentions(item, wanted, depth + 1) for item in value)
    return False


def assemble(wanted: str, read: Iterable[tuple[Step, bool]], since: timedelta) -> Trace:
    """The trace of `wanted` out of the events read, each with whether it mentions `wanted`:
    those that do, and every event of their traces, oldest first, each with its time since the
    start and since the step before, and its depth in the tree of causes."""
    by_trace: dict[str, list[Step]] = {}
    found: list[Step] = []  # those that mention it but carry no trace
    trace_ids: dict[str, None] = {}
    for step, mentioned in read:
        if step.trace_id is not None:
            by_trace.setdefault(step.trace_id, []).append(step)
        if mentioned:
            if step.trace_id is None:
                found.append(step)
            else:
                trace_ids.setdefault(step.trace_id)
    steps = found + [step for trace_id in trace_ids for step in by_trace[trace_id]]
    unique = {(s.topic, s.partition, s.offset): s for s in steps}  # a record read once
    return Trace(wanted, since, list(trace_ids), _in_order(list(unique.values())))


def _in_order(steps: list[Step]) -> list[Step]:
    depths = _depths(steps)
    # Published within the same millisecond, a cause still goes before what it caused.
    steps.sort(key=lambda s: (s.published_at, depths.get(s.span_id or "", 0), s.topic, s.offset))
    ordered: list[Step] = []
    for step in steps:
        start = ordered[0].published_at if ordered else step.published_at
        previous = ordered[-1].published_at if ordered else step.published_at
        ordered.append(
            _with(
                step,
                since_start=(step.published_at - start).total_seconds(),
                since_previous=(step.published_at - previous).total_seconds(),
                depth=depths.get(step.span_id or "", 0),
            )
        )
    return ordered


def _with(step: Step, **changes: Any) -> Step:
    return Step(**{**asdict(step), **changes})


def _depths(steps: list[Step]) -> dict[str, int]:
    """Each span's number of causes up to the first one found (a cause not read — outside
    the window, or a consumer's own root — ends the chain)."""
    parent_of = {s.span_id: s.parent_id for s in steps if s.span_id}
    depths: dict[str, int] = {}
    for span_id in parent_of:
        depth, cursor, seen = 0, parent_of[span_id], {span_id}
        while cursor in parent_of and cursor not in seen:
            seen.add(cursor)
            depth += 1
            cursor = parent_of[cursor]
        depths[span_id] = depth
    return depths


def contract_topics() -> list[str]:
    """Every contract topic and its dead letters: a poisoned step is part of the path too."""
    return [name for topic in ALL_TOPICS for name in (topic.name, topic.dlq)]


async def trace(
    wanted: str,
    *,
    since: timedelta = DEFAULT_SINCE,
    topics: list[str] | None = None,
    bootstrap: str | None = None,
) -> Trace:
    """The trace of an id over the last `since`, read from every contract topic."""
    read: list[tuple[Step, bool]] = []  # the events' data is not kept: a day of them is big
    async with reader(bootstrap) as consumer:
        starts = {}
        for topic in topics or contract_topics():
            try:
                partitions = await partitions_of(consumer, topic)
            except UnknownTopicError:
                continue  # a dead-letter topic not made yet
            starts.update(
                await offsets_at(
                    consumer, partitions, int((time.time() - since.total_seconds()) * 1000)
                )
            )
        async for record in read_range(consumer, starts):
            parsed = read_step(record)
            if parsed is not None:
                step, data = parsed
                read.append((step, step.event_id == wanted or mentions(data, wanted)))
    return assemble(wanted, read, since)
