"""Dead letters: list them with their error headers, show one, replay them to their original
topic with their original key — once.

How "once" is kept, with no database or topic of the tool's own: after a replay is acknowledged,
the tool appends a replay marker to the same `<topic>.dlq` (header `x-dlq-replay-of: <ref>`, and
where the replay landed). Listing a DLQ reads it whole anyway (one partition, few records), so
the markers cost nothing to find, and a dead letter with a marker is never published again. The
replay itself carries `x-replayed-from: <ref>`, so that a replay that fails again says where it
came from. A dead letter marked truncated (`x-dlq-truncated`: the broker could not take the
whole original, shared/messaging/dlq.py) is never replayed: its body is only the start of the
original, which is still on its topic at the partition and offset the letter names. The one gap — the tool dying between the replay's acknowledgement and the marker's,
or two operators replaying the same letter at the same instant — publishes it twice, and the
consumers' inbox (deduplicating on the CloudEvent id) still gives one effect.
"""

from __future__ import annotations

import asyncio
import getpass
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from aiokafka import AIOKafkaProducer

from services.operations.kafka import (
    Record,
    UnknownTopicError,
    operator_options,
    partitions_of,
    read_range,
    reader,
)
from services.operations.tail import decode
from shared.contracts.topics import ALL_TOPICS
from shared.messaging.dlq import (
    ERROR_HEADER,
    ERROR_TYPE_HEADER,
    ORIGINAL_SIZE_HEADER,
    TRUNCATED_HEADER,
)

REPLAYED_FROM_HEADER = "x-replayed-from"
REPLAY_OF_HEADER = "x-dlq-replay-of"  # on a replay marker in the DLQ: the dead letter replayed
REPLAYED_AS_HEADER = "x-dlq-replayed-as"  # ... and the replay's <topic>:<partition>:<offset>
DLQ_HEADER_PREFIX = "x-dlq-"


@dataclass(frozen=True)
class DeadLetter:
    ref: str  # <dlq topic>:<partition>:<offset>
    dlq_topic: str
    original_topic: str
    original_partition: int | None
    original_offset: int | None
    consumer_group: str
    error_type: str
    error: str
    failed_at: str
    attempts: int
    key: str | None
    csn: str | None
    event_type: str | None
    event_id: str | None
    timestamp_ms: int
    value: str = field(repr=False)
    headers: dict[str, str] = field(repr=False, default_factory=dict)
    raw_key: bytes | None = field(repr=False, default=None)  # replayed as they came, byte for byte
    raw_value: bytes | None = field(repr=False, default=None)
    replayed_as: str | None = None  # the replay's <topic>:<partition>:<offset>, once replayed
    truncated: bool = False  # its body only the start of the original's (x-dlq-truncated)
    original_size: int | None = None  # the original body's bytes, when truncated

    @classmethod
    def of(cls, record: Record) -> DeadLetter:
        headers = record.headers
        event = decode(record.value)
        key = record.key.decode(errors="replace") if record.key is not None else None
        return cls(
            ref=record.ref,
            dlq_topic=record.topic,
            original_topic=headers.get("x-dlq-original-topic", record.topic.removesuffix(".dlq")),
            original_partition=_int(headers.get("x-dlq-original-partition")),
            original_offset=_int(headers.get("x-dlq-original-offset")),
            consumer_group=headers.get("x-dlq-consumer-group", ""),
            error_type=headers.get(ERROR_TYPE_HEADER, ""),
            error=headers.get(ERROR_HEADER, ""),
            failed_at=headers.get("x-dlq-failed-at", ""),
            attempts=_int(headers.get("x-dlq-attempts")) or 0,
            key=key,
            csn=event.get("subject") or key,
            event_type=event.get("type"),
            event_id=event.get("id"),
            timestamp_ms=record.timestamp_ms,
            value=(record.value or b"").decode(errors="replace"),
            headers=headers,
            raw_key=record.key,
            raw_value=record.value,
            truncated=headers.get(TRUNCATED_HEADER) == "true",
            original_size=_int(headers.get(ORIGINAL_SIZE_HEADER)),
        )

    @property
    def original_position(self) -> str:
        """Where the original record is: what to fetch a truncated letter's whole body from."""
        return (
            f"{self.original_topic} partition {_or_unknown(self.original_partition)}"
            f" offset {_or_unknown(self.original_offset)}"
        )

    def truncated_note(self) -> str:
        """Why this letter is not replayed, and where the whole original is."""
        kept = len(self.raw_value or b"")
        of = f" of {self.original_size:,}" if self.original_size is not None else ""
        return (
            f"{self.ref} is truncated ({TRUNCATED_HEADER}: its body is the first {kept:,}{of}"
            f" bytes of the original), so it is not replayed; the whole original is on"
            f" {self.original_position}"
        )

    def as_dict(self) -> dict[str, Any]:
        document = asdict(self)
        del document["raw_key"], document["raw_value"]
        return document


def _or_unknown(number: int | None) -> str:
    return "?" if number is None else str(number)


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


@dataclass(frozen=True)
class DeadLetterFilter:
    topic: str | None = None  # the original topic or its .dlq
    csn: str | None = None
    event_type: str | None = None
    error_type: str | None = None
    group: str | None = None

    def matches(self, letter: DeadLetter) -> bool:
        return (
            (self.topic is None or self.topic in (letter.original_topic, letter.dlq_topic))
            and (self.csn is None or self.csn in (letter.csn, letter.key))
            and (self.event_type is None or self.event_type == letter.event_type)
            and (self.error_type is None or self.error_type == letter.error_type)
            and (self.group is None or self.group == letter.consumer_group)
        )


