"""A CSN's today: the date in its time zone (CONTRACT.md `timezone`, absent: UTC), or the date of
its test clock (`test_clock.set` on `clock.commands`). Every time-driven rule of a service reads
the CSN's today from here; each service keeps the clocks in a `test_clocks` table of its own
schema, and the zones in `csn_time_zones` (from `subscription.events`; billing's from the orders
it is asked to place, which carry their CSN's zone).

Off by default (`RENEWALS_TEST_CLOCKS_ENABLED`); when off, `test_clock.set` is dead-lettered
with a clear error rather than silently ignored.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Protocol
from zoneinfo import ZoneInfo

from shared.clock import Clock
from shared.contracts import clock_commands
from shared.contracts.clock_commands import SetTestClock
from shared.db.types import DbConnection
from shared.messaging.consumer import (
    Delivery,
    EventHandler,
    PermanentError,
    UnitOfWork,
    dispatch_by_type,
)

if TYPE_CHECKING:
    from shared.messaging.runtime import ServiceRuntime


@dataclass(frozen=True)
class CsnTodaySql:
    """The CSN's today inside a set-based query: `joins` to add after the table whose `csn`
    column is named, then `today` wherever the date is compared; the query's parameter `now`
    carries the clock's now (`clock.now()`). The same answer as CsnClock.today_for, per row."""

    joins: str
    today: str


def zoned_today(now: str, zones: str = "z") -> str:
    """The date at `now` (a timestamptz expression) in the zone of `zones`, a row of
    csn_time_zones joined on the CSN (none: UTC)."""
    return f"({now}::timestamptz AT TIME ZONE COALESCE({zones}.time_zone, 'UTC'))::date"


def csn_today_sql(csn: str, now: str) -> CsnTodaySql:
    return CsnTodaySql(
        joins=f"LEFT JOIN test_clocks AS c ON c.csn = {csn}"
        f" LEFT JOIN csn_time_zones AS z ON z.csn = {csn}",
        today=f"COALESCE(c.today, {zoned_today(now)})",
    )


class CsnClock:
    """Today for each CSN: its test clock where one is set, else the date now in its time zone."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    async def today_for(self, connection: DbConnection, csns: Iterable[str]) -> dict[str, date]:
        wanted = sorted(set(csns))
        rows = await connection.fetch(
            "SELECT w.csn, c.today, z.time_zone FROM unnest($1::text[]) AS w(csn)"
            " LEFT JOIN test_clocks AS c ON c.csn = w.csn"
            " LEFT JOIN csn_time_zones AS z ON z.csn = w.csn",
            wanted,
        )
        now = self.clock.now()
        return {
            row["csn"]: row["today"]
            or (
                now.astimezone(ZoneInfo(row["time_zone"])).date()
                if row["time_zone"]
                else now.date()
            )
            for row in rows
        }


class NamesTimeZone(Protocol):
    """What tells a CSN's time zone: a `subscription.upserted`, or an order that carries it."""

    @property
    def csn(self) -> str: ...

    @property
    def timezone(self) -> str | None: ...


async def save_time_zones(connection: DbConnection, snapshots: Iterable[NamesTimeZone]) -> None:
    """Each CSN's time zone as the last of the snapshots (or orders) given says (none: UTC, no
    row)."""
    latest = {snapshot.csn: snapshot.timezone for snapshot in snapshots}
    await connection.execute(
        """WITH given AS (
               SELECT * FROM unnest($1::text[], $2::text[]) AS g(csn, time_zone)
           ), utc AS (
               DELETE FROM csn_time_zones AS z USING given AS g
               WHERE z.csn = g.csn AND g.time_zone IS NULL
           )
           INSERT INTO csn_time_zones (csn, time_zone)
           SELECT csn, time_zone FROM given WHERE time_zone IS NOT NULL
           ON CONFLICT (csn) DO UPDATE SET time_zone = EXCLUDED.time_zone
           WHERE csn_time_zones.time_zone IS DISTINCT FROM EXCLUDED.time_zone""",
        list(latest),
        list(latest.values()),
    )


def set_test_clock_handler(enabled: bool) -> EventHandler:
    async def set_test_clock(unit: UnitOfWork, delivery: Delivery) -> None:
        if not enabled:
            raise PermanentError(
                "test clocks are disabled in this deployment (RENEWALS_TEST_CLOCKS_ENABLED=false)"
            )
        command: SetTestClock = delivery.data
        # A clock only moves forward: an older date than the one held changes nothing.
        await unit.connection.execute(
            """INSERT INTO test_clocks (csn, today) VALUES ($1, $2)
               ON CONFLICT (csn) DO UPDATE SET today = GREATEST(test_clocks.today, EXCLUDED.today),
                   updated_at = now()""",
            command.csn,
            command.today,
        )

    return set_test_clock


def follow_test_clocks(runtime: ServiceRuntime, enabled: bool) -> None:
    """Every time-driven service keeps the CSNs' test clocks in its own `test_clocks` table."""
    runtime.consume(
        clock_commands.TOPIC,
        clock_commands.REGISTRY,
        dispatch_by_type({SetTestClock: set_test_clock_handler(enabled)}),
    )
