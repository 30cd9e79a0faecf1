"""Issue 15, item 2 — one bad row never stops the rest: a row that makes a time-driven loop's
decision raise (a price of 1E+27 in the stored catalog copy breaks rounding) is parked with its
reason, and the good rows of the same claim are renewed, lapsed, reminded, quoted or expired.
A transient database error parks nothing: the step raises, and its WorkLoop backs off.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from deploy.local.samples import price, subscription, unique_csn
from services.notification.directory import save_snapshots
from services.notification.reminders import ReminderScheduler
from services.notification.settings import NotificationSettings
from services.quote.automatic import AutomaticQuotes
from services.quote.directory import save_snapshot as save_quote_snapshot
from services.quote.expiry import QuoteExpiry
from services.quote.quotes import QuoteHandlers
from services.renewal.due_date_engine import DueDateEngine
from services.renewal.state import snapshot_handler
from shared.catalog.store import save_price
from shared.clock import FixedClock
from shared.contracts.envelope import new_event
from shared.eligibility import Policy
from shared.messaging.consumer import BatchEventHandler, Delivery, UnitOfWork
from shared.plumbing.metrics import ITEMS_PARKED
from shared.test_clocks import CsnClock
from tests.integration.helpers import insert_quote, migrated

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
TODAY = NOW.date()
POISON = "1E+27"  # passes validation, breaks rounding to cents


@pytest.fixture
async def renewal_pool(admin_db: asyncpg.Connection) -> AsyncIterator[asyncpg.Pool]:
    async with migrated(admin_db, "renewal") as pool:
        yield pool


@pytest.fixture
async def notification_pool(admin_db: asyncpg.Connection) -> AsyncIterator[asyncpg.Pool]:
    async with migrated(admin_db, "notification") as pool:
        yield pool


@pytest.fixture
async def quote_pool(admin_db: asyncpg.Connection) -> AsyncIterator[asyncpg.Pool]:
    async with migrated(admin_db, "quote") as pool:
        yield pool


def delivery(data: Any, csn: str) -> Delivery:
    return Delivery(new_event(data, subject=csn, source="/it/parking", time=NOW), record=None)


async def store(pool: asyncpg.Pool, save: Any, items: list[Any], csn: str) -> None:
    async with pool.acquire() as connection, connection.transaction():
        unit = UnitOfWork(connection)
        if isinstance(save, BatchEventHandler):
            await save(unit, [delivery(item, csn) for item in items])
            return
        for item in items:
            await save(unit, delivery(item, csn))


async def poison_prices_of(pool: asyncpg.Pool, product_code: str) -> None:
    """What a catalog copy may hold: a price no validation refused, that rounding cannot take."""
    await pool.execute(
        "UPDATE prices SET list_price = $2::numeric, renewal_price = $2::numeric"
        " WHERE product_code = $1",
        product_code,
        POISON,
    )


async def parked(pool: asyncpg.Pool, loop: str) -> dict[str, str]:
    rows = await pool.fetch("SELECT item, reason FROM parked_items WHERE loop = $1", loop)
    return {row["item"]: row["reason"] for row in rows}


def parked_count(service: str, loop: str) -> float:
    return ITEMS_PARKED.labels(service, loop)._value.get()


async def test_the_engine_parks_a_subscription_whose_price_breaks_rounding_and_renews_the_others(
    renewal_pool: asyncpg.Pool,
) -> None:
    """AUTO-1 for the good subscriptions, LIFE-2 for the one without auto-renew, despite the
    poison one in the same claim."""
    csn = unique_csn()
    good = [
        subscription(f"{csn}-good-{n}", csn, renewal_date=TODAY, auto_renew=True) for n in range(3)
    ]
    lapsing = subscription(f"{csn}-lapsing", csn, renewal_date=TODAY, auto_renew=False)
    bad = subscription(
        f"{csn}-bad", csn, renewal_date=TODAY, auto_renew=True, product_code="POISON"
    )
    await store(renewal_pool, save_price, [price("ACDLT"), price("POISON")], csn)
    await store(
        renewal_pool, snapshot_handler(Policy(), "/it", FixedClock(NOW)), [*good, lapsing, bad], csn
    )
    await poison_prices_of(renewal_pool, "POISON")
    engine = DueDateEngine(
        renewal_pool, FixedClock(NOW), Policy(), source="/it", batch_size=50, interval_seconds=1
    )
    before = parked_count("renewal", "due_date_engine")

    assert await engine.step() == 5

    ordered = await renewal_pool.fetch("SELECT subscription_id FROM auto_renewals")
    assert {row["subscription_id"] for row in ordered} == {s.subscription_id for s in good}
    lapsed = await renewal_pool.fetchval(
        "SELECT lapse_announced_for FROM subscriptions WHERE subscription_id = $1",
        lapsing.subscription_id,
    )
    assert lapsed == TODAY
    reasons = await parked(renewal_pool, "due_date_engine")
    assert list(reasons) == [bad.subscription_id]
    assert "InvalidOperation" in reasons[bad.subscription_id]
    assert parked_count("renewal", "due_date_engine") == before + 1
    # Parked: the next claims pass it by instead of failing on it again.
    assert await engine.step() == 0
    assert (
        await renewal_pool.fetchval(
            "SELECT count(*) FROM outbox WHERE topic <> 'subscription.state'"
        )
        == 4
    )  # 3 orders, 1 lapse


async def test_the_reminders_park_a_subscription_whose_price_breaks_rounding(
    notification_pool: asyncpg.Pool,
) -> None:
    """NOTE-1 for the good subscriptions, despite the poison one in the same claim."""
    csn = unique_csn()
    due_on = TODAY + timedelta(days=7)
    good = [subscription(f"{csn}-good-{n}", csn, renewal_date=due_on) for n in range(3)]
    bad = subscription(f"{csn}-bad", csn, renewal_date=due_on, product_code="POISON")
    await store(notification_pool, save_price, [price("ACDLT"), price("POISON")], csn)
    # First seen a week earlier, so that the 7-day reminder is still ahead of it.
    seen_on = FixedClock(NOW - timedelta(days=7))
    async with notification_pool.acquire() as connection, connection.transaction():
        await save_snapshots(CsnClock(seen_on).today_for)(
            UnitOfWork(connection), [delivery(s, csn) for s in [*good, bad]]
        )
    await poison_prices_of(notification_pool, "POISON")
    reminders = ReminderScheduler(
        notification_pool, FixedClock(NOW), Policy(), NotificationSettings()
    )

    assert await reminders.step() == 4

    keys = await notification_pool.fetch(
        "SELECT notification_key FROM emails WHERE kind = 'renewal_reminder'"
    )
    assert {row["notification_key"] for row in keys} == {
        f"renewal_reminder:{s.subscription_id}:{due_on}:7" for s in good
    }
    reasons = await parked(notification_pool, "renewal_reminders")
    assert list(reasons) == [bad.subscription_id]
    assert "InvalidOperation" in reasons[bad.subscription_id]
    assert await reminders.step() == 0


async def test_automatic_quotes_park_a_subscription_whose_price_breaks_rounding(
    quote_pool: asyncpg.Pool,
) -> None:
    """QUO-7 for the good subscriptions, despite the poison one in the same claim."""
    csn = unique_csn()
    due_on = TODAY + timedelta(days=30)
    good = [subscription(f"{csn}-good-{n}", csn, renewal_date=due_on) for n in range(3)]
    bad = subscription(f"{csn}-bad", csn, renewal_date=due_on, product_code="POISON")
    await store(quote_pool, save_price, [price("ACDLT"), price("POISON")], csn)
    await store(quote_pool, save_quote_snapshot, [*good, bad], csn)
    await poison_prices_of(quote_pool, "POISON")
    policy = Policy()
    automatic = AutomaticQuotes(
        quote_pool, FixedClock(NOW), policy, QuoteHandlers(FixedClock(NOW), policy, "/it"), 1
    )

    assert await automatic.step() == 4

    quoted = await quote_pool.fetch(
        "SELECT subscription_id FROM automatic_quotes WHERE quote_number IS NOT NULL"
    )
    assert {row["subscription_id"] for row in quoted} == {s.subscription_id for s in good}
    reasons = await parked(quote_pool, "automatic_quotes")
    assert list(reasons) == [bad.subscription_id]
    assert await automatic.step() == 0


async def test_quote_expiry_parks_a_quote_it_cannot_announce_and_expires_the_others(
    quote_pool: asyncpg.Pool,
) -> None:
    """QUO-8 for the good quotes; the bad one (a number too long for the contract) parked."""
    csn = unique_csn()
    good = [f"Q-{csn}-{n}" for n in range(3)]
    bad = "Q-" + "9" * 80
    for number in [*good, bad]:
        await insert_quote(quote_pool, number, csn, TODAY - timedelta(days=1))
    expiry = QuoteExpiry(quote_pool, FixedClock(NOW), "/it", 1)

    assert await expiry.step() == 4

    statuses = await quote_pool.fetch("SELECT quote_number, status FROM quotes")
    assert {row["quote_number"]: row["status"] for row in statuses} == {
        **dict.fromkeys(good, "expired"),
        bad: "sent",
    }
    assert list(await parked(quote_pool, "quote_expiry")) == [bad]
    assert await quote_pool.fetchval("SELECT count(*) FROM outbox") == 3
    assert await expiry.step() == 0


async def test_a_transient_database_error_parks_nothing_and_the_step_raises(
    quote_pool: asyncpg.Pool,
) -> None:
    """A serialization failure is the database's, not the row's: the WorkLoop backs off."""
    csn = unique_csn()
    await insert_quote(quote_pool, f"Q-{csn}", csn, TODAY - timedelta(days=1))
    expiry = QuoteExpiry(quote_pool, FixedClock(NOW), "/it", 1)

    async def serialization_failure(only: str | None = None) -> int:
        raise asyncpg.SerializationError("could not serialize access")

    expiry.claims.claim = serialization_failure
    with pytest.raises(asyncpg.SerializationError):
        await expiry.step()
    assert await parked(quote_pool, "quote_expiry") == {}
