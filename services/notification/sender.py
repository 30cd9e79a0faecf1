"""Delivers queued emails over SMTP, each exactly once as far as SMTP allows.

An email is leased (a committed claim with an expiry), sent, then marked sent together with its
`email.sent` event in one transaction. A process killed after the SMTP server accepted a message
but before that commit sends it again once the lease expires: at most one duplicate, for that one
email — SMTP gives no stronger promise. Temporary SMTP failures (4xx, connection errors) are retried
with exponential backoff; after the last try, or on a permanent refusal (5xx), `email.failed`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import smtplib
from datetime import timedelta
from email.message import EmailMessage
from typing import Any

import asyncpg

from services.notification.settings import NotificationSettings
from services.notification.templates import EmailRenderer, RenderedEmail
from shared.clock import Clock
from shared.contracts.envelope import new_event
from shared.contracts.notification_events import TOPIC as NOTIFICATION_EVENTS
from shared.contracts.notification_events import EmailFailed, EmailSent
from shared.messaging.outbox import Outbox

log = logging.getLogger(__name__)


class TemporarySmtpError(Exception):
    pass


class PermanentSmtpError(Exception):
    pass


class SmtpConnection:
    """One SMTP session reused across emails; reopened after any failure."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._smtp: smtplib.SMTP | None = None

    def send(self, message: EmailMessage) -> None:
        try:
            if self._smtp is None:
                self._smtp = smtplib.SMTP(self.host, self.port, timeout=10)
            self._smtp.send_message(message)
        except smtplib.SMTPResponseException as error:
            self.close()
            if 400 <= error.smtp_code < 500:
                raise TemporarySmtpError(f"{error.smtp_code} {error.smtp_error!r}") from None
            raise PermanentSmtpError(f"{error.smtp_code} {error.smtp_error!r}") from None
        except smtplib.SMTPRecipientsRefused as error:
            self.close()
            codes = [code for code, _ in error.recipients.values()]
            if all(400 <= code < 500 for code in codes):
                raise TemporarySmtpError(f"recipients refused: {error.recipients}") from None
            raise PermanentSmtpError(f"recipients refused: {error.recipients}") from None
        except (OSError, smtplib.SMTPException) as error:
            self.close()
            raise TemporarySmtpError(repr(error)) from None

    def close(self) -> None:
        if self._smtp is not None:
            with contextlib.suppress(Exception):
                self._smtp.close()
            self._smtp = None


