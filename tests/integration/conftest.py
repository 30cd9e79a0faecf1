"""Integration fixtures: a fresh topic pair and a throwaway schema per test, so that tests
run in any order, twice in a row, beside the end-to-end stack and whatever else is running.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from shared.contracts.topics import Topic
from shared.db.settings import DatabaseSettings
from tests.integration.helpers import (
    kafka_admin_client,
    migrated_schema,
    scratch_schema,
    topic_pairs,
)


@pytest.fixture
async def kafka_admin(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaAdminClient]:
    async with kafka_admin_client(kafka_bootstrap) as admin:
        yield admin


@pytest.fixture
async def fresh_topic(kafka_admin: AIOKafkaAdminClient) -> AsyncIterator[Topic]:
    """A topic of this test only, with its `.dlq` twin (auto-creation is off on the broker)."""
    topic = Topic(f"it.{uuid.uuid4().hex[:12]}.events", partitions=3, public=False)
    async with topic_pairs(kafka_admin, topic):
        yield topic


@pytest.fixture
async def scratch_database(admin_db: asyncpg.Connection) -> AsyncIterator[DatabaseSettings]:
    """A throwaway schema owned by `quote_svc`: the quote role's own rights, nobody else's data."""
    async with scratch_schema(admin_db, "quote") as settings:
        yield settings


def migrated_db(service: str) -> Any:
    """The fixture `<service>_db`: a migrated throwaway schema of the service, for its handlers
    (and loops) called directly."""

    async def schema(admin_db: asyncpg.Connection) -> AsyncIterator[DatabaseSettings]:
        async with migrated_schema(admin_db, service) as settings:
            yield settings

    return pytest.fixture(schema, name=f"{service}_db")


renewal_db = migrated_db("renewal")
notification_db = migrated_db("notification")
billing_db = migrated_db("billing")
