"""Shared fixtures: every test below tests/integration and tests/e2e needs the real Kafka broker
and PostgreSQL, and fails (never skips) when they are not running. tests/containers/conftest.py
points `kafka_bootstrap` and `postgres_address` at the stack in containers instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from deploy.local.client import TopicWatcher, UpstreamClient
from shared.contracts import topics
from shared.db.settings import DatabaseSettings
from tests.support.infra import KAFKA_BOOTSTRAP, admin_connection, require_infrastructure

NEEDS_INFRA = ("integration", "e2e")

# What the end-to-end scenarios watch: every event topic the product answers on, and the DLQs.
OUTPUT_TOPICS = [
    topics.RENEWAL_EVENTS,
    topics.BILLING_EVENTS,
    topics.NOTIFICATION_EVENTS,
    topics.QUOTE_EVENTS,
    topics.SUBSCRIPTION_STATE,
    topics.QUOTE_COMMANDS.dlq,
    topics.RENEWAL_COMMANDS.dlq,
    topics.SUBSCRIPTION_EVENTS.dlq,
    topics.CLOCK_COMMANDS.dlq,
]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).parts
        if any(part in NEEDS_INFRA for part in parts):
            item.add_marker(pytest.mark.infra)
        if "containers" in parts:
            item.add_marker(pytest.mark.containers)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    require_infrastructure()
    return KAFKA_BOOTSTRAP


@pytest.fixture(scope="session")
def postgres_address(kafka_bootstrap: str) -> tuple[str, int]:
    database = DatabaseSettings()
    return database.host, database.port


@pytest.fixture
async def admin_db(postgres_address: tuple[str, int]) -> AsyncIterator[asyncpg.Connection]:
    connection = await admin_connection(*postgres_address)
    try:
        yield connection
    finally:
        await connection.close()


@pytest.fixture
async def watcher(kafka_bootstrap: str) -> AsyncIterator[TopicWatcher]:
    async with TopicWatcher(kafka_bootstrap, OUTPUT_TOPICS) as watching:
        yield watching


@pytest.fixture
async def upstream(kafka_bootstrap: str) -> AsyncIterator[UpstreamClient]:
    async with UpstreamClient(kafka_bootstrap) as client:
        yield client
