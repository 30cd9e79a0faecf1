"""A service started while PostgreSQL or Kafka is down waits for them, saying so every few
seconds, instead of exiting: whatever starts the services need not start them in order."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg
from aiokafka import AIOKafkaClient
from aiokafka.errors import KafkaError

from shared.db.pool import create_pool
from shared.db.settings import DatabaseSettings
from shared.messaging.credentials import client_options
from shared.messaging.parking import is_transient

log = logging.getLogger(__name__)

RETRY_SECONDS = 2.0
T = TypeVar("T")


async def until_up(
    attempt: Callable[[], Awaitable[T]],
    *,
    what: str,
    retry_if: Callable[[BaseException], bool],
    retry_seconds: float = RETRY_SECONDS,
) -> T:
    waited = 0
    while True:
        try:
            result = await attempt()
        except Exception as error:
            if not retry_if(error):
                raise
            waited += 1
            log.warning(f"waiting for {what}", extra={"attempts": waited, "error": repr(error)})
            await asyncio.sleep(retry_seconds)
            continue
        if waited:
            log.info(f"{what} is up", extra={"after_attempts": waited})
        return result


async def pool_when_up(settings: DatabaseSettings) -> asyncpg.Pool:
    """The service's pool, once PostgreSQL accepts a connection (refused, starting up, too many
    connections: all transient; a wrong password is not, and raises)."""
    return await until_up(
        lambda: create_pool(settings),
        what=f"PostgreSQL at {settings.host}:{settings.port}",
        retry_if=is_transient,
    )


async def kafka_when_up(
    bootstrap: str | list[str], client_id: str, options: dict[str, Any] | None = None
) -> None:
    """Return once a Kafka broker of `bootstrap` answers a metadata request: the broker's own
    start (FastStream's `broker.start()`, after the startup hooks) then connects at once."""

    async def probe() -> None:
        # The service's own credentials: a broker that refuses them is not "down", and says so.
        client = AIOKafkaClient(
            **{**(options or client_options()), "bootstrap_servers": bootstrap},
            client_id=f"{client_id}-probe",
        )
        try:
            await client.bootstrap()
        finally:
            await client.close()

    shown = bootstrap if isinstance(bootstrap, str) else ",".join(bootstrap)
    await until_up(
        probe,
        what=f"Kafka at {shown}",
        retry_if=lambda error: isinstance(error, KafkaError | OSError),
    )
