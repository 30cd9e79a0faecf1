"""Steps the end-to-end scenarios share, whichever stack runs the product (local processes or
containers): what upstream systems send, waiting for the product to have taken it in (a
subscription is known once renewal stored it), and what it did (charges, orders)."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import date, timedelta
from typing import Any

import asyncpg

from deploy.local import samples
from deploy.local.client import Seen, TopicWatcher, UpstreamClient
from shared.contracts import topics
from shared.contracts.clock_commands import SetTestClock
from shared.contracts.common import Actor
from shared.contracts.quote_commands import AcceptQuote, QuoteChanges, QuoteCommand, RequestQuote
from shared.contracts.renewal_commands import RenewalCommand, RequestRenewal, SetAutoRenew
from shared.contracts.subscription_events import SubscriptionUpserted

# Inside the renewal window (WIN-1 opens 90 days before) whatever day the suite runs, and one
# day before the 30-day reminder and automatic quote (NOTE-1, QUO-7) would go out at once.
RENEWAL_DATE = date.today() + timedelta(days=31)


async def publish_price(upstream: UpstreamClient, product_code: str, **price: Any) -> None:
    await upstream.send(
        topics.CATALOG_EVENTS, samples.event(samples.price(product_code, **price), product_code)
    )


def buyer(csn: str) -> Actor:
    """The buyer of the samples' subscriptions of that CSN (ROLE-1)."""
    return Actor(user_id=f"{csn}-buyer", csn=csn)


async def given_product_priced(
    upstream: UpstreamClient,
    admin_db: asyncpg.Connection,
    csn: str,
    *prices: dict[str, Any],
    services: tuple[str, ...] = ("renewal", "quote"),
) -> str:
    """`P-<csn>` priced with each of `prices` (samples.price's fields; none: its annual USD
    price, 466.00 new and 420.00 renewal), once every service of `services`, each pricing from
    its own copy of the catalog, stored them all."""
    product = f"P-{csn}"
    prices = prices or ({},)
    for price in prices:
        await publish_price(upstream, product, **price)
    for service in services:
        await until(
            lambda service=service: admin_db.fetchval(
                f"SELECT count(*) = $2 FROM {service}.prices WHERE product_code = $1",
                product,
                len(prices),
            ),
            what=f"{service} to store the {len(prices)} price(s) of {product}",
        )
    return product


async def set_test_clock(upstream: UpstreamClient, csn: str, today: date) -> None:
    await upstream.send(
        topics.CLOCK_COMMANDS, samples.event(SetTestClock(csn=csn, today=today), csn)
    )


def set_auto_renew(
    csn: str, subscription_ids: list[str], enabled: bool, *, request_id: str | None = None
) -> SetAutoRenew:
    """The buyer's command switching auto-renew of those subscriptions on or off."""
    return SetAutoRenew(
        request_id=request_id or f"ar-{csn}-{enabled}-{len(subscription_ids)}",
        actor=buyer(csn),
        subscription_ids=subscription_ids,
        enabled=enabled,
    )


async def command_answered(
    upstream: UpstreamClient,
    watcher: TopicWatcher,
    command: RenewalCommand | QuoteCommand,
    answer: str,
) -> Seen:
    """The command sent on its topic, keyed by its actor's CSN, and its one answer of type
    `answer` (the event naming its `request_id`)."""
    topic = topics.QUOTE_COMMANDS if isinstance(command, QuoteCommand) else topics.RENEWAL_COMMANDS
    await upstream.send(topic, samples.event(command, command.actor.csn))
    [answered] = await watcher.wait_for(answering(command.request_id, answer))
    return answered


async def request_renewal(
    upstream: UpstreamClient, csn: str, *subscription_ids: str
) -> RequestRenewal:
    """The buyer asks to renew those subscriptions now (MAN-1); the command, sent."""
    command = samples.renewal_request(csn, list(subscription_ids))
    await upstream.send(topics.RENEWAL_COMMANDS, samples.event(command, csn))
    return command