class EmailSender:
    def __init__(
        self,
        pool: asyncpg.Pool,
        clock: Clock,
        settings: NotificationSettings,
        renderer: EmailRenderer,
    ) -> None:
        self.pool = pool
        self.clock = clock
        self.settings = settings
        self.renderer = renderer
        self._wake = asyncio.Event()

    async def run(self) -> None:
        listener = await self.pool.acquire()
        try:
            await listener.add_listener("notification_emails", self._on_notify)
            await asyncio.gather(*(self._sender() for _ in range(self.settings.senders)))
        finally:
            with contextlib.suppress(Exception):
                await listener.remove_listener("notification_emails", self._on_notify)
            await self.pool.release(listener)

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def _sender(self) -> None:
        smtp = SmtpConnection(self.settings.smtp_host, self.settings.smtp_port)
        try:
            while True:
                try:
                    worked = await self.send_due(smtp)
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                    log.warning("email sender failed, retrying", extra={"error": repr(error)})
                    worked = 0
                    await asyncio.sleep(self.settings.poll_seconds)
                if worked:
                    continue
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.settings.poll_seconds)
        finally:
            smtp.close()

    async def send_due(self, smtp: SmtpConnection) -> int:
        emails = await self._lease()
        for email in emails:
            await self._deliver(smtp, email)
        return len(emails)

    async def _lease(self) -> list[asyncpg.Record]:
        now = self.clock.now()
        return await self.pool.fetch(
            """UPDATE emails SET lease_until = $2
               WHERE notification_key IN (
                   SELECT notification_key FROM emails
                   WHERE status = 'pending' AND next_attempt_at <= $1
                     AND (lease_until IS NULL OR lease_until < $1)
                   ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED)
               RETURNING notification_key, kind, csn, recipients, locale, context::text AS context,
                         subscription_ids, order_id, quote_number, attempts""",
            now,
            now + timedelta(seconds=self.settings.lease_seconds),
            self.settings.claim_size,
        )

    async def _deliver(self, smtp: SmtpConnection, email: asyncpg.Record) -> None:
        context: dict[str, Any] = json.loads(email["context"])
        try:
            rendered = self.renderer.render(email["kind"], email["locale"], context)
        except Exception as error:
            # A template or its data is broken: no retry will help, and the other emails must go.
            log.exception("email cannot be rendered", extra={"key": email["notification_key"]})
            unrendered = RenderedEmail(subject=f"({email['kind']} not rendered)", text="")
            await self._failed(email, unrendered, f"cannot render: {error!r}", temporary=False)
            return
        message = self._message(email, rendered)
        try:
            await asyncio.to_thread(smtp.send, message)
        except TemporarySmtpError as error:
            await self._failed(email, rendered, str(error), temporary=True)
            return
        except PermanentSmtpError as error:
            await self._failed(email, rendered, str(error), temporary=False)
            return
        await self._sent(email, rendered)

    def _message(self, email: asyncpg.Record, rendered: RenderedEmail) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.settings.sender_address
        message["To"] = ", ".join(email["recipients"])
        message["Subject"] = rendered.subject
        # Lets a mailbox (and the tests) see that a duplicate is the same notification.
        message["X-Notification-Key"] = email["notification_key"]
        message.set_content(rendered.text)
        return message

    def _event_fields(self, email: asyncpg.Record, rendered: RenderedEmail) -> dict[str, Any]:
        return {
            "notification_id": email["notification_key"],
            "kind": email["kind"],
            "to": list(email["recipients"]),
            "locale": email["locale"],
            "subject": rendered.subject,
            "subscription_ids": list(email["subscription_ids"]),
            "order_id": email["order_id"],
            "quote_number": email["quote_number"],
        }

    async def _sent(self, email: asyncpg.Record, rendered: RenderedEmail) -> None:
        now = self.clock.now()
        outbox = Outbox()
        sent = EmailSent(**self._event_fields(email, rendered))
        outbox.add(
            NOTIFICATION_EVENTS,
            new_event(sent, subject=email["csn"], source=self.settings.source, time=now),
        )
        async with self.pool.acquire() as connection, connection.transaction():
            await connection.execute(
                "UPDATE emails SET status = 'sent', sent_at = $2, subject = $3, attempts = attempts + 1,"
                " lease_until = NULL WHERE notification_key = $1",
                email["notification_key"],
                now,
                rendered.subject,
            )
            await outbox.flush(connection)

    async def _failed(
        self, email: asyncpg.Record, rendered: RenderedEmail, reason: str, *, temporary: bool
    ) -> None:
        now = self.clock.now()
        attempts = email["attempts"] + 1
        outbox = Outbox()
        if temporary and attempts < self.settings.max_attempts:
            retry_at = now + timedelta(
                seconds=self.settings.retry_base_seconds * 2 ** (attempts - 1)
            )
            status = "pending"
            log.warning(
                "email delivery failed, will retry",
                extra={"key": email["notification_key"], "error": reason},
            )
        else:
            retry_at = now
            status = "failed"
            failed = EmailFailed(**self._event_fields(email, rendered), reason=reason)
            outbox.add(
                NOTIFICATION_EVENTS,
                new_event(failed, subject=email["csn"], source=self.settings.source, time=now),
            )
            log.error(
                "email delivery failed for good",
                extra={"key": email["notification_key"], "error": reason},
            )
        async with self.pool.acquire() as connection, connection.transaction():
            await connection.execute(
                "UPDATE emails SET status = $2, attempts = $3, next_attempt_at = $4, last_error = $5,"
                " lease_until = NULL WHERE notification_key = $1",
                email["notification_key"],
                status,
                attempts,
                retry_at,
                reason,
            )
            await outbox.flush(connection)
