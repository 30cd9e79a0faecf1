"""Every topic of the contract: partitions, end offsets, messages per second over the last
minute, and for each consumer group that reads it, its lag (end offset minus committed offset,
summed over the partitions) and whether any consumer still belongs to it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from services.operations.kafka import admin, offsets_at, partitions_of, reader
from shared.contracts.topics import ALL_TOPICS

RATE_WINDOW_SECONDS = 60


@dataclass(frozen=True)
class GroupLag:
    group: str
    lag: int
    committed: int  # committed offsets summed: grows as the group works
    # No consumer belongs to the group: a service stopped, renamed or gone. Its lag only grows.
    active: bool = True
    # When the newest message it had read was written (ms since the epoch): how long ago the
    # group last did anything, at most (Kafka keeps no commit time that the admin API returns).
    last_read_ms: int | None = None

    @property
    def stale(self) -> bool:
        return not self.active


@dataclass(frozen=True)
class TopicStats:
    topic: str
    partitions: int
    end_offset: int  # summed over the partitions: every message the topic ever got
    per_second: float  # over the last RATE_WINDOW_SECONDS
    groups: list[GroupLag] = field(default_factory=list)

    @property
    def lag(self) -> int:
        return max((g.lag for g in self.groups), default=0)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "lag": self.lag}


def contract_topics(include_dlq: bool = True) -> list[str]:
    names = [t.name for t in ALL_TOPICS]
    return names + [t.dlq for t in ALL_TOPICS] if include_dlq else names


async def topic_stats(
    topics: Sequence[str] | None = None, *, bootstrap: str | None = None
) -> list[TopicStats]:
    names = list(topics) if topics else contract_topics(include_dlq=False)
    async with reader(bootstrap) as consumer, admin(bootstrap) as client:
        partitions = {name: await partitions_of(consumer, name) for name in names}
        every = [tp for tps in partitions.values() for tp in tps]
        ends = await consumer.end_offsets(every)
        starts = await consumer.beginning_offsets(every)
        since = int((time.time() - RATE_WINDOW_SECONDS) * 1000)
        minute_ago = await offsets_at(consumer, every, since)
        groups = [g for g, _protocol in await client.list_consumer_groups()]
        committed_by_group = await asyncio.gather(
            *(client.list_consumer_group_offsets(g) for g in groups)
        )
        active = await active_groups(client, groups)
        # Only the stale groups' last reads are looked up: a live group's is about now.
        stale_positions = {
            (tp, meta.offset)
            for group, committed in zip(groups, committed_by_group, strict=True)
            if group not in active
            for tp, meta in committed.items()
            if tp.topic in partitions and meta.offset > starts.get(tp, 0)
        }
        read_at = await last_read_times(consumer, stale_positions)
    lags: dict[str, list[GroupLag]] = {name: [] for name in names}
    for group, committed in zip(groups, committed_by_group, strict=True):
        for name in names:
            offsets = {tp: meta.offset for tp, meta in committed.items() if tp.topic == name}
            if not offsets:
                continue
            lag = unread(partitions[name], offsets, ends, starts)
            done = sum(max(o, 0) for o in offsets.values())
            times = [read_at[(tp, o)] for tp, o in offsets.items() if (tp, o) in read_at]
            lags[name].append(
                GroupLag(group, lag, done, group in active, max(times) if times else None)
            )
    return [
        TopicStats(
            topic=name,
            partitions=len(partitions[name]),
            end_offset=sum(ends[tp] for tp in partitions[name]),
            per_second=round(
                sum(ends[tp] - minute_ago[tp] for tp in partitions[name]) / RATE_WINDOW_SECONDS,
                2,
            ),
            groups=sorted(lags[name], key=lambda g: g.group),
        )
        for name in names
    ]


def unread(
    partitions: Sequence[TopicPartition],
    committed: dict[TopicPartition, int],
    ends: dict[TopicPartition, int],
    starts: dict[TopicPartition, int],
) -> int:
    """A group's lag on these partitions: what it has still to read. A partition never
    committed counts from its oldest message kept: the group will read all of it."""
    return sum(ends[tp] - max(committed.get(tp, -1), starts[tp]) for tp in partitions)


async def describe_groups(client: Any, groups: Sequence[str]) -> list[tuple[Any, ...]]:
    """Each group's description: (error_code, group, state, protocol_type, protocol, members,
    ...), `state` one of Kafka's (Stable, PreparingRebalance, CompletingRebalance, Empty, Dead)."""
    # One group per request: aiokafka 0.14 decodes a DescribeGroups v3 answer with the v2
    # layout (no `authorized_operations` after each group), which misreads every group after
    # the first; with one group the unread trailing field is harmless.
    answers = await asyncio.gather(*(client.describe_consumer_groups([g]) for g in groups))
    return [
        description
        for responses in answers
        for response in responses
        for description in response.groups
    ]


async def active_groups(client: Any, groups: Sequence[str]) -> set[str]:
    """The groups that have at least one member (a consumer polling right now)."""
    return {
        description[1] for description in await describe_groups(client, groups) if description[5]
    }


LAST_READ_SECONDS = 3.0  # an age not found by then is shown as unknown: the page must not wait


async def last_read_times(
    consumer: AIOKafkaConsumer, positions: set[tuple[TopicPartition, int]]
) -> dict[tuple[TopicPartition, int], int]:
    """The timestamp of the record just before each committed offset: the newest message the
    group had read. One fetch per distinct (partition, offset), a partition at a time in rounds."""
    wanted: dict[TopicPartition, set[int]] = {}
    for tp, offset in positions:
        wanted.setdefault(tp, set()).add(offset)
    found: dict[tuple[TopicPartition, int], int] = {}
    deadline = time.monotonic() + LAST_READ_SECONDS
    while wanted and time.monotonic() < deadline:
        round_ = {tp: offsets.pop() for tp, offsets in wanted.items()}
        wanted = {tp: offsets for tp, offsets in wanted.items() if offsets}
        consumer.assign(list(round_))
        for tp, offset in round_.items():
            consumer.seek(tp, offset - 1)
        pending = dict(round_)
        while pending and time.monotonic() < deadline:
            batches = await consumer.getmany(*pending, timeout_ms=200, max_records=1)
            for tp, records in batches.items():
                offset = pending.pop(tp, None)
                # A record deleted by retention or compaction leaves no time to show.
                if offset is not None and records and records[0].offset < offset:
                    found[(tp, offset)] = records[0].timestamp
    return found
