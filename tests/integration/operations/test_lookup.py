"""`customer show` and `subscription show` read what notification knows (its emails) with its
own role. The rows are written here as the superuser, with ids of this test only."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import asyncpg

from deploy.local.samples import unique_csn
from tests.integration.operations.conftest import cli


async def test_emails_sent_to_a_customer_are_shown(admin_db: asyncpg.Connection) -> None:
    csn = unique_csn()
    key = f"order_confirmation:ORD-{csn}"
    now = datetime.now(UTC)
    await admin_db.execute(
        "INSERT INTO notification.emails (notification_key, kind, csn, recipients, locale,"
        " context, subscription_ids, order_id, status, next_attempt_at, subject, created_at,"
        " sent_at) VALUES ($1, 'order_confirmation', $2, $3, 'en-US', '{}', $4, $5, 'sent',"
        " $6, 'Your order', $6, $6)",
        key,
        csn,
        [f"buyer@{csn.lower()}.example.com"],
        [f"S-{csn}"],
        f"ORD-{csn}",
        now,
    )
    try:
        shown = json.loads((await cli("customer", "show", csn, "--json")).output)
        assert [(e["notification_key"], e["status"]) for e in shown["emails"]] == [(key, "sent")]
        pretty = await cli("customer", "show", csn)
        assert "emails (notification)" in pretty.output and "nothing is known" not in pretty.output
        assert "emails (notification): none" not in pretty.output
    finally:
        await admin_db.execute("DELETE FROM notification.emails WHERE csn = $1", csn)
