"""A consumer of a fresh topic run in-process as a real `ServiceRuntime`, for the operator tools
to look at: its group's lag, its dead letters, the replays it handles.

Its event type `it.note.added` has two versions: `NoteV1` refuses a `priority` field (extra fields
are errors in every contract), `NoteV2` accepts it — the fix deployed during an incident.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from typer.testing import CliRunner

from services.operations.cli import app
from shared.contracts.envelope import CloudEvent, EventData, EventRegistry, new_event
from shared.contracts.topics import Topic
from shared.db.settings import DatabaseSettings
from shared.messaging.consumer import Delivery, UnitOfWork, dispatch_by_type
from shared.messaging.runtime import ServiceRuntime
from shared.messaging.settings import MessagingSettings
from tests.integration.helpers import committed_offsets, connection_to, end_offsets, running


class NoteV1(EventData):
    event_type: ClassVar[str] = "it.note.added"
    note: str


class NoteV2(EventData):
    event_type: ClassVar[str] = "it.note.added"
    note: str
    priority: int | None = None


def note(csn: str, text: str, **extra: Any) -> CloudEvent[Any]:
    data = NoteV2(note=text, **extra) if extra else NoteV1(note=text)
    return new_event(data, subject=csn, source="/it/ops", time=datetime.now(UTC))


def renewals(*args: str) -> Any:
    """Run the `renewals` CLI as an operator would (in a thread: it runs its own event loop)."""
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    return result


async def cli(*args: str) -> Any:
    return await asyncio.to_thread(renewals, *args)


@dataclass
class NoteService:
    bootstrap: str
    topic: Topic
    database: DatabaseSettings
    admin: AIOKafkaAdminClient
    name: str

    @property
    def group_id(self) -> str:
        return f"{self.name}.{self.topic.name}"

    @asynccontextmanager
    async def running(
        self, model: type[EventData] = NoteV2, **settings: Any
    ) -> AsyncIterator[None]:
        messaging = MessagingSettings(
            **{
                "kafka_bootstrap": self.bootstrap,
                "handler_max_attempts": 2,
                "outbox_poll_seconds": 0.2,
                "metrics_sample_seconds": 0.1,
                "http_port": 0,
                **settings,
            }
        )
        runtime = ServiceRuntime(self.name, messaging, self.database)
        runtime.migrations_of = "quote"
        runtime.consume(
            self.topic,
            EventRegistry(self.topic.name, model),
            dispatch_by_type({model: self._handle}),
        )
        async with running(runtime.build_app(), lambda: all(runtime.readiness().values())):
            yield

    async def _handle(self, unit: UnitOfWork, delivery: Delivery) -> None:
        await unit.connection.execute(
            "INSERT INTO it_notes (event_id, note) VALUES ($1, $2)",
            delivery.event.id,
            delivery.data.note,
        )

    async def handled(self, event_id: str) -> int:
        async with connection_to(self.database) as connection:
            return int(
                await connection.fetchval(
                    "SELECT count(*) FROM it_notes WHERE event_id = $1", event_id
                )
            )

    async def committed_to_the_end(self) -> bool:
        ends = await end_offsets(self.bootstrap, self.topic.name)
        got = await committed_offsets(self.admin, self.group_id, self.topic.name)
        return all(got.get(p) == end for p, end in ends.items() if end > 0)


@pytest.fixture
async def note_service(
    kafka_bootstrap: str,
    kafka_admin: AIOKafkaAdminClient,
    fresh_topic: Topic,
    scratch_database: DatabaseSettings,
) -> NoteService:
    async with connection_to(scratch_database) as connection:
        await connection.execute("CREATE TABLE it_notes (event_id text NOT NULL, note text)")
    name = f"it-ops-{uuid.uuid4().hex[:8]}"
    return NoteService(kafka_bootstrap, fresh_topic, scratch_database, kafka_admin, name)


def lines_of_json(output: str) -> Sequence[Any]:
    import json

    return [json.loads(line) for line in output.splitlines() if line.strip()]
