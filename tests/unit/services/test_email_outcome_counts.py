"""`renewals_emails_total{outcome}` counts an email's outcome once its mark is applied: an email
that failed for good with a sender whose lease had lapsed (another sender holds it now, and
marks it itself) is not counted by the first, as a sent one already was not."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from prometheus_client import REGISTRY

from services.notification.leases import Claim, LeasedEmail, Mark
from services.notification.sender import EmailSender
from services.notification.settings import NotificationSettings
from services.notification.templates import EmailRenderer, RenderedEmail
from shared.clock import FixedClock

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class Applying:
    """Leases that apply the marks of emails still held (`held`), and refuse the others."""

    def __init__(self, held: set[str]) -> None:
        self.held = held

    async def record(self, marks: list[Mark]) -> list[Mark]:
        return [mark for mark in marks if mark.key in self.held]


def failed_count(kind: str) -> float:
    value = REGISTRY.get_sample_value(
        "renewals_emails_total", {"service": "notification", "kind": kind, "outcome": "failed"}
    )
    return value or 0.0


def leased(key: str, kind: str) -> LeasedEmail:
    return LeasedEmail(
        key=key,
        kind=kind,
        csn="CSN-1",
        recipients=("buyer@example.com",),
        locale="en-US",
        context={},
        subscription_ids=("S-1",),
        order_id=None,
        quote_number=None,
        attempts=0,
        next_attempt_at=NOW,
        traceparent=None,
    )


async def test_an_email_failed_for_good_is_counted_once_its_mark_is_applied_and_not_otherwise() -> (
    None
):
    sender = EmailSender(None, FixedClock(NOW), NotificationSettings(), EmailRenderer())  # type: ignore[arg-type]
    kind = f"kind_{uuid.uuid4().hex[:8]}"  # a label of its own: other tests count too
    claim = Claim(uuid.uuid4(), [], {})
    rendered = RenderedEmail(subject="s", text="t")
    lost = sender._failed(claim, leased("lost", kind), rendered, "550 no such user", False)
    held = sender._failed(claim, leased("held", kind), rendered, "550 no such user", False)
    assert failed_count(kind) == 0  # decided, not yet recorded

    leases: Any = Applying(held={"held"})
    await sender._record(leases, [lost, held])

    assert failed_count(kind) == 1  # the lost one is its new holder's to count
