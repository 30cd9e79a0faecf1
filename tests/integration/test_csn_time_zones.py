"""A CSN's today is the date in its time zone (CONTRACT.md `timezone`, DOMAIN.md "Time and
channels"), or its test clock's: stored from `subscription.upserted` by every service that follows
it, read by `CsnClock`."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from deploy.local.samples import subscription, unique_csn
from services.notification.directory import save_snapshots
from services.notification.reminders import DUE as REMINDERS_DUE
from services.quote.automatic import DUE as AUTOMATIC_QUOTES_DUE
from services.quote.directory import save_snapshot as save_quote_snapshot
from services.quote.expiry import QuoteExpiry
from services.renewal.due_date_engine import DUE as ENGINE_DUE
from services.renewal.state import snapshot_handler
from shared.clock import FixedClock
from shared.contracts.envelope import new_event
from shared.contracts.subscription_events import SubscriptionUpserted
from shared.eligibility import Policy
from shared.messaging.consumer import Delivery, UnitOfWork
from shared.test_clocks import CsnClock
from tests.integration.helpers import insert_quote, migrated

# 10:30 UTC on 30 November: already 1 December at UTC+14, still 29 November at UTC-11.
NOW = datetime(2026, 11, 30, 10, 30, tzinfo=UTC)
ZONES = {"Pacific/Kiritimati": date(2026, 12, 1), "Pacific/Pago_Pago": date(2026, 11, 29)}


def _delivery(snapshot: SubscriptionUpserted) -> Delivery:
    return Delivery(new_event(snapshot, subject=snapshot.csn, source="/it", time=NOW), record=None)


async def _save(pool: asyncpg.Pool, service: str, snapshots: list[SubscriptionUpserted]) -> None:
    async with pool.acquire() as connection, connection.transaction():
        unit = UnitOfWork(connection)
        if service == "notification":
            await save_snapshots(CsnClock(FixedClock(NOW)).today_for)(
                unit, [_delivery(s) for s in snapshots]
            )
        elif service == "renewal":
            save = snapshot_handler(Policy(), "/it", FixedClock(NOW))
            await save(unit, [_delivery(s) for s in snapshots])
        else:
            await save_quote_snapshot(unit, [_delivery(s) for s in snapshots])


@pytest.fixture(params=["renewal", "quote", "notification"])
async def service_pool(
    request: pytest.FixtureRequest, admin_db: asyncpg.Connection
) -> AsyncIterator[tuple[str, asyncpg.Pool]]:
    async with migrated(admin_db, request.param) as pool:
        yield request.param, pool


async def test_a_csns_today_is_the_date_in_its_time_zone(
    service_pool: tuple[str, asyncpg.Pool],
) -> None:
    service, pool = service_pool
    csns = {zone: unique_csn() for zone in ZONES}
    utc_csn = unique_csn()
    snapshots = [
        subscription(f"S-{csn}", csn, renewal_date=date(2027, 1, 1), timezone=zone)
        for zone, csn in csns.items()
    ] + [subscription(f"S-{utc_csn}", utc_csn, renewal_date=date(2027, 1, 1))]
    await _save(pool, service, snapshots)

    async with pool.acquire() as connection:
        today = await CsnClock(FixedClock(NOW)).today_for(connection, [*csns.values(), utc_csn])
    assert {zone: today[csn] for zone, csn in csns.items()} == ZONES
    assert today[utc_csn] == date(2026, 11, 30)  # no zone: UTC


async def test_a_test_clock_wins_and_a_snapshot_without_a_zone_puts_the_csn_back_on_utc(
    service_pool: tuple[str, asyncpg.Pool],
) -> None:
    service, pool = service_pool
    walked, moved = unique_csn(), unique_csn()
    await _save(
        pool,
        service,
        [
            subscription(
                f"S-{walked}", walked, renewal_date=date(2027, 1, 1), timezone="Pacific/Kiritimati"
            ),
            subscription(
                f"S-{moved}", moved, renewal_date=date(2027, 1, 1), timezone="Pacific/Kiritimati"
            ),
        ],
    )
    async with pool.acquire() as connection:
        await connection.execute(
            "INSERT INTO test_clocks (csn, today) VALUES ($1, '2027-06-01')", walked
        )
    await _save(
        pool,
        service,
        [subscription(f"S-{moved}", moved, renewal_date=date(2027, 1, 1), revision=2)],
    )

    async with pool.acquire() as connection:
        today = await CsnClock(FixedClock(NOW)).today_for(connection, [walked, moved])
    assert today == {walked: date(2027, 6, 1), moved: date(2026, 11, 30)}


async def test_quo_8_a_quote_expires_when_its_csns_day_is_past_not_utcs(
    admin_db: asyncpg.Connection,
) -> None:
    """A quote valid through 30 November: on 30 November at 10:30 UTC it has expired for a
    customer at UTC+14 (already 1 December there) and not for one at UTC-11 or on UTC."""
    async with migrated(admin_db, "quote") as pool:
        east, west, utc = unique_csn(), unique_csn(), unique_csn()
        await _save(
            pool,
            "quote",
            [
                subscription(
                    f"S-{east}", east, renewal_date=date(2027, 1, 1), timezone="Pacific/Kiritimati"
                ),
                subscription(
                    f"S-{west}", west, renewal_date=date(2027, 1, 1), timezone="Pacific/Pago_Pago"
                ),
            ],
        )
        for csn in (east, west, utc):
            await insert_quote(pool, f"Q-{csn}", csn, date(2026, 11, 30))

        assert await QuoteExpiry(pool, FixedClock(NOW), "/it", 1).step() == 1

        statuses = await pool.fetch("SELECT csn, status FROM quotes")
        assert {row["csn"]: row["status"] for row in statuses} == {
            east: "expired",
            west: "sent",
            utc: "sent",
        }


@pytest.mark.parametrize(
    ("service", "renewal_date", "claim", "params"),
    [
        # AUTO-1: renewed on the renewal date — 1 December has come at UTC+14 only.
        ("renewal", date(2026, 12, 1), ENGINE_DUE, (100, None)),
        # QUO-7: the automatic quote 30 days before — 31 December's quote day is 1 December.
        ("quote", date(2026, 12, 31), AUTOMATIC_QUOTES_DUE, (30, None, 100)),
    ],
    ids=["due_date_engine", "automatic_quotes"],
)
async def test_a_time_driven_claim_takes_what_is_due_on_each_csns_today(
    admin_db: asyncpg.Connection,
    service: str,
    renewal_date: date,
    claim: str,
    params: tuple[object, ...],
) -> None:
    async with migrated(admin_db, service) as pool:
        csns = {zone: unique_csn() for zone in (*ZONES, None)}
        await _save(
            pool,
            service,
            [
                subscription(
                    f"S-{csn}", csn, renewal_date=renewal_date, auto_renew=True, timezone=zone
                )
                for zone, csn in csns.items()
            ],
        )
        async with pool.acquire() as connection, connection.transaction():
            rows = await connection.fetch(claim, NOW, *params)
        assert [row["subscription_id"] for row in rows] == [f"S-{csns['Pacific/Kiritimati']}"]
        assert [row["today"] for row in rows] == [date(2026, 12, 1)]


async def test_the_reminder_scheduler_looks_at_each_subscription_on_its_csns_today(
    admin_db: asyncpg.Connection,
) -> None:
    """NOTE-1: which reminder is due is worked out from the CSN's today, in its time zone."""
    async with migrated(admin_db, "notification") as pool:
        csns = {zone: unique_csn() for zone in (*ZONES, None)}
        await _save(
            pool,
            "notification",
            [
                subscription(f"S-{csn}", csn, renewal_date=date(2027, 3, 1), timezone=zone)
                for zone, csn in csns.items()
            ],
        )
        async with pool.acquire() as connection, connection.transaction():
            rows = await connection.fetch(REMINDERS_DUE, NOW, 100, None)
        today = {row["subscription_id"]: row["today"] for row in rows}
        assert today == {
            f"S-{csns['Pacific/Kiritimati']}": date(2026, 12, 1),
            f"S-{csns['Pacific/Pago_Pago']}": date(2026, 11, 29),
            f"S-{csns[None]}": date(2026, 11, 30),
        }


