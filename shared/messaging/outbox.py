"""The transactional outbox: rows written with the business change, published by a relay.

Delivery is at least once (a crash between the broker's acknowledgement and the row's deletion
publishes it again); consumers deduplicate on the CloudEvent id, so the effect is once.

A row the broker refuses for the message's own sake (too large, a topic that stays unknown) is
moved to `outbox_parked` with the error, counted and logged, and the rest of the claim goes
out: one such row never stops the outbox (the renewal outbox is shared with the bulk worker).
`renewals outbox list|retry|drop` acts on parked rows. Any other failure (the broker away) rolls
the claim back, and the loop backs off and tries again.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import asyncpg
from aiokafka.errors import (
    InvalidTopicError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
    TopicAuthorizationFailedError,
    UnknownTopicOrPartitionError,
)

from shared.contracts.envelope import CONTENT_TYPE, TYPE_HEADER, CloudEvent, encode
from shared.contracts.topics import Topic
from shared.db.types import DbConnection
from shared.messaging.loops import WorkLoop
from shared.plumbing.faults import OUTBOX_AFTER_PUBLISH_BEFORE_DELETE, FaultPoints
from shared.plumbing.metrics import OUTBOX_BACKLOG, OUTBOX_PARKED, OUTBOX_PUBLISHED
from shared.plumbing.otlp import PublishedSpans

log = logging.getLogger(__name__)

# Refusals that are the message's fault: sending it again can only fail again. An unknown topic
# counts once the producer has waited its whole metadata timeout for it (allow_auto_create_topics
# is off: it will not appear by itself).
REFUSED_FOR_ITS_OWN_SAKE: tuple[type[BaseException], ...] = (
    MessageSizeTooLargeError,
    RecordTooLargeError,
    RecordListTooLargeError,
    InvalidTopicError,
    UnknownTopicOrPartitionError,
    # A topic this service's principal may not write (the broker's ACLs): no retry will change
    # that, and the rest of the outbox must not wait behind it.
    TopicAuthorizationFailedError,
)
ERROR_LENGTH = 2000


class KafkaSender(Protocol):
    """Where the relay sends its rows: `shared.messaging.broker.BrokerSender` in a service."""

    async def send(
        self,
        topic: str,
        value: bytes,
        *,
        key: bytes | None,
        headers: Sequence[tuple[str, bytes]],
    ) -> asyncio.Future[Any]:
        """Queue one record; returns its acknowledgement (raises if the producer refuses it)."""
        ...

    async def send_many(
        self, topic: str, records: Sequence[tuple[bytes | None, bytes, Sequence[tuple[str, bytes]]]]
    ) -> list[asyncio.Future[Any]]:
        """Queue (key, value, headers) records of one topic in order; returns the
        acknowledgement of each, a failed one for a record that could not be queued."""
        ...


def _by_topic(rows: list[asyncpg.Record]) -> dict[str, list[int]]:
    """The rows' positions by topic, each list in id order."""
    positions: dict[str, list[int]] = {}
    for position, row in enumerate(rows):
        positions.setdefault(row["topic"], []).append(position)
    return positions


def refused_for_its_own_sake(error: BaseException) -> bool:
    return isinstance(error, REFUSED_FOR_ITS_OWN_SAKE)


@dataclass
class Outbox:
    """Messages produced while handling one batch; flushed into the same transaction."""

    rows: list[tuple[str, bytes | None, bytes, str]] = field(default_factory=list)

    def add(self, topic: Topic, event: CloudEvent[Any], key: str | None = None) -> None:
        partition_key = (key if key is not None else event.subject).encode()
        self.rows.append((topic.name, partition_key, encode(event), _stored_headers(event.type)))

    async def flush(self, connection: DbConnection) -> None:
        if self.rows:
            # COPY: one round trip for the whole batch, however many events it produced.
            await connection.copy_records_to_table(
                "outbox", records=self.rows, columns=["topic", "key", "value", "headers"]
            )
            self.rows = []


