"""Is everything up: each service's `/ready`, the broker, the database (as each service's role)
and the SMTP server."""

from __future__ import annotations

import asyncio
import os
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import asdict, dataclass

from services.operations.kafka import reader
from services.processes import SERVICES
from shared.db.migrate import MIGRATION_SETS
from shared.db.pool import connect
from shared.db.settings import DatabaseSettings

TIMEOUT_SECONDS = 3.0


@dataclass(frozen=True)
class Check:
    component: str
    ok: bool
    detail: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def default_services() -> dict[str, str]:
    """name -> host:port of its `/ready`: RENEWALS_HEALTH_SERVICES (`name=host:port,...`, which
    deploy/docker/stack.sh sets for the container stack), else as `make run` starts them."""
    configured = os.environ.get("RENEWALS_HEALTH_SERVICES", "").strip()
    if not configured:
        return {spec.name: f"127.0.0.1:{spec.http_port}" for spec in SERVICES}
    services = {}
    for entry in filter(None, (e.strip() for e in configured.split(","))):
        name, equals, address = entry.partition("=")
        if not equals or ":" not in address:
            raise ValueError(
                f"RENEWALS_HEALTH_SERVICES: {entry!r} is not name=host:port (in {configured!r})"
            )
        services[name] = address
    return services


async def http_ready(address: str) -> tuple[bool, str]:
    """A service's `/ready`, read with the standard library's HTTP client (a 503 is an answer:
    its body names the checks that are down)."""
    return await asyncio.to_thread(_get_ready, address)


def _get_ready(address: str) -> tuple[bool, str]:
    try:
        with urllib.request.urlopen(f"http://{address}/ready", timeout=TIMEOUT_SECONDS) as answer:
            answer.read()
        return True, f"{address}: ready"
    except urllib.error.HTTPError as error:
        body = error.read().decode(errors="replace")
        failing = [line for line in body.splitlines() if line.endswith(" down")]
        return False, f"{address}: " + (", ".join(failing) or f"HTTP {error.code}")
    except (OSError, TimeoutError) as error:  # URLError is an OSError
        return False, f"{address}: no answer ({error.__class__.__name__})"


async def broker(bootstrap: str | None = None) -> tuple[bool, str]:
    try:
        async with asyncio.timeout(TIMEOUT_SECONDS * 3), reader(bootstrap) as consumer:
            topics = await consumer.topics()
            return True, f"{len(topics)} topics"
    except Exception as error:  # any failure is the answer here
        return False, f"{error.__class__.__name__}: {error}"


async def database(service: str) -> tuple[bool, str]:
    settings = DatabaseSettings.for_service(service)
    try:
        async with asyncio.timeout(TIMEOUT_SECONDS):
            connection = await connect(settings)
            try:
                await connection.fetchval("SELECT 1")
            finally:
                await connection.close()
    except Exception as error:
        return False, f"{settings.user}@{settings.host}:{settings.port}: {error}"
    return True, f"{settings.user}@{settings.host}:{settings.port}/{settings.database}"


async def smtp(address: str) -> tuple[bool, str]:
    host, _, port = address.rpartition(":")
    try:
        async with asyncio.timeout(TIMEOUT_SECONDS):
            reader_, writer = await asyncio.open_connection(host, int(port))
            try:
                banner = (await reader_.readline()).decode(errors="replace").strip()
                writer.write(b"QUIT\r\n")
                await writer.drain()
            finally:
                writer.close()
    except (OSError, TimeoutError) as error:
        return False, f"{address}: no answer ({error.__class__.__name__})"
    return banner.startswith("220"), f"{address}: {banner[:60]}"


def smtp_address() -> str:
    from services.notification.settings import NotificationSettings

    settings = NotificationSettings()
    return f"{settings.smtp_host}:{settings.smtp_port}"


async def check_all(
    services: Mapping[str, str] | None = None,
    *,
    bootstrap: str | None = None,
    smtp_at: str | None = None,
) -> list[Check]:
    services = services or default_services()
    named = [
        *((f"service {name}", http_ready(address)) for name, address in services.items()),
        ("broker", broker(bootstrap)),
        *((f"database {s}", database(s)) for s in sorted(MIGRATION_SETS)),
        ("smtp", smtp(smtp_at or smtp_address())),
    ]
    results = await asyncio.gather(*(check for _, check in named))
    return [Check(name, ok, detail) for (name, _), (ok, detail) in zip(named, results, strict=True)]