async def _engine_claims(pool: asyncpg.Pool) -> list[str]:
    async with pool.acquire() as connection, connection.transaction():
        rows = await connection.fetch(ENGINE_DUE, NOW, 100, None)
    return sorted(row["subscription_id"] for row in rows)


async def test_the_engine_follows_a_csns_zone_to_every_one_of_its_subscriptions(
    admin_db: asyncpg.Connection,
) -> None:
    """AUTO-1 on the CSN's today (issue 19 item 1): the engine's index keys each subscription
    by the instant its date comes in its CSN's zone (renewal migration 014). A zone set by one
    subscription's snapshot moves the CSN's others with it; back on UTC they all follow again."""
    async with migrated(admin_db, "renewal") as pool:
        csn = unique_csn()
        first, second = f"S1-{csn}", f"S2-{csn}"
        due = date(2026, 12, 1)  # come at UTC+14 only
        await _save(pool, "renewal", [subscription(first, csn, renewal_date=due, auto_renew=True)])
        assert await _engine_claims(pool) == []

        east = "Pacific/Kiritimati"
        await _save(
            pool,
            "renewal",
            [subscription(second, csn, renewal_date=due, auto_renew=True, timezone=east)],
        )
        assert await _engine_claims(pool) == [first, second]

        await _save(
            pool,
            "renewal",
            [subscription(second, csn, renewal_date=due, auto_renew=True, revision=2)],
        )
        assert await _engine_claims(pool) == []
        async with pool.acquire() as connection:
            zones = await connection.fetch("SELECT DISTINCT time_zone FROM subscriptions")
        assert [row["time_zone"] for row in zones] == [None]


