"""Quotes not paid by their expiry date become `quote.expired`, on each CSN's clock (QUO-8).
A claim reads the sent quotes past their expiry date only (shared/db/due_claims.py).

It runs as a `WorkLoop`; a quote whose expiry raises is worked alone and parked (`parked_items`,
loop `quote_expiry`), and the others expire.
"""

from __future__ import annotations

import logging
from typing import Any

import asyncpg

from services.quote import store
from shared.clock import Clock
from shared.contracts.envelope import new_event
from shared.contracts.quote_events import TOPIC as QUOTE_EVENTS
from shared.contracts.quote_events import QuoteExpired
from shared.db.due_claims import claim_on_each_clock
from shared.messaging.loops import WorkLoop
from shared.messaging.outbox import Outbox
from shared.messaging.parking import IsolatingClaims, not_parked
from shared.plumbing.faults import QUOTE_EXPIRY_AFTER_COMMIT, FaultPoints

log = logging.getLogger(__name__)

LOOP = "quote_expiry"
BATCH = 500


def _due(rows: str, today: str) -> str:
    return f"""SELECT q.quote_number, q.csn, q.expires_on FROM {rows}
    WHERE q.status = 'sent' AND q.expires_on < {today}
      AND {not_parked(LOOP, "q.quote_number")}
      AND ($3::text IS NULL OR q.quote_number = $3)  -- one quote alone (isolating)"""


# $1 the clock's now, $2 how many, $3 one quote alone (or NULL). The open quotes past their
# expiry date only (issue 19 item 2), in expiry order, on each CSN's today: its test clock, else
# the date in its time zone (#14 item 4; shared/db/due_claims.py).
DUE = claim_on_each_clock(
    _due,
    key="q.expires_on",
    limit="$2",
    then="SELECT quote_number, csn FROM claimed ORDER BY expires_on",
    table="quotes",
    alias="q",
    zoned_bound="q.expires_on <",
)


class QuoteExpiry:
    def __init__(
        self,
        pool: asyncpg.Pool,
        clock: Clock,
        source: str,
        interval_seconds: float,
        faults: FaultPoints | None = None,
    ) -> None:
        self.pool = pool
        self.clock = clock
        self.source = source
        self.interval_seconds = interval_seconds
        self.faults = faults or FaultPoints()
        self.claims = IsolatingClaims(pool, "quote", LOOP, self.expire_due)

    def work_loop(self) -> WorkLoop:
        return WorkLoop(
            LOOP, self.step, service="quote", poll_seconds=self.interval_seconds, pool=self.pool
        )

    async def step(self) -> int:
        """One claim, its failing quotes parked (shared/messaging/parking.py)."""
        return await self.claims.step()

    async def _due(self, connection: Any, only: str | None) -> list[Any]:
        return list(await connection.fetch(DUE, self.clock.now(), BATCH, only))

    async def expire_due(self, only: str | None = None) -> int:
        """Expire up to BATCH quotes past their expiry date (or `only` that one)."""
        async with self.pool.acquire() as connection, connection.transaction():
            rows = await self._due(connection, only)
            if not rows:
                return 0
            self.claims.took(row["quote_number"] for row in rows)
            await store.close(connection, [row["quote_number"] for row in rows], "expired")
            outbox = Outbox()
            for row in rows:
                event = new_event(
                    QuoteExpired(quote_number=row["quote_number"]),
                    subject=row["csn"],
                    source=self.source,
                    time=self.clock.now(),
                )
                outbox.add(QUOTE_EVENTS, event)
            await outbox.flush(connection)
        self.faults.hit(QUOTE_EXPIRY_AFTER_COMMIT)
        return len(rows)
