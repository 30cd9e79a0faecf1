"""NOTE-1 with the claim on the next reminder day (issue 19 item 2): the scheduler stores each
subscription's next reminder day and claims only those whose day came. What that must not
change: a changed schedule reminds on its own days, and a day passed with its renewal date is
looked at once, never claimed again."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from deploy.local.samples import price, subscription, unique_csn
from services.notification.directory import save_snapshots
from services.notification.reminders import ReminderScheduler
from services.notification.settings import NotificationSettings
from shared.catalog.store import save_price
from shared.clock import FixedClock
from shared.contracts.envelope import new_event
from shared.db.migrate import migrate
from shared.db.pool import create_pool
from shared.eligibility import Policy
from shared.messaging.consumer import Delivery, UnitOfWork
from shared.test_clocks import CsnClock
from tests.integration.helpers import scratch_schema

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


async def seen(pool: asyncpg.Pool, renewal_in_days: int) -> str:
    """A subscription first seen today, renewing `renewal_in_days` from today."""
    csn = unique_csn()
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
