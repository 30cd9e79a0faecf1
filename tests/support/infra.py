"""Reach the real infrastructure that `make infra-up` starts; fail loudly when it is missing.

Tests that need Kafka or PostgreSQL never skip: CI must run every one of them.
"""

from __future__ import annotations

import os
import socket

import asyncpg
import pytest

from shared import local_secrets
from shared.db.settings import DatabaseSettings
from shared.messaging.settings import MessagingSettings

# Every broker client of the tests is the test principal unless it asks for another (a test
# playing the payment provider, a service run in-process: shared/messaging/credentials.py).
os.environ.setdefault("RENEWALS_KAFKA_USERNAME", "test")
TEST_PRINCIPAL = os.environ["RENEWALS_KAFKA_USERNAME"]

KAFKA_BOOTSTRAP = MessagingSettings().kafka_bootstrap


def admin_dsn_parts() -> dict[str, str]:
    """The superuser, from the secrets file: the tests that look into several schemas (or make
    scratch schemas for a service role) use it, as the bootstrap does; no service does."""
    return {"user": "postgres", "password": local_secrets.database_password("postgres") or ""}


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
        **admin_dsn_parts(),
    )