def dlq_topics(topics: Iterable[str] | None = None) -> list[str]:
    names = list(topics) if topics else [t.name for t in ALL_TOPICS]
    return [n if n.endswith(".dlq") else f"{n}.dlq" for n in names]


async def dead_letters(
    where: DeadLetterFilter | None = None,
    *,
    topics: Sequence[str] | None = None,
    bootstrap: str | None = None,
) -> list[DeadLetter]:
    """Every dead letter of the topics (default: the contract's), oldest first per DLQ, each
    with `replayed_as` set when a replay of it is on its original topic."""
    where = where or DeadLetterFilter()
    chosen = topics or ([where.topic] if where.topic else None)
    letters: list[DeadLetter] = []
    replays: dict[str, str] = {}
    for name in dlq_topics(chosen):
        # A reader per DLQ: one reader re-assigned from topic to topic waits on each switch.
        async with reader(bootstrap) as consumer:
            try:
                partitions = await partitions_of(consumer, name)
            except UnknownTopicError:
                if chosen:
                    raise
                continue  # not created on this broker (yet): it holds no dead letter
            starts = await consumer.beginning_offsets(partitions)
            async for record in read_range(consumer, dict(starts)):
                replay_of = record.headers.get(REPLAY_OF_HEADER)
                if replay_of is not None:
                    replays.setdefault(replay_of, record.headers.get(REPLAYED_AS_HEADER, "?"))
                    continue
                letter = DeadLetter.of(record)
                if where.matches(letter):
                    letters.append(letter)
    return [replace(letter, replayed_as=replays.get(letter.ref)) for letter in letters]


async def dead_letter(ref: str, *, bootstrap: str | None = None) -> DeadLetter:
    topic, partition, offset = parse_ref(ref)
    normal = f"{topic}:{partition}:{offset}"
    for letter in await dead_letters(topics=[topic], bootstrap=bootstrap):
        if letter.ref == normal:
            return letter
    raise LookupError(f"no dead letter {normal}")


def parse_ref(ref: str) -> tuple[str, int, int]:
    """`renewal.commands.dlq:0:12` (or `renewal.commands.dlq:12`: DLQs have one partition)."""
    parts = ref.rsplit(":", 2)
    try:
        if len(parts) == 3:
            return parts[0], int(parts[1]), int(parts[2])
        topic, offset = ref.rsplit(":", 1)
        return topic, 0, int(offset)
    except ValueError:
        raise ValueError(f"not a dead letter reference: {ref!r} (<topic>.dlq:<offset>)") from None


@dataclass
class ReplayReport:
    replayed: list[DeadLetter] = field(default_factory=list)
    already_replayed: list[DeadLetter] = field(default_factory=list)
    truncated: list[DeadLetter] = field(default_factory=list)  # left out: see `truncated_note`
    dry_run: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "replayed": [
                {"ref": d.ref, "to": d.original_topic, "replayed_as": d.replayed_as}
                for d in self.replayed
            ],
            "already_replayed": [
                {"ref": d.ref, "replayed_as": d.replayed_as} for d in self.already_replayed
            ],
            "truncated": [
                {
                    "ref": d.ref,
                    "original_topic": d.original_topic,
                    "original_partition": d.original_partition,
                    "original_offset": d.original_offset,
                    "original_size": d.original_size,
                }
                for d in self.truncated
            ],
        }


async def replay(
    letters: Sequence[DeadLetter], *, dry_run: bool = False, bootstrap: str | None = None
) -> ReplayReport:
    """Publish each letter not yet replayed to its original topic, original key and value,
    with `x-replayed-from`; `letters` must come from `dead_letters` (their `replayed_as` fresh).
    A truncated letter is never published (it would be the start of a message, dead-lettered
    again): it is reported in `truncated`."""
    report = ReplayReport(dry_run=dry_run)
    todo: list[DeadLetter] = []
    for letter in letters:
        if letter.truncated:
            report.truncated.append(letter)
        elif letter.replayed_as:
            report.already_replayed.append(letter)
        else:
            todo.append(letter)
    if dry_run or not todo:
        report.replayed = todo
        return report
    producer = AIOKafkaProducer(**operator_options(bootstrap), enable_idempotence=True, acks="all")
    await producer.start()
    try:
        sends = []
        for letter in todo:
            headers = [
                (k, v.encode())
                for k, v in letter.headers.items()
                if not k.startswith(DLQ_HEADER_PREFIX) and k != REPLAYED_FROM_HEADER
            ] + [(REPLAYED_FROM_HEADER, letter.ref.encode())]
            sends.append(
                await producer.send(
                    letter.original_topic, letter.raw_value, key=letter.raw_key, headers=headers
                )
            )
        landed = await asyncio.gather(*sends)
        # Only once every replay is acknowledged: a marker never claims a replay that failed.
        markers = []
        for letter, meta in zip(todo, landed, strict=True):
            replayed_as = f"{meta.topic}:{meta.partition}:{meta.offset}"
            marker = {"replay_of": letter.ref, "replayed_as": replayed_as, "by": _operator()}
            markers.append(
                await producer.send(
                    letter.dlq_topic,
                    json.dumps(marker).encode(),
                    key=letter.raw_key,
                    headers=[
                        (REPLAY_OF_HEADER, letter.ref.encode()),
                        (REPLAYED_AS_HEADER, replayed_as.encode()),
                    ],
                )
            )
        await asyncio.gather(*markers)
    finally:
        await producer.stop()
    report.replayed = [
        replace(letter, replayed_as=f"{m.topic}:{m.partition}:{m.offset}")
        for letter, m in zip(todo, landed, strict=True)
    ]
    return report


def _operator() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
