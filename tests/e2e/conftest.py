"""The end-to-end stack: every service as its own OS process, started exactly as `make run`
starts them (deploy/local/launcher.py), on the real broker and database of `make infra-up`, with a
real SMTP server in the test process. tests/containers/ runs the core scenarios on containers.
"""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Iterator
from dataclasses import dataclass

import asyncpg
import pytest

from deploy.local.launcher import SERVICES, ServiceProcess, running_services
from tests.scenarios.settled import settled
from tests.scenarios.stack import TEST_STACK_SETTINGS
from tests.support.smtp import Mailbox, SmtpServer, free_port


@dataclass
class Stack:
    """The local-process stack; a RunningStack (tests/scenarios/stack.py) and more."""

    services: dict[str, ServiceProcess]
    smtp: SmtpServer
    env: dict[str, str]
    bootstrap: str

    @property
    def mailbox(self) -> Mailbox:
        return self.smtp.mailbox

    async def kill(self, service: str) -> None:
        await asyncio.to_thread(self.services[service].kill)

    async def start(self, service: str) -> None:
        self.services[service].start()
        await asyncio.to_thread(self.services[service].wait_ready)

    async def settled(self, admin_db: asyncpg.Connection) -> None:
        """Everything the product was given is done, time-driven loops included: what a test
        waits for before it asserts that something happened once, or not at all."""
        ports = [service.port for service in self.services.values()]
        await settled(self.bootstrap, admin_db, metrics_ports=ports)

    async def armed(self, name: str, fault_point: str) -> None:
        """The service restarted with that fault point armed (shared/plumbing/faults.py: it
        SIGKILLs itself on reaching it), and ready for the traffic that will take it there."""
        await self.restart(name, {"RENEWALS_FAULTS": json.dumps([fault_point])})
        await asyncio.to_thread(self.services[name].wait_ready)

    async def killed_at_its_fault(self, name: str) -> None:
        """The armed service reached its fault point: its process ended by SIGKILL."""
        process = self.services[name].process
        assert process is not None
        assert await asyncio.to_thread(process.wait, 30) == -signal.SIGKILL

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


@pytest.fixture(scope="package")
def smtp_server() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


# Package-scoped, not session-scoped: the stack stops once the end-to-end tests are done, so
# that the fault suite (tests/faults), which runs the product's processes in the same consumer
# groups and schemas, never shares its traffic with a stack left running.
@pytest.fixture(scope="package")
def stack(kafka_bootstrap: str, smtp_server: SmtpServer) -> Iterator[Stack]:
    already = running_services()
    if already:
        pytest.fail(
            f"services of `make run` are running ({', '.join(already)}): they would share the"
            " consumer groups with the test stack. Stop them with `make stop`.",
            pytrace=False,
        )
    env = {**TEST_STACK_SETTINGS, "RENEWALS_NOTIFICATION_SMTP_PORT": str(smtp_server.port)}
    services = {
        spec.name: ServiceProcess(spec, env=env, http_port=free_port()) for spec in SERVICES
    }
    try:
        for service in services.values():
            service.start()
        for service in services.values():
            service.wait_ready()
        yield Stack(services, smtp_server, env, kafka_bootstrap)
    finally:
        for service in services.values():
            service.stop()
