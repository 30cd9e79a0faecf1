"""Reach the real infrastructure that `make infra-up` starts; fail loudly when it is missing.

Tests that need Kafka or PostgreSQL never skip: CI must run every one of them.
"""

from __future__ import annotations

import socket

import asyncpg
import pytest

from shared.db.settings import DatabaseSettings
from shared.messaging.settings import MessagingSettings

KAFKA_BOOTSTRAP = MessagingSettings().kafka_bootstrap
ADMIN_DSN_PARTS = {"user": "postgres", "password": "postgres"}


def _answers(host_port: str) -> bool:
    host, _, port = host_port.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=2):
            return True
    except OSError:
        return False


def require_infrastructure() -> None:
    database = DatabaseSettings()
    missing = [
        name
        for name, address in (
            ("Kafka", KAFKA_BOOTSTRAP),
            ("PostgreSQL", f"{database.host}:{database.port}"),
        )
        if not _answers(address)
    ]
    if missing:
        pytest.fail(
            f"{' and '.join(missing)} not reachable: run `make infra-up` (or `make test`, which"
            " starts them). Tests that need the real infrastructure never skip.",
            pytrace=False,
        )


async def admin_connection(host: str | None = None, port: int | None = None) -> asyncpg.Connection:
    """A superuser connection, for tests that look into several schemas at once (by default to
    the database of `make infra-up`)."""
    database = DatabaseSettings()
    return await asyncpg.connect(
        host=host or database.host,
        port=port or database.port,
        database=database.database,
        **ADMIN_DSN_PARTS,
    )
