"""Issue 15, item 5 — restarts: a service started while PostgreSQL or Kafka is down waits for it,
saying so in its log every few seconds, and becomes ready once it is up, instead of exiting.

"Down" is a port that refuses connections; "up" is the same port, opened later by the test,
forwarding to the real PostgreSQL or Kafka. The service is one more quote replica (its groups
are the stack's quote groups; a replica is a normal thing for them to see).
"""

from __future__ import annotations

import asyncio
import contextlib
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

from deploy.local.launcher import SERVICES, ServiceProcess
from services.operations.kafka import admin
from services.operations.topics import describe_groups
from shared.messaging.principals import SERVICE_CONSUMES
from tests.integration.helpers import eventually
from tests.scenarios.stack import TEST_STACK_SETTINGS
from tests.support.smtp import free_port


class LatePort:
    """A local port that refuses connections until `open()`, then forwards each to `target`."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()

    async def open(self) -> None:
        self._server = await asyncio.start_server(self._forward, "127.0.0.1", self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for pipe in self._pipes:
            pipe.cancel()

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        for source, sink in ((reader, upstream_writer), (upstream_reader, writer)):
            task = asyncio.create_task(self._pipe(source, sink))
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)

    @staticmethod
    async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            with contextlib.suppress(Exception):
                sink.close()


def http_status(port: int, path: str) -> int | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return None


QUOTE_GROUPS = [f"quote.{topic.name}" for topic in SERVICE_CONSUMES["quote"]]


async def quote_groups_stable(bootstrap: str) -> bool:
    """No quote group rebalancing: "Stable" (the stack's quote its only member once the replica
    is gone) or "Empty" (no stack running)."""
    async with admin(bootstrap) as client:
        described = await describe_groups(client, QUOTE_GROUPS)
    states = {description[1]: description[2] for description in described}
    return all(states.get(group) in ("Stable", "Empty") for group in QUOTE_GROUPS)


@contextlib.asynccontextmanager
async def quote_replica(
    tmp_path: Path, bootstrap: str, **env: str
) -> AsyncIterator[ServiceProcess]:
    spec = next(s for s in SERVICES if s.name == "quote")
    service = ServiceProcess(
        spec, env={**TEST_STACK_SETTINGS, **env}, log_dir=tmp_path, http_port=free_port()
    )
    service.start()
    try:
        yield service
    finally:
        service.stop()
        # The replica's leaving rebalances the stack's quote groups; the tests after these
        # must not wait for quote through a rebalance (the first of them once timed out so).
        await eventually(
            lambda: quote_groups_stable(bootstrap),
            timeout=120,
            what="the quote groups to be stable again",
        )


async def waits_then_starts(service: ServiceProcess, waiting_line: str, late: LatePort) -> None:
    await eventually(
        lambda: waiting_line in service.log_path.read_text(),
        timeout=30,
        what=f"the log line {waiting_line!r}",
    )
    assert service.process is not None and service.process.poll() is None  # still running
    assert http_status(service.port, "/live") == 200  # alive while it waits: not to be killed
    assert http_status(service.port, "/ready") == 503
    await late.open()
    await asyncio.to_thread(service.wait_ready, 60)


async def test_a_service_started_while_postgresql_is_down_waits_and_starts_when_it_is_up(
    postgres_address: tuple[str, int], kafka_bootstrap: str, tmp_path: Path
) -> None:
    late = LatePort(*postgres_address)
    try:
        async with quote_replica(
            tmp_path, kafka_bootstrap, RENEWALS_PG_PORT=str(late.port)
        ) as service:
            await waits_then_starts(
                service, f"waiting for PostgreSQL at 127.0.0.1:{late.port}", late
            )
    finally:
        await late.close()


async def test_a_service_started_while_kafka_is_down_waits_and_starts_when_it_is_up(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    host, port = kafka_bootstrap.split(",")[0].rsplit(":", 1)
    # Only the bootstrap goes through the late port; the broker then names its own address.
    late = LatePort(host, int(port))
    try:
        async with quote_replica(
            tmp_path, kafka_bootstrap, RENEWALS_KAFKA_BOOTSTRAP=f"127.0.0.1:{late.port}"
        ) as service:
            await waits_then_starts(service, f"waiting for Kafka at 127.0.0.1:{late.port}", late)
    finally:
        await late.close()