# The reminder scheduler looked at the subscriptions before: their next reminder day is
# 1 December (come at UTC+14 only).
LOOKED_AT = (
    "UPDATE subscriptions SET next_reminder_on = '2026-12-01', next_reminder_for = renewal_date"
)
# (service, renewal date, its claim, the claim's parameters after now, setup after each save)
FOLLOWING = [
    ("notification", date(2027, 3, 1), REMINDERS_DUE, (100, None), LOOKED_AT),
    # QUO-7: 31 December's quote day, 30 days before, is 1 December.
    ("quote", date(2026, 12, 31), AUTOMATIC_QUOTES_DUE, (30, None, 100), None),
]


@pytest.mark.parametrize(
    ("service", "renewal_date", "claim", "params", "setup"),
    FOLLOWING,
    ids=[following[0] for following in FOLLOWING],
)
async def test_a_claim_follows_a_csns_zone_to_every_one_of_its_subscriptions(
    admin_db: asyncpg.Connection,
    service: str,
    renewal_date: date,
    claim: str,
    params: tuple[object, ...],
    setup: str | None,
) -> None:
    """Issue 19 item 2, as the engine's claim above: the reminders' and automatic quotes'
    indexes key each subscription by the instant its next reminder day or its renewal date
    comes in its CSN's zone (notification migration 013, quote migration 010). A zone set by one
    subscription's snapshot moves the CSN's others with it; back on UTC they all follow again."""

    async def save(snapshot: SubscriptionUpserted) -> list[str]:
        await _save(pool, service, [snapshot])
        async with pool.acquire() as connection, connection.transaction():
            if setup:
                await connection.execute(setup)
            rows = await connection.fetch(claim, NOW, *params)
        return sorted(row["subscription_id"] for row in rows)

    async with migrated(admin_db, service) as pool:
        csn = unique_csn()
        first, second = f"S1-{csn}", f"S2-{csn}"
        assert await save(subscription(first, csn, renewal_date=renewal_date)) == []

        east = "Pacific/Kiritimati"
        zoned = subscription(second, csn, renewal_date=renewal_date, timezone=east)
        assert await save(zoned) == [first, second]

        utc = subscription(second, csn, renewal_date=renewal_date, revision=2)
        assert await save(utc) == []