class OutboxRelay:
    """Publishes a schema's outbox in id order, in batches, through the idempotent producer.

    One relay of a schema publishes at a time (the lock on its `outbox_lock` row, held by the
    claim's transaction): replicas take over from each other, never interleave, so the events
    of one key keep their order. The row is in the schema, so no other service's role can
    take it (an advisory lock, database-wide, could be).
    The relay wakes on `NOTIFY <schema>_outbox` and polls as a fallback.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        sender: KafkaSender,
        *,
        service: str,
        schema: str,
        batch_size: int,
        poll_seconds: float,
        faults: FaultPoints | None = None,
        spans: PublishedSpans | None = None,
    ) -> None:
        self.pool = pool
        self.sender = sender
        self.faults = faults or FaultPoints()
        self.spans = spans  # OpenTelemetry export of what was published, when configured
        self.service = service
        self.channel = f"{schema}_outbox"
        self.batch_size = batch_size
        self.loop = WorkLoop(
            "outbox_relay",
            self.publish_pending,
            service=service,
            poll_seconds=poll_seconds,
            pool=pool,
            channel=self.channel,
        )

    @property
    def healthy(self) -> bool:
        return self.loop.healthy

    async def publish_pending(self) -> int:
        """Publish one claimed batch; returns how many rows it took (published or parked)."""
        async with self.pool.acquire() as connection, connection.transaction():
            if not await connection.fetchval("SELECT true FROM outbox_lock FOR UPDATE SKIP LOCKED"):
                return 0  # another replica's relay is publishing this outbox right now
            rows = await connection.fetch(
                "SELECT id, topic, key, value, headers FROM outbox ORDER BY id LIMIT $1",
                self.batch_size,
            )
            if not rows:
                OUTBOX_BACKLOG.labels(self.service).set(0)
                return 0
            refused = await self._publish(rows)
            # Every other row is acknowledged: a crash here publishes them again (at least once).
            self.faults.hit(OUTBOX_AFTER_PUBLISH_BEFORE_DELETE)
            if refused:
                await self._park(connection, rows, refused)
            await connection.execute(
                "DELETE FROM outbox WHERE id = ANY($1::bigint[])", [r["id"] for r in rows]
            )
        OUTBOX_PUBLISHED.labels(self.service).inc(len(rows) - len(refused))
        if self.spans is not None:
            self.spans.published(
                (row["topic"], row["value"]) for i, row in enumerate(rows) if i not in refused
            )
        return len(rows)

    async def _publish(self, rows: list[asyncpg.Record]) -> dict[int, BaseException]:
        """Send the rows, in id order within each topic, and wait for every acknowledgement;
        returns the rows refused for their own sake (by position). Any other failure raises:
        the claim rolls back."""
        sends: dict[int, asyncio.Future[Any]] = {}
        for topic, positions in _by_topic(rows).items():
            # One call a topic: the sender puts the records in a batch per partition.
            records = [
                (rows[p]["key"], rows[p]["value"], list(_headers(rows[p]["headers"])))
                for p in positions
            ]
            sends.update(zip(positions, await self.sender.send_many(topic, records), strict=True))
        # Each acknowledgement in its turn: one produce request answers many rows, so most are
        # in when their turn comes, and a finished future is read at no cost — `gather` added a
        # callback and a turn of the event loop per row.
        answers: dict[int, BaseException] = {}
        for position, sent in sends.items():
            try:
                await sent
            except Exception as refusal:
                answers[position] = refusal
        refused: dict[int, BaseException] = {}
        for position, answer in sorted(answers.items()):
            if not refused_for_its_own_sake(answer):
                raise answer
            # The broker (or the producer) refused the batch this row travelled in, perhaps
            # with others: alone, its own answer says whether it is the culprit.
            try:
                await (await self._send(rows[position]))
            except Exception as alone:
                if not refused_for_its_own_sake(alone):
                    raise
                refused[position] = alone
        return refused

    async def _send(self, row: asyncpg.Record) -> asyncio.Future[Any]:
        """Queue the row in the producer; returns its acknowledgement to wait for."""
        # A list of its own per record: aiokafka takes nothing else (its C record builder).
        headers = list(_headers(row["headers"]))
        return await self.sender.send(row["topic"], row["value"], key=row["key"], headers=headers)

    async def _park(
        self,
        connection: DbConnection,
        rows: list[asyncpg.Record],
        refused: dict[int, BaseException],
    ) -> None:
        await connection.executemany(
            """INSERT INTO outbox_parked (id, topic, key, value, headers, created_at, error)
               SELECT id, topic, key, value, headers, created_at, $2 FROM outbox WHERE id = $1""",
            [
                (rows[position]["id"], f"{type(error).__name__}: {error}"[:ERROR_LENGTH])
                for position, error in refused.items()
            ],
        )
        for position, error in refused.items():
            row = rows[position]
            OUTBOX_PARKED.labels(self.service, row["topic"]).inc()
            log.error(
                "outbox row parked: the broker refused it; the others go on",
                extra={
                    "outbox_id": row["id"],
                    "topic": row["topic"],
                    "bytes": len(row["value"]),
                    "error": repr(error),
                },
            )


@functools.lru_cache(maxsize=256)
def _headers(stored: str) -> tuple[tuple[str, bytes], ...]:
    """The Kafka headers of a row's stored JSON: few distinct ones (content type and event
    type), so each is decoded once, not once per row."""
    return tuple((name, value.encode()) for name, value in json.loads(stored).items())


@functools.lru_cache(maxsize=256)
def _stored_headers(event_type: str) -> str:
    """The `headers` column of an event of this type: the same few strings over and over, so
    each is written once (json.dumps was 2 of Outbox.add's 6.5 µs an event)."""
    return json.dumps({"content-type": CONTENT_TYPE, TYPE_HEADER: event_type})
