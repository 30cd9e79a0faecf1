"""Quote and notification follow `subscription.state` (issue 14 item 2) on a real database: the
newest version wins whatever the order the messages come in (replays, compaction), a state that
arrives before the subscription system's snapshot still wins, and what they decide with is
renewal's auto-renew, dates and next term, not the snapshot's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any

import asyncpg
import pytest

from deploy.local.samples import subscription, subscription_state, unique_csn
from services.notification import directory as notification_directory
from services.quote import directory as quote_directory
from shared.clock import FixedClock
from shared.contracts.envelope import new_event
from shared.messaging.consumer import Delivery, UnitOfWork
from shared.test_clocks import CsnClock
from tests.integration.helpers import migrated

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SNAPSHOT_DATE = date(2026, 6, 1)
RENEWED_DATE = date(2027, 6, 1)


def _delivery(data: Any) -> Delivery:
    return Delivery(new_event(data, subject=data.csn, source="/it", time=NOW), record=None)


@pytest.fixture(params=["quote", "notification"])
async def follower(
    request: pytest.FixtureRequest, admin_db: asyncpg.Connection
) -> AsyncIterator[tuple[str, asyncpg.Pool]]:
    async with migrated(admin_db, request.param) as pool:
        yield request.param, pool


async def _snapshot(service: str, pool: asyncpg.Pool, csn: str) -> str:
    snapshot = subscription(f"S-{csn}", csn, renewal_date=SNAPSHOT_DATE, auto_renew=False)
    async with pool.acquire() as connection, connection.transaction():
        unit = UnitOfWork(connection)
        if service == "quote":
            await quote_directory.save_snapshot(unit, [_delivery(snapshot)])
        else:
            save = notification_directory.save_snapshots(CsnClock(FixedClock(NOW)).today_for)
            await save(unit, [_delivery(snapshot)])
    return snapshot.subscription_id


async def _follow(service: str, pool: asyncpg.Pool, *states: Any) -> None:
    handler = (quote_directory if service == "quote" else notification_directory).follow_state
    async with pool.acquire() as connection, connection.transaction():
        await handler(UnitOfWork(connection), [_delivery(s) for s in states])


async def _renewal_date(pool: asyncpg.Pool, subscription_id: str) -> date:
    return await pool.fetchval(
        "SELECT renewal_date FROM subscriptions WHERE subscription_id = $1", subscription_id
    )


async def test_the_newest_version_wins_in_any_order(follower: tuple[str, asyncpg.Pool]) -> None:
    service, pool = follower
    csn = unique_csn()
    sid = await _snapshot(service, pool, csn)
    newer = subscription_state(sid, csn, renewal_date=RENEWED_DATE, version=5, auto_renew=True)
    older = subscription_state(sid, csn, renewal_date=SNAPSHOT_DATE, version=4)
    await _follow(service, pool, newer, older)  # one batch, out of order
    await _follow(service, pool, older)  # replayed later
    assert await _renewal_date(pool, sid) == RENEWED_DATE
    assert await pool.fetchval("SELECT version FROM subscription_states") == 5


async def test_issue_19_the_same_state_twice_is_one_effect_without_an_inbox(
    follower: tuple[str, asyncpg.Pool],
) -> None:
    """Both followers consume `subscription.state` without inbox rows (`inbox=False` in their
    apps): a redelivered state must change nothing, by its version alone — neither the state
    kept nor the subscription's row (its dates, notification's `reminders_after`) is written
    again (their row versions, `xmin`, unchanged)."""
    service, pool = follower
    csn = unique_csn()
    sid = await _snapshot(service, pool, csn)
    state = subscription_state(sid, csn, renewal_date=RENEWED_DATE, version=7, auto_renew=True)
    written = """SELECT s.xmin::text AS subscription, f.xmin::text AS state, s.renewal_date
                 FROM subscriptions AS s JOIN subscription_states AS f USING (subscription_id)
                 WHERE subscription_id = $1"""
    await _follow(service, pool, state)
    first = await pool.fetchrow(written, sid)
    await _follow(service, pool, state)  # redelivered after a crash before the offset commit
    assert await pool.fetchrow(written, sid) == first
    assert first["renewal_date"] == RENEWED_DATE


async def test_issue_19_4_a_state_that_changes_nothing_its_follower_reads_writes_no_row(
    follower: tuple[str, asyncpg.Pool],
) -> None:
    """Both followers keep a state only where it changes what they read (`read_by_followers`:
    notification's reminders and emails read what quote reads). A renewal's first state (its
    order pending, lapsed in grace) writes neither the state nor the subscription's row; the
    settled one (date moved) writes both; auto-renew switched on is kept; the pending state
    replayed afterwards changes nothing."""
    service, pool = follower
    csn = unique_csn()
    sid = await _snapshot(service, pool, csn)
    written = """SELECT f.version, f.xmin::text AS state, s.xmin::text AS subscription,
                        s.renewal_date
                 FROM subscriptions AS s JOIN subscription_states AS f USING (subscription_id)
                 WHERE subscription_id = $1"""
    await _follow(service, pool, subscription_state(sid, csn, renewal_date=SNAPSHOT_DATE))
    first = await pool.fetchrow(written, sid)
    pending = subscription_state(
        sid,
        csn,
        renewal_date=SNAPSHOT_DATE,
        version=2,
        pending_order="O-1",
        status="lapsed",
        grace_ends=date(2026, 9, 1),
    )
    await _follow(service, pool, pending)
    assert await pool.fetchrow(written, sid) == first

    await _follow(service, pool, subscription_state(sid, csn, renewal_date=RENEWED_DATE, version=3))
    renewed = await pool.fetchrow(written, sid)
    assert (renewed["version"], renewed["renewal_date"]) == (3, RENEWED_DATE)
    assert renewed["state"] != first["state"] and renewed["subscription"] != first["subscription"]

    switched = subscription_state(sid, csn, renewal_date=RENEWED_DATE, version=4, auto_renew=True)
    await _follow(service, pool, switched)
    kept = await pool.fetchrow(written, sid)
    assert kept["version"] == 4 and kept["state"] != renewed["state"]

    await _follow(service, pool, pending)  # replayed
    assert await pool.fetchrow(written, sid) == kept


async def test_a_state_before_the_snapshot_keeps_renewal_s_date(
    follower: tuple[str, asyncpg.Pool],
) -> None:
    service, pool = follower
    csn = unique_csn()
    sid = f"S-{csn}"
    await _follow(service, pool, subscription_state(sid, csn, renewal_date=RENEWED_DATE))
    await _snapshot(service, pool, csn)  # the subscription system's snapshot comes after
    assert await _renewal_date(pool, sid) == RENEWED_DATE


async def test_quote_decides_with_renewal_s_auto_renew_and_next_term(admin_db) -> None:
    """QUO-7 and AUTO-5 read auto-renew and what the next renewal buys from the state."""
    async with migrated(admin_db, "quote") as pool:
        csn = unique_csn()
        sid = await _snapshot("quote", pool, csn)
        state = subscription_state(
            sid,
            csn,
            renewal_date=RENEWED_DATE,
            auto_renew=True,
            next_term="three_year",
            next_seats=4,
        )
        await _follow("quote", pool, state)
        async with pool.acquire() as connection:
            [(snapshot, domain)] = (await quote_directory.subscriptions(connection, [sid])).values()
    assert snapshot.auto_renew is False  # what upstream says
    assert domain.auto_renew is True and domain.renewal_date == RENEWED_DATE
    assert (domain.renewal_term, domain.renewal_seats) == ("three_year", 4)


async def test_note_1_notification_reminds_of_a_renewed_term_only_after_the_old_date(
    admin_db: asyncpg.Connection,
) -> None:
    """The one writer of notification's renewal dates is the state it follows: a renewal moves
    the date a term on and the reminders of the next term count from after the old date (they
    used to be moved again, concurrently, from `subscription.renewed`)."""
    async with migrated(admin_db, "notification") as pool:
        csn = unique_csn()
        sid = await _snapshot("notification", pool, csn)
        before = await pool.fetchval(
            "SELECT reminders_after FROM subscriptions WHERE subscription_id = $1", sid
        )
        assert before < SNAPSHOT_DATE
        await _follow("notification", pool, subscription_state(sid, csn, renewal_date=RENEWED_DATE))
        row = await pool.fetchrow(
            "SELECT renewal_date, reminders_after FROM subscriptions WHERE subscription_id = $1",
            sid,
        )
        assert (row["renewal_date"], row["reminders_after"]) == (RENEWED_DATE, SNAPSHOT_DATE)
