"""Shared fixtures: every test below tests/integration and tests/e2e needs the real Kafka broker
and PostgreSQL, and fails (never skips) when they are not running.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from tests.support.infra import KAFKA_BOOTSTRAP, admin_connection, require_infrastructure

NEEDS_INFRA = ("integration", "e2e")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if any(part in NEEDS_INFRA for part in Path(str(item.fspath)).parts):
            item.add_marker(pytest.mark.infra)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    require_infrastructure()
    return KAFKA_BOOTSTRAP


@pytest.fixture
async def admin_db(kafka_bootstrap: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await admin_connection()
    try:
        yield connection
    finally:
        await connection.close()
