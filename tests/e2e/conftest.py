"""The end-to-end stack: every service as its own OS process, started exactly as `make run`
starts them (services/launcher.py), on the real broker and database, with a real SMTP server.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest

from services.launcher import SERVICES, ServiceProcess, running_services
from shared.contracts import topics
from shared.messaging.client import TopicWatcher, UpstreamClient
from tests.support.smtp import SmtpServer, free_port

OUTPUT_TOPICS = [
    topics.RENEWAL_EVENTS,
    topics.BILLING_EVENTS,
    topics.NOTIFICATION_EVENTS,
    topics.QUOTE_EVENTS,
    topics.QUOTE_COMMANDS.dlq,
    topics.RENEWAL_COMMANDS.dlq,
    topics.SUBSCRIPTION_EVENTS.dlq,
    topics.CLOCK_COMMANDS.dlq,
]


@dataclass
class Stack:
    services: dict[str, ServiceProcess]
    smtp: SmtpServer
    env: dict[str, str]

    def replica(self, name: str) -> ServiceProcess:
        """Another process of the same service (same consumer groups), with its own port."""
        spec = next(s for s in SERVICES if s.name == name)
        return ServiceProcess(spec, env=self.env, http_port=free_port())

    async def restart(self, name: str, extra_env: dict[str, str] | None = None) -> ServiceProcess:
        service = self.services[name]
        service.stop()
        service.start(extra_env)
        if not extra_env:
            await asyncio.to_thread(service.wait_ready)
        return service


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


@pytest.fixture(scope="session")
def stack(kafka_bootstrap: str, smtp_server: SmtpServer) -> Iterator[Stack]:
    already = running_services()
    if already:
        pytest.fail(
            f"services of `make run` are running ({', '.join(already)}): they would share the"
            " consumer groups with the test stack. Stop them with `make stop`.",
            pytrace=False,
        )
    env = {
        "RENEWALS_NOTIFICATION_SMTP_PORT": str(smtp_server.port),
        "RENEWALS_NOTIFICATION_RETRY_BASE_SECONDS": "0.2",
        # A killed sender's leased emails wait for the lease to expire: keep the kill tests short.
        "RENEWALS_NOTIFICATION_LEASE_SECONDS": "3",
        "RENEWALS_OUTBOX_POLL_SECONDS": "0.2",
        "RENEWALS_TEST_CLOCKS_ENABLED": "true",
        "RENEWALS_NOTIFICATION_REMINDER_INTERVAL_SECONDS": "0.3",
        "RENEWALS_QUOTE_EXPIRY_INTERVAL_SECONDS": "0.3",
        "RENEWALS_RENEWAL_ENGINE_INTERVAL_SECONDS": "0.3",
        # Small claims, so that two replicas of the engine both get a share in the tests.
        "RENEWALS_RENEWAL_ENGINE_BATCH_SIZE": "100",
    }
    services = {
        spec.name: ServiceProcess(spec, env=env, http_port=free_port()) for spec in SERVICES
    }
    try:
        for service in services.values():
            service.start()
        for service in services.values():
            service.wait_ready()
        yield Stack(services, smtp_server, env)
    finally:
        for service in services.values():
            service.stop()


@pytest.fixture
async def watcher(kafka_bootstrap: str) -> AsyncIterator[TopicWatcher]:
    async with TopicWatcher(kafka_bootstrap, OUTPUT_TOPICS) as watching:
        yield watching


@pytest.fixture
async def upstream(kafka_bootstrap: str) -> AsyncIterator[UpstreamClient]:
    async with UpstreamClient(kafka_bootstrap) as client:
        yield client
