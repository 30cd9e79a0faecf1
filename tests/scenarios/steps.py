"""Steps the end-to-end scenarios share: what upstream systems send, and waiting for the
product to have taken it in (a subscription is known once renewal stored it)."""

from __future__ import annotations

import asyncio
import time
from datetime import date, timedelta
from typing import Any

import asyncpg

from shared import samples
from shared.contracts import topics
from shared.contracts.subscription_events import SubscriptionUpserted
from shared.messaging.client import Seen, UpstreamClient

# Inside the renewal window (WIN-1 opens 90 days before) whatever day the suite runs, and one
# day before the 30-day reminder and automatic quote (NOTE-1, QUO-7) would go out at once.
RENEWAL_DATE = date.today() + timedelta(days=31)


async def publish_price(upstream: UpstreamClient, product_code: str, **price: Any) -> None:
    await upstream.send(
        topics.CATALOG_EVENTS, samples.event(samples.price(product_code, **price), product_code)
    )


async def given_subscriptions(
    upstream: UpstreamClient, admin_db: asyncpg.Connection, *snapshots: SubscriptionUpserted
) -> None:
    """Publish the snapshots and wait until every service that keeps them stored them all."""
    await upstream.send_many(
        topics.SUBSCRIPTION_EVENTS, [samples.event(s, s.csn) for s in snapshots]
    )
    ids = [s.subscription_id for s in snapshots]
    for service in ("renewal", "quote", "notification"):  # each keeps its own copy
        await until(
            lambda service=service: admin_db.fetchval(
                f"SELECT count(*) = $2 FROM {service}.subscriptions"
                " WHERE subscription_id = ANY($1::text[])",
                ids,
                len(ids),
            ),
            what=f"{service} to store {len(ids)} subscription(s)",
        )


async def given_price_known(admin_db: asyncpg.Connection, product_code: str) -> None:
    await until(
        lambda: admin_db.fetchval(
            "SELECT count(*) > 0 FROM renewal.prices WHERE product_code = $1", product_code
        ),
        what=f"renewal to store the price of {product_code}",
    )


async def until(check: Any, *, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout}s for {what}")
        await asyncio.sleep(0.1)


def answering(request_id: str, event_type: str) -> Any:
    def match(seen: Seen) -> bool:
        return seen.type == event_type and seen.data.get("request_id") == request_id

    return match


def about_subject(subject: str, event_type: str) -> Any:
    def match(seen: Seen) -> bool:
        return seen.type == event_type and seen.event.get("subject") == subject

    return match


async def charges_for(admin_db: asyncpg.Connection, csn: str) -> int:
    return await admin_db.fetchval(
        "SELECT count(*) FROM billing.payments p JOIN billing.orders o USING (order_id)"
        " WHERE o.csn = $1 AND p.outcome = 'succeeded'",
        csn,
    )


def confirmation_to(subject: str) -> Any:
    """The order confirmation emailed for that CSN (reminders and notices are other emails)."""

    def match(seen: Seen) -> bool:
        return (
            seen.type == "email.sent"
            and seen.event.get("subject") == subject
            and seen.data.get("kind") == "order_confirmation"
        )

    return match
