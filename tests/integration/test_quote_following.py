"""Quote's copy of the subscriptions at the cost of what it needs (issue 19 items 3 and 4): a
batch of snapshots saved at once with the same effects as one by one, and a `subscription.state`
that changes nothing quote reads (an order pending, then settled) writes no row."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any

import asyncpg
import pytest

from deploy.local.samples import subscription, subscription_state, unique_csn
from services.quote import directory
from shared.contracts.envelope import new_event
from shared.messaging.consumer import Delivery, UnitOfWork
from tests.integration.helpers import migrated

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SNAPSHOT_DATE = date(2026, 6, 1)
RENEWED_DATE = date(2027, 6, 1)


def _delivery(data: Any) -> Delivery:
    return Delivery(new_event(data, subject=data.csn, source="/it", time=NOW), record=None)


@pytest.fixture
async def pool(admin_db: asyncpg.Connection) -> AsyncIterator[asyncpg.Pool]:
    async with migrated(admin_db, "quote") as pool:
        yield pool


async def _handle(pool: asyncpg.Pool, handler: Any, *data: Any) -> None:
    async with pool.acquire() as connection, connection.transaction():
        await handler(UnitOfWork(connection), [_delivery(item) for item in data])


async def test_a_batch_of_snapshots_keeps_the_newest_of_each_and_renewal_s_date(
    pool: asyncpg.Pool,
) -> None:
    """One batch: the same subscription twice out of order, one whose state came first, and the
    CSN's zone as its last snapshot names it."""
    csn = unique_csn()
    first, stated = f"S-{csn}-1", f"S-{csn}-2"
    await _handle(
        pool,
        directory.follow_state,
        subscription_state(stated, csn, renewal_date=RENEWED_DATE, seats=7),
    )
    await _handle(
        pool,
        directory.save_snapshot,
        subscription(first, csn, renewal_date=SNAPSHOT_DATE, revision=2, seats=3),
        subscription(first, csn, renewal_date=SNAPSHOT_DATE, revision=1, seats=2),
        subscription(stated, csn, renewal_date=SNAPSHOT_DATE, timezone="Europe/Paris"),
    )
    rows = await pool.fetch(
        "SELECT subscription_id, revision, renewal_date, seats, time_zone FROM subscriptions"
        " ORDER BY subscription_id"
    )
    assert [tuple(row.values()) for row in rows] == [
        (first, 2, SNAPSHOT_DATE, 3, "Europe/Paris"),
        (stated, 1, RENEWED_DATE, 7, "Europe/Paris"),
    ]


async def _versions(pool: asyncpg.Pool, sid: str) -> tuple[Any, ...]:
    """The state's version and both rows' transaction ids: a row written has a new xmin."""
    row = await pool.fetchrow(
        "SELECT f.version, f.xmin::text AS state_xmin, s.xmin::text AS column_xmin,"
        " s.renewal_date FROM subscription_states AS f JOIN subscriptions AS s"
        " USING (subscription_id) WHERE subscription_id = $1",
        sid,
    )
    assert row is not None
    return tuple(row.values())


async def test_a_state_that_changes_what_quote_reads_is_kept_without_moving_the_columns(
    pool: asyncpg.Pool,
) -> None:
    """Auto-renew switched on: the state is kept (QUO-7 reads it), the claim's columns, the
    same, are not written."""
    csn = unique_csn()
    sid = f"S-{csn}"
    await _handle(pool, directory.save_snapshot, subscription(sid, csn, renewal_date=SNAPSHOT_DATE))
    await _handle(
        pool, directory.follow_state, subscription_state(sid, csn, renewal_date=SNAPSHOT_DATE)
    )
    before = await _versions(pool, sid)
    await _handle(
        pool,
        directory.follow_state,
        subscription_state(sid, csn, renewal_date=SNAPSHOT_DATE, version=2, auto_renew=True),
    )
    after = await _versions(pool, sid)
    assert after[0] == 2 and after[1] != before[1]
    assert after[2] == before[2]  # the columns did not move: no write
    async with pool.acquire() as connection:
        [(_, domain)] = (await directory.subscriptions(connection, [sid])).values()
    assert domain.auto_renew is True


async def test_issue_19_a_renewal_s_follow_writes_a_row_without_the_snapshot(
    pool: asyncpg.Pool,
) -> None:
    """Issue 19 (migration 012): a renewal moves the claim's columns (not HOT: they are keyed),
    and the row it writes again no longer carries the 900-byte snapshot, which stays where it
    was (its row unwritten); a newer snapshot writes it, an older one does not, and quote reads
    the snapshot back with renewal's date."""
    csn = unique_csn()
    sid = f"S-{csn}"
    await _handle(
        pool,
        directory.save_snapshot,
        subscription(sid, csn, renewal_date=SNAPSHOT_DATE, seats=2, revision=3),
    )
    snapshot_xmin = "SELECT xmin::text FROM subscription_snapshots WHERE subscription_id = $1"
    written = await pool.fetchval(snapshot_xmin, sid)
    assert written is not None

    await _handle(
        pool, directory.follow_state, subscription_state(sid, csn, renewal_date=RENEWED_DATE)
    )
    assert await pool.fetchval(snapshot_xmin, sid) == written
    assert "snapshot" not in {
        row["attname"]
        for row in await pool.fetch(
            "SELECT attname FROM pg_attribute WHERE attrelid = 'subscriptions'::regclass"
            " AND attnum > 0 AND NOT attisdropped"
        )
    }

    await _handle(
        pool,
        directory.save_snapshot,
        subscription(sid, csn, renewal_date=SNAPSHOT_DATE, seats=2, revision=2),
    )
    assert await pool.fetchval(snapshot_xmin, sid) == written  # older: not written
    await _handle(
        pool,
        directory.save_snapshot,
        subscription(
            sid,
            csn,
            renewal_date=SNAPSHOT_DATE,
            seats=2,
            revision=5,
            product_name="AutoCAD LT 2027",
        ),
    )
    assert await pool.fetchval(snapshot_xmin, sid) != written
    async with pool.acquire() as connection:
        [(snapshot, domain)] = (await directory.subscriptions(connection, [sid])).values()
    assert (snapshot.revision, snapshot.product_name) == (5, "AutoCAD LT 2027")
    assert domain.renewal_date == RENEWED_DATE  # renewal's date, not the snapshot's