async def test_quo_7_the_quote_day_comes_at_the_csns_midnight_across_the_clocks_going_back(
    admin_db: asyncpg.Connection,
) -> None:
    """QUO-7: 31 October's quote day is 1 October. In London that day begins at 23:00 UTC on
    30 September (summer time), the renewal date at 00:00 UTC (the clocks go back on 25
    October): 30 days and an hour apart. The claim takes the subscription from the CSN's
    midnight all the same — its index is read two hours past the quote's days (quote migration
    010) — and not a minute before."""
    async with migrated(admin_db, "quote") as pool:
        csn = unique_csn()
        renewal_date = date(2026, 10, 31)
        await _save(
            pool,
            "quote",
            [subscription(f"S-{csn}", csn, renewal_date=renewal_date, timezone="Europe/London")],
        )
        async with pool.acquire() as connection, connection.transaction():
            before = await connection.fetch(
                AUTOMATIC_QUOTES_DUE, datetime(2026, 9, 30, 22, 59, tzinfo=UTC), 30, None, 100
            )
            after = await connection.fetch(
                AUTOMATIC_QUOTES_DUE, datetime(2026, 9, 30, 23, 1, tzinfo=UTC), 30, None, 100
            )
        assert before == []
        assert [(row["subscription_id"], row["today"]) for row in after] == [
            (f"S-{csn}", date(2026, 10, 1))
        ]


# Days whose midnight the clocks skip or repeat in the CSN's zone (the tz database of both
# PostgreSQL and Python's zoneinfo): (zone, day, what happens at its start).
DST_DAYS = [
    ("America/Santiago", date(2026, 9, 6), "00:00 skipped: the day begins at 01:00"),
    ("America/Santiago", date(2026, 4, 5), "24:00 back to 23:00: the day begins an hour later"),
    ("America/Havana", date(2026, 3, 8), "00:00 skipped"),
    ("America/Havana", date(2026, 11, 1), "01:00 back to 00:00: midnight twice"),
    ("Atlantic/Azores", date(2026, 3, 29), "00:00 skipped"),
    ("Atlantic/Azores", date(2026, 10, 25), "01:00 back to 00:00: midnight twice"),
    ("Asia/Beirut", date(2026, 3, 29), "00:00 skipped"),
    ("Asia/Beirut", date(2026, 10, 25), "24:00 back to 23:00"),
    ("Africa/Cairo", date(2026, 4, 24), "00:00 skipped"),
    ("America/Asuncion", date(2023, 10, 1), "00:00 skipped"),
    ("America/Asuncion", date(2023, 3, 26), "24:00 back to 23:00"),
    ("Europe/London", date(2026, 10, 25), "an ordinary midnight, the clocks go back at 02:00"),
]
TICK = timedelta(microseconds=1)


@pytest.mark.parametrize("service", ["renewal", "notification", "quote"])
async def test_a_csns_day_begins_at_its_local_midnight_when_the_clocks_skip_or_repeat_it(
    admin_db: asyncpg.Connection, service: str
) -> None:
    """`local_midnight(day, zone)` (each claim's index key: renewal 014, notification 013,
    quote 010) is the first instant whose date in the zone is `day` — the instant the CSN's
    today (CsnClock, zoneinfo; and the claims' own SQL today) becomes that day, not a tick
    earlier or later — and the next day begins after it. Where midnight comes twice, the first
    one: the second is an hour late, and the claims would pass by what today says is due."""
    async with migrated(admin_db, service) as pool:
        rows = await pool.fetch(
            "SELECT d.zone, d.day, local_midnight(d.day, d.zone) AS begins,"
            "       local_midnight(d.day + 1, d.zone) AS next_begins,"
            "       (local_midnight(d.day, d.zone) AT TIME ZONE d.zone)::date AS sql_today,"
            "       ((local_midnight(d.day, d.zone) - interval '1 microsecond')"
            "           AT TIME ZONE d.zone)::date AS sql_yesterday"
            " FROM unnest($1::text[], $2::date[]) AS d(zone, day)",
            [zone for zone, _, _ in DST_DAYS],
            [day for _, day, _ in DST_DAYS],
        )
    found = {
        (row["zone"], row["day"]): (
            row["begins"].astimezone(ZoneInfo(row["zone"])).date(),
            (row["begins"] - TICK).astimezone(ZoneInfo(row["zone"])).date(),
            row["sql_today"],
            row["sql_yesterday"],
            row["next_begins"] > row["begins"],
        )
        for row in rows
    }
    assert found == {
        (zone, day): (day, day - timedelta(days=1), day, day - timedelta(days=1), True)
        for zone, day, _ in DST_DAYS
    }


