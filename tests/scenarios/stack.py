"""What the core scenarios need of a running product, whichever way it runs.

Two fixtures provide it: tests/e2e/conftest.py (every service a local OS process) and
tests/containers/conftest.py (every part a container, started by testcontainers). The scenarios
in tests/scenarios/core.py only speak to this protocol, so that the two stacks cannot drift.
"""

from __future__ import annotations

from collections.abc import Sequence
from email.message import EmailMessage
from typing import Protocol

# The services' settings in both test stacks: short intervals, so that scenarios wait seconds,
# not minutes, for what the services do on their own.
TEST_STACK_SETTINGS = {
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


class ReceivedMail(Protocol):
    """The emails the stack's SMTP server accepted."""

    def all(self) -> Sequence[EmailMessage]: ...

    def with_key(self, notification_key: str) -> list[EmailMessage]: ...


class RunningStack(Protocol):
    @property
    def mailbox(self) -> ReceivedMail: ...

    async def kill(self, service: str) -> None:
        """Kill the service at once (SIGKILL: no shutdown hook runs, like a crashed machine)."""

    async def start(self, service: str) -> None:
        """Start the service again and wait until it is ready."""
