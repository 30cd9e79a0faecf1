"""The transactional outbox: rows written with the business change, published by a relay.

Delivery is at least once (a crash between the broker's acknowledgement and the row's deletion
publishes it again); consumers deduplicate on the CloudEvent id, so the effect is once.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from faststream.kafka import KafkaBroker

from shared.contracts.envelope import CONTENT_TYPE, CloudEvent, encode
from shared.contracts.topics import Topic
from shared.db.locks import advisory_key
from shared.db.types import DbConnection
from shared.messaging.loops import WorkLoop
from shared.messaging.metrics import OUTBOX_BACKLOG, OUTBOX_PUBLISHED

log = logging.getLogger(__name__)


@dataclass
class Outbox:
    """Messages produced while handling one batch; flushed into the same transaction."""

    rows: list[tuple[str, bytes | None, bytes, str]] = field(default_factory=list)

    def add(self, topic: Topic, event: CloudEvent[Any], key: str | None = None) -> None:
        headers = json.dumps({"content-type": CONTENT_TYPE, "ce-type": event.type})
        partition_key = (key if key is not None else event.subject).encode()
        self.rows.append((topic.name, partition_key, encode(event), headers))

    async def flush(self, connection: DbConnection) -> None:
        if self.rows:
            # COPY: one round trip for the whole batch, however many events it produced.
            await connection.copy_records_to_table(
                "outbox", records=self.rows, columns=["topic", "key", "value", "headers"]
            )
            self.rows = []


class OutboxRelay:
    """Publishes a schema's outbox in id order, in batches, through the idempotent producer.

    One relay of a schema publishes at a time (a transaction-scoped advisory lock): replicas
    take over from each other, never interleave, so the events of one key keep their order.
    The relay wakes on `NOTIFY <schema>_outbox` and polls as a fallback.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        broker: KafkaBroker,
        *,
        service: str,
        schema: str,
        batch_size: int,
        poll_seconds: float,
    ) -> None:
        self.pool = pool
        self.broker = broker
        self.service = service
        self.channel = f"{schema}_outbox"
        self.lock_key = advisory_key(f"outbox:{schema}")
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
        """Publish one claimed batch; returns how many rows went out."""
        async with self.pool.acquire() as connection, connection.transaction():
            if not await connection.fetchval("SELECT pg_try_advisory_xact_lock($1)", self.lock_key):
                return 0  # another replica's relay is publishing this outbox right now
            rows = await connection.fetch(
                "SELECT id, topic, key, value, headers FROM outbox ORDER BY id LIMIT $1",
                self.batch_size,
            )
            if not rows:
                OUTBOX_BACKLOG.labels(self.service).set(0)
                return 0
            sends = [
                await self.broker.publish(
                    row["value"],
                    topic=row["topic"],
                    key=row["key"],
                    headers=json.loads(row["headers"]),
                    no_confirm=True,
                )
                for row in rows
            ]
            # Wait for every acknowledgement before deleting: a failure rolls the claim back.
            await asyncio.gather(*sends)
            await connection.execute(
                "DELETE FROM outbox WHERE id = ANY($1::bigint[])", [r["id"] for r in rows]
            )
        OUTBOX_PUBLISHED.labels(self.service).inc(len(rows))
        return len(rows)
