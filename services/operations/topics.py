"""Every topic of the contract: partitions, end offsets, messages per second over the last
minute, and for each consumer group that reads it, its lag (end offset minus committed offset,
summed over the partitions)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from services.operations.kafka import admin, offsets_at, partitions_of, reader
from shared.contracts.topics import ALL_TOPICS

RATE_WINDOW_SECONDS = 60


@dataclass(frozen=True)
class GroupLag:
    group: str
    lag: int
    committed: int  # committed offsets summed: grows as the group works


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
    lags: dict[str, list[GroupLag]] = {name: [] for name in names}
    for group, committed in zip(groups, committed_by_group, strict=True):
        for name in names:
            offsets = {tp: meta.offset for tp, meta in committed.items() if tp.topic == name}
            if not offsets:
                continue
            # A partition never committed counts from its oldest message kept: the group will
            # read all of it.
            lag = sum(ends[tp] - max(offsets.get(tp, -1), starts[tp]) for tp in partitions[name])
            done = sum(max(o, 0) for o in offsets.values())
            lags[name].append(GroupLag(group, lag, done))
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