async def request_quote(
    upstream: UpstreamClient,
    csn: str,
    *subscription_ids: str,
    kind: str = "renewal",
    channel: str = "self_service",
    recipients: tuple[str, ...] = (),
    changes: QuoteChanges | None = None,
) -> RequestQuote:
    """The buyer (or sales, by `channel`) asks for a quote of those subscriptions (QUO-1..4);
    the command, sent."""
    command = RequestQuote(
        request_id=f"quote-{kind}-{csn}-{uuid.uuid4().hex[:6]}",
        actor=buyer(csn),
        channel=channel,
        kind=kind,
        subscription_ids=list(subscription_ids),
        recipients=list(recipients),
        changes=changes,
    )
    await upstream.send(topics.QUOTE_COMMANDS, samples.event(command, csn))
    return command


async def quote_sent(
    upstream: UpstreamClient,
    watcher: TopicWatcher,
    csn: str,
    *subscription_ids: str,
    **request: Any,
) -> Seen:
    """A quote of those subscriptions asked for (request_quote's options) and sent: its
    `quote.sent`."""
    command = await request_quote(upstream, csn, *subscription_ids, **request)
    [sent] = await watcher.wait_for(answering(command.request_id, "quote.sent"))
    return sent


def acceptance(csn: str, quote_number: str) -> AcceptQuote:
    """The buyer's command accepting (and so paying) the quote (QUO-8), a request of its own."""
    return AcceptQuote(
        request_id=f"accept-{csn}-{uuid.uuid4().hex[:6]}",
        actor=buyer(csn),
        quote_number=quote_number,
    )


async def accept_quote(
    upstream: UpstreamClient,
    watcher: TopicWatcher,
    csn: str,
    quote_number: str,
    *,
    answer: str = "quote.paid",
) -> Seen:
    """The buyer accepts the quote (QUO-8) and the product answers `answer`: `quote.paid` once
    charged, `payment.awaiting_manual` when the order waits for a bank transfer, or
    `quote.rejected` (the answer to this very command)."""
    command = acceptance(csn, quote_number)
    await upstream.send(topics.QUOTE_COMMANDS, samples.event(command, csn))
    [answered] = await watcher.wait_for(answer_to_acceptance(command, csn, answer))
    return answered


def answer_to_acceptance(command: AcceptQuote, csn: str, event_type: str) -> Any:
    """A refusal names the command; a payment names the quote; an order left waiting for a
    bank transfer names neither: the CSN's."""
    if event_type == "quote.rejected":
        return answering(command.request_id, event_type)

    def match(seen: Seen) -> bool:
        return (
            about_subject(csn, event_type)(seen)
            and seen.data.get("quote_number", command.quote_number) == command.quote_number
        )

    return match


async def renewal_date_of(admin_db: asyncpg.Connection, subscription_id: str) -> date:
    return await admin_db.fetchval(
        "SELECT renewal_date FROM renewal.subscriptions WHERE subscription_id = $1",
        subscription_id,
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


async def given_a_subscription(
    upstream: UpstreamClient,
    admin_db: asyncpg.Connection,
    csn: str,
    *,
    renewal_date: date = RENEWAL_DATE,
    **fields: Any,
) -> SubscriptionUpserted:
    """`S-<csn>` of the product `P-<csn>` (given_product_priced's), with samples.subscription's
    `fields`, stored by every service that keeps it."""
    snapshot = samples.subscription(
        f"S-{csn}", csn, renewal_date=renewal_date, product_code=f"P-{csn}", **fields
    )
    await given_subscriptions(upstream, admin_db, snapshot)
    return snapshot


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


def state_of(csn: str, **expected: Any) -> Any:
    """The `subscription.state` of that CSN saying `expected`."""

    def match(seen: Seen) -> bool:
        return about_subject(csn, "subscription.state")(seen) and all(
            seen.data.get(name) == value for name, value in expected.items()
        )

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
