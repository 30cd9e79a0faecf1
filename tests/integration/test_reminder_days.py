"""NOTE-1 with the claim on the next reminder day (issue 19 item 2): the scheduler stores each
subscription's next reminder day and claims only those whose day came. What that must not
change: a changed schedule reminds on its own days, and a day passed with its renewal date is
looked at once, never claimed again. A subscription first seen, or whose renewal date a renewal
moved, carries the first day a reminder can be due (migration 014): the claim does not read it
before then, and reminds on that day."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from deploy.local.samples import price, subscription, subscription_state, unique_csn
from services.notification.directory import follow_state, save_snapshots
from services.notification.reminders import BATCH, DUE, ReminderScheduler
from services.notification.settings import NotificationSettings
from services.notification.store import close_quotes, open_quotes
from shared.catalog.store import save_price
from shared.clock import FixedClock
from shared.contracts.envelope import new_event
from shared.db.migrate import migrate
from shared.db.pool import create_pool
from shared.eligibility import Policy
from shared.messaging.consumer import Delivery, UnitOfWork
from shared.test_clocks import CsnClock
from tests.integration.helpers import scratch_schema
from tests.integration.test_hot_queries import nodes, rows_read

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
TODAY = NOW.date()


@pytest.fixture
async def pool(admin_db: asyncpg.Connection) -> AsyncIterator[asyncpg.Pool]:
    async with scratch_schema(admin_db, "notification") as settings:
        await migrate("notification", settings)
        pool = await create_pool(settings)
        try:
            yield pool
        finally:
            await pool.close()


async def seen(pool: asyncpg.Pool, renewal_in_days: int, csn: str | None = None) -> str:
    """A subscription first seen today, renewing `renewal_in_days` from today."""
    csn = csn or unique_csn()
    held = subscription(f"{csn}-1", csn, renewal_date=TODAY + timedelta(days=renewal_in_days))
    async with pool.acquire() as connection, connection.transaction():
        unit = UnitOfWork(connection)
        event = new_event(price("ACDLT"), subject=csn, source="/it", time=NOW)
        await save_price(unit, Delivery(event, record=None))
        event = new_event(held, subject=csn, source="/it", time=NOW)
        await save_snapshots(CsnClock(FixedClock(NOW)).today_for)(
            unit, [Delivery(event, record=None)]
        )
    return held.subscription_id


def scheduler(pool: asyncpg.Pool, days_on: int, schedule: tuple[int, ...]) -> ReminderScheduler:
    clock = FixedClock(NOW + timedelta(days=days_on))
    return ReminderScheduler(
        pool, clock, Policy(reminder_days_before=schedule), NotificationSettings()
    )


async def reminders(pool: asyncpg.Pool, subscription_id: str) -> list[str]:
    rows = await pool.fetch(
        "SELECT notification_key FROM emails WHERE kind = 'renewal_reminder'"
        " AND $1 = ANY(subscription_ids) ORDER BY notification_key",
        subscription_id,
    )
    return [row["notification_key"] for row in rows]


async def test_note_1_a_changed_schedule_reminds_on_its_own_days(pool: asyncpg.Pool) -> None:
    """Looked at under (90, 30, 7), its next day stored is 30 days before; the schedule becomes
    (60, 30, 7): the 60-day reminder still goes, on its day."""
    sid = await seen(pool, 80)
    assert await scheduler(pool, 0, (90, 30, 7)).step() == 1  # looked at: nothing due yet
    assert await scheduler(pool, 20, (90, 30, 7)).step() == 0  # 60 days before: not its day

    assert await scheduler(pool, 20, (60, 30, 7)).step() == 1

    renewal_date = TODAY + timedelta(days=80)
    assert await reminders(pool, sid) == [f"renewal_reminder:{sid}:{renewal_date}:60"]
    assert await scheduler(pool, 21, (60, 30, 7)).step() == 0


async def test_note_1_a_reminder_day_passed_with_its_renewal_date_is_looked_at_once(
    pool: asyncpg.Pool,
) -> None:
    """Its 7-day reminder day stored, the scheduler next runs after the renewal date: no
    reminder for a date gone, and the subscription leaves the claim for good."""
    sid = await seen(pool, 20)
    assert await scheduler(pool, 0, (7,)).step() == 1  # next day: 13 days on

    assert await scheduler(pool, 25, (7,)).step() == 1

    assert await reminders(pool, sid) == []
    assert await scheduler(pool, 26, (7,)).step() == 0


async def renewed(pool: asyncpg.Pool, subscription_id: str, renewal_in_days: int) -> None:
    """Renewal's state of it, its renewal date moved to `renewal_in_days` from today."""
    csn = subscription_id.rsplit("-", 1)[0]
    state = subscription_state(
        subscription_id, csn, renewal_date=TODAY + timedelta(days=renewal_in_days), version=2
    )
    async with pool.acquire() as connection, connection.transaction():
        event = new_event(state, subject=csn, source="/it", time=NOW)
        await follow_state(UnitOfWork(connection), [Delivery(event, record=None)])


