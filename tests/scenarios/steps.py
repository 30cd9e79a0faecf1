"""Steps the end-to-end scenarios share, whichever stack runs the product (local processes or
containers): what upstream systems send, waiting for the product to have taken it in (a
subscription is known once renewal stored it), and what it did (charges, orders)."""

from __future__ import annotations

import asyncio
import time
from datetime import date, timedelta
from typing import Any

import asyncpg

from deploy.local import samples
from deploy.local.client import Seen, UpstreamClient
from shared.contracts import topics
from shared.contracts.subscription_events import SubscriptionUpserted

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


async def given_a_hundred_subscriptions_in_three_groups(
    upstream: UpstreamClient, admin_db: asyncpg.Connection, csn: str
) -> list[SubscriptionUpserted]:
    """100 subscriptions of one buyer: USD online, EUR online, USD through sales (MAN-2)."""
    product = f"P-{csn}"
    await publish_price(upstream, product)
    await publish_price(
        upstream, product, currency="EUR", list_price="433.00", renewal_price="390.00"
    )
    await given_price_known(admin_db, product)
    kinds = [
        ("USD", "US", "direct_online"),
        ("EUR", "FR", "direct_online"),
        ("USD", "US", "direct_sales"),
    ]
    snapshots = [
        samples.subscription(
            f"S-{csn}-{n:03}",
            csn,
            renewal_date=RENEWAL_DATE,
            product_code=product,
            currency=kinds[n % 3][0],
            country=kinds[n % 3][1],
            purchase_method=kinds[n % 3][2],
        )
        for n in range(100)
    ]
    await given_subscriptions(upstream, admin_db, *snapshots)
    return snapshots


async def given_one_subscription_each(
    upstream: UpstreamClient, admin_db: asyncpg.Connection, csns: list[str]
) -> list[SubscriptionUpserted]:
    """One subscription per customer, all of one product the catalog prices."""
    product = f"P-{csns[0]}"
    await publish_price(upstream, product)
    await given_price_known(admin_db, product)
    snapshots = [
        samples.subscription(f"S-{csn}", csn, renewal_date=RENEWAL_DATE, product_code=product)
        for csn in csns
    ]
    await given_subscriptions(upstream, admin_db, *snapshots)
    return snapshots


async def orders_for(admin_db: asyncpg.Connection, csn: str) -> int:
    return await admin_db.fetchval("SELECT count(*) FROM billing.orders WHERE csn = $1", csn)


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