async def test_local_midnight_is_inlined_where_it_is_called(admin_db: asyncpg.Connection) -> None:
    """Immutable built-ins only (shared/db/sql/local_midnight_first_instant.sql): the planner
    puts its expression in place of the call, instead of running the SQL function for each row
    (a stable piece, such as `timestamptz - interval`, would stop that: 30 times slower)."""
    async with migrated(admin_db, "renewal") as pool:
        plan = await pool.fetchval(
            "EXPLAIN (VERBOSE, FORMAT JSON) SELECT local_midnight(renewal_date, time_zone)"
            " FROM subscriptions"
        )
    output = json.loads(plan)[0]["Plan"]["Output"]
    assert "local_midnight" not in output[0] and "AT TIME ZONE" in output[0]


# 04:30 UTC on 1 November 2026: 00:30 in Havana, after the first of its two midnights (the
# clocks go back from 01:00 to 00:00 at 05:00 UTC). 1 November is the CSN's today.
HAVANA = "America/Havana"
FIRST_MIDNIGHT_PASSED = datetime(2026, 11, 1, 4, 30, tzinfo=UTC)
BEFORE_MIDNIGHT = datetime(2026, 11, 1, 3, 59, tzinfo=UTC)  # 23:59 on 31 October


class DueThatDay(NamedTuple):
    """A claim, and a subscription of the CSN's it should take on 1 November."""

    service: str
    renewal_date: date
    claim: str
    params: tuple[object, ...]  # the claim's parameters after now
    setup: str | None = None  # run after the subscription is saved


DUE_ON_1_NOVEMBER = [
    # AUTO-1: renewed on the renewal date.
    DueThatDay("renewal", date(2026, 11, 1), ENGINE_DUE, (100, None)),
    # NOTE-1: the next reminder day.
    DueThatDay(
        "notification",
        date(2027, 3, 1),
        REMINDERS_DUE,
        (100, None),
        LOOKED_AT.replace("2026-12-01", "2026-11-01"),
    ),
    # QUO-7: 1 December's quote day, 30 days before.
    DueThatDay("quote", date(2026, 12, 1), AUTOMATIC_QUOTES_DUE, (30, None, 100)),
]


@pytest.mark.parametrize("due", DUE_ON_1_NOVEMBER, ids=[due.service for due in DUE_ON_1_NOVEMBER])
async def test_what_is_due_is_claimed_from_the_first_of_two_midnights(
    admin_db: asyncpg.Connection, due: DueThatDay
) -> None:
    """A day whose midnight comes twice (Havana, 1 November 2026): what is due that day is
    claimed once the CSN's today is that day — from the first midnight, not an hour later at
    the second — and not before it."""
    async with migrated(admin_db, due.service) as pool:
        csn = unique_csn()
        renews = subscription(
            f"S-{csn}", csn, renewal_date=due.renewal_date, auto_renew=True, timezone=HAVANA
        )
        await _save(pool, due.service, [renews])
        async with pool.acquire() as connection, connection.transaction():
            if due.setup:
                await connection.execute(due.setup)
            today = await CsnClock(FixedClock(FIRST_MIDNIGHT_PASSED)).today_for(connection, [csn])
            before = await connection.fetch(due.claim, BEFORE_MIDNIGHT, *due.params)
            after = await connection.fetch(due.claim, FIRST_MIDNIGHT_PASSED, *due.params)
        assert today == {csn: date(2026, 11, 1)}
        assert before == []
        assert [(row["subscription_id"], row["today"]) for row in after] == [
            (f"S-{csn}", date(2026, 11, 1))
        ]