async def test_note_1_seen_or_renewed_it_is_read_on_its_first_reminder_day_only(
    pool: asyncpg.Pool,
) -> None:
    """Issue 19 item 2: seen 45 days before its date (the 90-day reminder passed before it was
    seen), the claim first reads it 30 days before and reminds; renewed a year on, it is not
    read again until 90 days before the new date, and reminded then."""
    assert await scheduler(pool, 0, (90, 30, 7)).step() == 0  # the schedule recorded
    sid = await seen(pool, 45)
    assert await scheduler(pool, 0, (90, 30, 7)).step() == 0
    assert await scheduler(pool, 14, (90, 30, 7)).step() == 0

    assert await scheduler(pool, 15, (90, 30, 7)).step() == 1
    assert await reminders(pool, sid) == [f"renewal_reminder:{sid}:{TODAY + timedelta(days=45)}:30"]

    await renewed(pool, sid, 45 + 365)
    assert await scheduler(pool, 16, (90, 30, 7)).step() == 0
    assert await scheduler(pool, 45 + 365 - 91, (90, 30, 7)).step() == 0
    assert await scheduler(pool, 45 + 365 - 90, (90, 30, 7)).step() == 1
    assert (await reminders(pool, sid))[-1] == (
        f"renewal_reminder:{sid}:{TODAY + timedelta(days=45 + 365)}:90"
    )


async def test_note_1_a_date_moved_nearer_is_read_at_once_when_a_reminder_day_came(
    pool: asyncpg.Pool,
) -> None:
    """Seen 100 days before its date (first reminder day 10 days on); on day 8 an alignment
    brings the date to 37 days from the start: its 30-day reminder day (day 7) came and was not
    looked at yet, so the claim reads it at once and reminds."""
    assert await scheduler(pool, 0, (90, 30, 7)).step() == 0
    sid = await seen(pool, 100)
    assert await scheduler(pool, 8, (90, 30, 7)).step() == 0

    await renewed(pool, sid, 37)

    assert await scheduler(pool, 8, (90, 30, 7)).step() == 1
    assert await reminders(pool, sid) == [f"renewal_reminder:{sid}:{TODAY + timedelta(days=37)}:30"]


async def claim_reads(pool: asyncpg.Pool, days_on: int) -> int:
    """The subscriptions the reminder claim reads (returned or thrown away), `days_on` on."""
    async with pool.acquire() as connection, connection.transaction():
        [plan] = json.loads(
            await connection.fetchval(
                f"EXPLAIN (ANALYZE, FORMAT JSON) {DUE}",
                NOW + timedelta(days=days_on),
                BATCH,
                None,
            )
        )
    return sum(
        rows_read(node)
        for node in nodes(plan["Plan"])
        if node.get("Relation Name") == "subscriptions"
    )


async def test_note_1_a_subscription_an_open_quote_covers_is_read_once_and_again_when_it_closes(
    pool: asyncpg.Pool,
) -> None:
    """Issue 19 item 2: its 30-day reminder day came while a quote covers its renewal: the
    claim takes it once, reminds nothing and sets it aside — later claims do not read it (they
    read and threw it away at every poll) — and once the quote closes it is looked at again at
    once and gets the reminder of the day that came."""
    assert await scheduler(pool, 0, (90, 30, 7)).step() == 0
    sid = await seen(pool, 45)
    async with pool.acquire() as connection:
        await open_quotes(connection, {"Q-1": [sid]})
    assert await scheduler(pool, 16, (90, 30, 7)).step() == 1
    assert await reminders(pool, sid) == []

    assert await claim_reads(pool, 16) == 0
    assert await scheduler(pool, 17, (90, 30, 7)).step() == 0

    async with pool.acquire() as connection:
        await close_quotes(connection, ["Q-1"])
    assert await scheduler(pool, 17, (90, 30, 7)).step() == 1
    assert await reminders(pool, sid) == [f"renewal_reminder:{sid}:{TODAY + timedelta(days=45)}:30"]
