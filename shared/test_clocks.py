"""Test clocks: a CSN may have a today of its own (`test_clock.set` on `clock.commands`), and
every time-driven rule of a service (renewal, notification) reads the CSN's today from here;
each keeps the clocks in a `test_clocks` table of its own schema.

Off by default (`RENEWALS_TEST_CLOCKS_ENABLED`); when off, `test_clock.set` is dead-lettered
with a clear error rather than silently ignored.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from shared.clock import Clock
from shared.contracts.clock_commands import SetTestClock
from shared.db.types import DbConnection
from shared.messaging.consumer import Delivery, EventHandler, PermanentError, UnitOfWork


class CsnClock:
    """Today for each CSN: its test clock where one is set, else the system clock's date."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    async def today_for(self, connection: DbConnection, csns: Iterable[str]) -> dict[str, date]:
        wanted = sorted(set(csns))
        system_today = self.clock.today()
        rows = await connection.fetch(
            "SELECT csn, today FROM test_clocks WHERE csn = ANY($1::text[])", wanted
        )
        clocks = {row["csn"]: row["today"] for row in rows}
        return {csn: clocks.get(csn, system_today) for csn in wanted}


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
