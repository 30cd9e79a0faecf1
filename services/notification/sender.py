"""Delivers queued emails over SMTP, each exactly once as far as SMTP allows.

Emails are leased a claim at a time (`claim_size` emails under one token, `leases.py`) and sent
one after the other on one SMTP session; the lease is renewed while they go out, and the emails
the server accepted are marked sent, with their `email.sent`, `mark_every` at a time in one
statement (and at the end of the claim, or sooner when their lease runs short) — only while the
token still holds them. A sender killed after the SMTP server accepted messages and before
their mark sends them again once the lease expires: at most `mark_every` duplicates (1 by
default, the most SMTP allows, at a statement per email) per sender per crash; a sender stopped
gracefully marks what SMTP accepted and gives back what it never sent (`_give_back`).
Temporary SMTP failures (4xx, connection errors) are retried with exponential backoff; after
the last try, or on a permanent refusal (5xx), `email.failed`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from services.notification.leases import Claim, LeasedEmail, Leases, Mark
from services.notification.message import OutgoingEmail, build_message
from services.notification.settings import NotificationSettings
from services.notification.smtp import PermanentSmtpError, SmtpSession, TemporarySmtpError
from services.notification.templates import EmailRenderer, RenderedEmail
from shared.clock import Clock
from shared.contracts.envelope import EventData, new_event
from shared.contracts.notification_events import TOPIC as NOTIFICATION_EVENTS
from shared.contracts.notification_events import EmailFailed, EmailSent
from shared.messaging import tracing
from shared.messaging.loops import WorkLoop
from shared.messaging.outbox import Outbox
from shared.plumbing.faults import (
    AFTER_SMTP_ACCEPT,
    SENDER_AFTER_LEASE,
    SENDER_MID_CLAIM,
    FaultPoints,
)
from shared.plumbing.metrics import EMAILS

log = logging.getLogger(__name__)

SERVICE = "notification"
# How long the events of marks may wait in the outbox for the relay to be woken (`wake_relay`):
# at the end of each claim, and sooner when a claim takes longer.
RELAY_WAKE_SECONDS = 0.05
# How long a sender stopped mid-claim may take to record and give back its claim (`_give_back`).
GIVE_BACK_SECONDS = 5.0


class EmailSender:
    """`settings.senders` loops (`loops()`), each with its own SMTP session, sending the claims
    they lease; they share one `LISTEN notification_emails` (the first loop's connection)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        clock: Clock,
        settings: NotificationSettings,
        renderer: EmailRenderer,
        faults: FaultPoints | None = None,
        wake_relay: Callable[[], None] | None = None,
    ) -> None:
        self.pool = pool
        self.clock = clock
        self.settings = settings
        self.renderer = renderer
        self.faults = faults or FaultPoints()
        # The outbox relay of this process, woken here after the marks (issue 19): each mark's
        # event then goes into the outbox without a NOTIFY (migration 017), and a claim's
        # events wake the relay once, not once each. None: every mark notifies, as before.
        self.wake_relay = wake_relay
        self._unpublished_since: float | None = None  # a mark's event the relay was not woken for
        self.leases = Leases(
            pool,
            clock,
            lease_seconds=settings.lease_seconds,
            service=SERVICE,
            relay_woken_here=wake_relay is not None,
        )
        # Emails SMTP accepted whose mark met a database error: marked first at the next step
        # (under the same lease token), not sent again.
        self.unmarked: list[Mark] = []
        self._loops: list[WorkLoop] = []
        self._smtp: list[SmtpSession] = []

    def loops(self) -> list[WorkLoop]:
        """One WorkLoop per sender, its step one claim (`send_due`); register them with
        `runtime.work`."""
        for number in range(self.settings.senders):
            smtp = SmtpSession(self.settings.smtp_host, self.settings.smtp_port)
            self._smtp.append(smtp)
            self._loops.append(
                _SenderLoop(
                    self._loops,
                    f"email_sender_{number}",
                    functools.partial(self.send_due, smtp),
                    service=SERVICE,
                    poll_seconds=self.settings.poll_seconds,
                    # One listening connection for all: the pool is small (one LISTEN each
                    # would hold `senders` connections for ever).
                    pool=self.pool if number == 0 else None,
                    channel="notification_emails" if number == 0 else None,
                )
            )
        return self._loops

    def close(self) -> None:
        for smtp in self._smtp:
            smtp.close()

    async def send_due(self, smtp: SmtpSession) -> int:
        """One claim: each email checked to be still held and sent; the accepted ones marked
        `mark_every` at a time — so that a crash duplicates at most those between SMTP's
        acceptance and their mark — and the rest at the end. The marks that no crash bound
        depends on (failures, retries) go in the next statement."""
        # One connection for the whole claim, its marks each a statement on it (issue 19, s9
        # plan item 2b): the senders hold one each while they send (`pool_size`, app.py).
        async with self.pool.acquire() as connection:
            try:
                return await self._send_claim(smtp, self.leases.on(connection))
            finally:
                self._wake_relay(at_once=True)  # however the claim ended

    async def _send_claim(self, smtp: SmtpSession, leases: Leases) -> int:
        waiting, self.unmarked = self.unmarked, []  # kept by an earlier step: marked first
        await self._record(leases, waiting)
        marks: list[Mark] = []
        claim = await leases.claim(self.settings.claim_size)
        if claim.emails:
            # Leased, nothing sent: a crash here leaves the claim to the next sender once its
            # lease runs out (each email then sent once).
            self.faults.hit(SENDER_AFTER_LEASE)
        if len(claim.emails) == self.settings.claim_size:
            for loop in self._loops:  # a full claim: more may be waiting for the other senders
                loop.wake()
        ready: list[tuple[LeasedEmail, RenderedEmail, OutgoingEmail]] = []
        for email in claim.emails:  # rendered first: each one's envelope goes out with the last
            try:
                rendered = self.renderer.render(email.kind, email.locale, email.context)
                ready.append((email, rendered, self._message(email, rendered)))
            except Exception as error:
                # A template or its data is broken: no retry will help, and the others must go.
                log.exception("email cannot be rendered", extra={"key": email.key})
                unrendered = RenderedEmail(subject=f"({email.kind} not rendered)", text="")
                marks.append(
                    self._failed(claim, email, unrendered, f"cannot render: {error!r}", False)
                )
        handed = 0  # of `ready`, handed to SMTP so far: the rest was never sent
        try:
            accepted = unmarked = 0  # accepted by SMTP in this claim / since the last marks
            first_unmarked: str | None = None  # the first of those, its lease the shortest
            for index, (email, rendered, message) in enumerate(ready):
                if not await leases.hold(claim, email.key):
                    continue  # its lease expired and another sender has it now: theirs to send
                following = ready[index + 1][2] if index + 1 < len(ready) else None
                handed = index + 1
                try:
                    await smtp.send(message, following)
                except (TemporarySmtpError, PermanentSmtpError) as failure:
                    temporary = isinstance(failure, TemporarySmtpError)
                    marks.append(self._failed(claim, email, rendered, str(failure), temporary))
                    continue
                self.faults.hit(AFTER_SMTP_ACCEPT)
                marks.append(self._sent(claim, email, rendered))
                accepted += 1
                unmarked += 1
                if index + 1 < len(ready) and (
                    unmarked >= self.settings.mark_every
                    or leases.running_out(claim, first_unmarked or email.key)
                ):
                    # `marks` emptied once recorded, not before: a stop meanwhile records them
                    await self._record(leases, marks)
                    marks = []
                    if accepted == unmarked:  # the claim's first marks: the rest still to send
                        self.faults.hit(SENDER_MID_CLAIM)
                    unmarked, first_unmarked = 0, None
                elif first_unmarked is None:
                    first_unmarked = email.key
            await self._record(leases, marks)
        except asyncio.CancelledError:
            unsent = [email.key for email, _, _ in ready[handed:]]
            await self._give_back(claim, marks, unsent)
            raise
        return len(claim.emails)

    async def _give_back(self, claim: Claim, marks: list[Mark], unsent: list[str]) -> None:
        """The sender is stopped mid-claim (the service shuts down): what SMTP accepted is
        recorded, so that a graceful stop sends nothing twice, and the emails never handed to
        SMTP are given back, so that the next sender sends them now, not once the lease has run
        out (`lease_seconds`, a minute by default). The one SMTP had when the stop came may
        have been accepted: it keeps its lease, and goes again when that expires.

        Marks stopped in the middle of their statement are recorded again: applied once (their
        token and status checked), though counted twice in `renewals_emails_total` should the
        first have committed. On a connection of its own (the claim's may have been stopped in
        the middle of a statement), and bounded: past `GIVE_BACK_SECONDS` — a database that does not answer —
        the leases' expiry does the same, later."""

        async def give_back() -> None:
            async with self.pool.acquire() as connection:
                leases = self.leases.on(connection)
                await self._record(leases, marks)
                await leases.release(claim, unsent)

        try:
            await asyncio.wait_for(give_back(), GIVE_BACK_SECONDS)
        except Exception as error:
            log.warning(
                "a stopped sender could not give its claim back: its lease's expiry will",
                extra={"emails": len(unsent) + len(marks), "error": repr(error)},
            )
        else:
            log.info("a stopped sender gave its claim back", extra={"emails": len(unsent)})

    async def _record(self, leases: Leases, marks: list[Mark]) -> None:
        """Record `marks` in one statement; on a database error keep them for the next step
        and raise (the loop logs, counts and backs off)."""
        if not marks:
            return
        try:
            recorded = await leases.record(marks)
        except Exception:
            for mark in marks:
                mark.failures += 1
                if mark.failures < self.settings.max_attempts:
                    self.unmarked.append(mark)
                else:
                    log.error(
                        "giving up recording an email's outcome: sent again once its lease expires",
                        extra={"key": mark.key, "status": mark.status},
                    )
            raise
        for mark in recorded:  # counted once applied: a mark another sender's lease refused
            if mark.status in ("sent", "failed"):  # is that sender's to count
                EMAILS.labels(SERVICE, mark.kind, mark.status).inc()
        if self._unpublished_since is None and any(mark.outbox_rows for mark in recorded):
            self._unpublished_since = time.monotonic()
        self._wake_relay(at_once=False)

    def _wake_relay(self, *, at_once: bool) -> None:
        """Wake the relay for the events marks added: `at_once`, or once the first of them has
        waited `RELAY_WAKE_SECONDS`."""
        since = self._unpublished_since
        if self.wake_relay is None or since is None:
            return
        if at_once or time.monotonic() - since >= RELAY_WAKE_SECONDS:
            self._unpublished_since = None
            self.wake_relay()

    def _message(self, email: LeasedEmail, rendered: RenderedEmail) -> OutgoingEmail:
        return build_message(
            self.settings.sender_address,
            list(email.recipients),
            rendered.subject,
            email.key,
            rendered.text,
            rendered.html,
        )

    def _event_fields(self, email: LeasedEmail, rendered: RenderedEmail) -> dict[str, Any]:
        return {
            "notification_id": email.key,
            "kind": email.kind,
            "to": list(email.recipients),
            "locale": email.locale,
            "subject": rendered.subject,
            "subscription_ids": list(email.subscription_ids),
            "order_id": email.order_id,
            "quote_number": email.quote_number,
        }

    def _announced(self, email: LeasedEmail, event: EventData, now: datetime) -> Outbox:
        """`event` about `email` in an outbox of its own, in the trace that queued the email."""
        outbox = Outbox()
        outbox.add(
            NOTIFICATION_EVENTS,
            new_event(
                event,
                subject=email.csn,
                source=self.settings.source,
                time=now,
                cause=tracing.parse(email.traceparent),
            ),
        )
        return outbox

    def _sent(self, claim: Claim, email: LeasedEmail, rendered: RenderedEmail) -> Mark:
        now = self.clock.now()
        outbox = self._announced(email, EmailSent(**self._event_fields(email, rendered)), now)
        return Mark(
            claim.token,
            email.key,
            email.kind,
            "sent",
            next_attempt_at=email.next_attempt_at,
            sent_at=now,
            subject=rendered.subject,
            outbox_rows=outbox.rows,
        )

    def _failed(
        self,
        claim: Claim,
        email: LeasedEmail,
        rendered: RenderedEmail,
        reason: str,
        temporary: bool,
    ) -> Mark:
        now = self.clock.now()
        attempts = email.attempts + 1
        if temporary and attempts < self.settings.max_attempts:
            retry_at = now + timedelta(
                seconds=self.settings.retry_base_seconds * 2 ** (attempts - 1)
            )
            log.warning(
                "email delivery failed, will retry", extra={"key": email.key, "error": reason}
            )
            return Mark(claim.token, email.key, email.kind, "pending", retry_at, error=reason)
        log.error("email delivery failed for good", extra={"key": email.key, "error": reason})
        failed = EmailFailed(**self._event_fields(email, rendered), reason=reason)
        outbox = self._announced(email, failed, now)
        return Mark(
            claim.token, email.key, email.kind, "failed", now, error=reason, outbox_rows=outbox.rows
        )


class _SenderLoop(WorkLoop):
    """A sender's WorkLoop whose wake-up (a NOTIFY on the shared channel) wakes every sender."""

    def __init__(self, group: list[WorkLoop], *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.group = group

    def wake(self, *_: object) -> None:
        for loop in self.group:
            WorkLoop.wake(loop)
