"""The email sender on a real database and SMTP server: one email that can't be rendered must
not stop the others (a poison email fails alone, with `email.failed`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from services.notification.sender import EmailSender
from services.notification.settings import NotificationSettings
from services.notification.templates import EmailRenderer
from shared.clock import SystemClock
from shared.db.migrate import migrate
from shared.db.pool import create_pool
from shared.db.settings import DatabaseSettings
from shared.samples import unique_csn
from tests.integration.helpers import eventually, scratch_schema
from tests.support.smtp import SmtpServer


@pytest.fixture
async def notification_db(admin_db: asyncpg.Connection) -> AsyncIterator[DatabaseSettings]:
    async with scratch_schema(admin_db, "notification") as settings:
        await migrate("notification", settings)
        yield settings


def order_context(order_id: str) -> dict[str, Any]:
    item = {
        "subscription_id": "sub-1",
        "product_name": "AutoCAD LT",
        "term": "annual",
        "seats": 1,
        "renewal_date": "2026-03-01",
    }
    return {"order_id": order_id, "items": [item]}


async def queue(pool: asyncpg.Pool, key: str, context: dict[str, Any], due: datetime) -> None:
    await pool.execute(
        """INSERT INTO emails (notification_key, kind, csn, recipients, locale, context,
                               subscription_ids, order_id, next_attempt_at, created_at)
           VALUES ($1, 'order_confirmation', $2, $3, 'en-US', $4::jsonb, '{sub-1}', $5, $6, $6)""",
        key,
        unique_csn(),
        [f"buyer-{uuid.uuid4().hex[:6]}@example.com"],
        json.dumps(context),
        context.get("order_id", "ORD-?"),
        due,
    )


async def test_an_email_that_cannot_be_rendered_fails_alone(
    notification_db: DatabaseSettings,
) -> None:
    pool = await create_pool(notification_db)
    now = datetime.now(UTC)
    broken = order_context("ORD-BROKEN")
    del broken["order_id"]  # the template needs it: StrictUndefined refuses to render
    good_key = f"order_confirmation:ORD-{uuid.uuid4().hex[:8]}"
    try:
        with SmtpServer() as smtp:
            settings = NotificationSettings(
                database=notification_db, smtp_port=smtp.port, senders=1, poll_seconds=0.1
            )
            sender = EmailSender(pool, SystemClock(), settings, EmailRenderer())
            await queue(pool, "order_confirmation:BROKEN", broken, now - timedelta(minutes=1))
            await queue(pool, good_key, order_context(good_key), now)
            task = asyncio.create_task(sender.run())
            try:

                async def both_done() -> bool:
                    # One claim takes both; the order they are delivered in is not fixed.
                    rows = await pool.fetch("SELECT notification_key, status FROM emails")
                    statuses = {row["notification_key"]: row["status"] for row in rows}
                    wanted = {"order_confirmation:BROKEN": "failed", good_key: "sent"}
                    return statuses == wanted or task.done()

                await eventually(both_done, timeout=5, what="one email sent, the other failed")
                assert not task.done(), f"the sender died: {task.exception()!r}"
                assert len(smtp.mailbox.with_key(good_key)) == 1
                announced = [
                    json.loads(row["value"])
                    for row in await pool.fetch("SELECT value FROM outbox ORDER BY id")
                ]
                failed = [e for e in announced if e["type"] == "email.failed"]
                assert [e["data"]["notification_id"] for e in failed] == [
                    "order_confirmation:BROKEN"
                ]
                assert "order_id" in failed[0]["data"]["reason"]
                assert [e["type"] for e in announced if e is not failed[0]] == ["email.sent"]
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
    finally:
        await pool.close()
