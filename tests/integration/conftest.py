"""Integration fixtures: a fresh topic pair and a throwaway schema per test, so that tests
run in any order, twice in a row, beside the end-to-end stack.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from shared.contracts.topics import DLQ_PARTITIONS, Topic
from shared.db.settings import DatabaseSettings
from tests.integration.helpers import eventually


@pytest.fixture
async def kafka_admin(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaAdminClient]:
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        yield admin
    finally:
        await admin.close()


@pytest.fixture
async def fresh_topic(kafka_admin: AIOKafkaAdminClient) -> AsyncIterator[Topic]:
    """A topic of this test only, with its `.dlq` twin (auto-creation is off on the broker)."""
    topic = Topic(f"it.{uuid.uuid4().hex[:12]}.events", partitions=3, public=False)
    await kafka_admin.create_topics(
        [
            NewTopic(topic.name, topic.partitions, replication_factor=1),
            NewTopic(topic.dlq, DLQ_PARTITIONS, replication_factor=1),
        ]
    )

    async def has_leaders() -> bool:
        described = await kafka_admin.describe_topics([topic.name, topic.dlq])
        return all(
            t["error_code"] == 0
            and t["partitions"]
            and all(p["leader"] >= 0 for p in t["partitions"])
            for t in described
        )

    await eventually(has_leaders, timeout=10, what=f"{topic.name} to have leaders")
    try:
        yield topic
    finally:
        await kafka_admin.delete_topics([topic.name, topic.dlq])


@pytest.fixture
async def scratch_database(admin_db: asyncpg.Connection) -> AsyncIterator[DatabaseSettings]:
    """A throwaway schema owned by `quote_svc`: the quote role's own rights, nobody else's data."""
    schema = f"it_{uuid.uuid4().hex[:12]}"
    await admin_db.execute(f'CREATE SCHEMA "{schema}" AUTHORIZATION quote_svc')
    settings = DatabaseSettings.for_service("quote").model_copy(update={"schema_name": schema})
    try:
        yield settings
    finally:
        await admin_db.execute(f'DROP SCHEMA "{schema}" CASCADE')
