"""Quotes not paid by their expiry date become `quote.expired`, on each CSN's clock (QUO-8).
A claim reads the sent quotes past their expiry date only (shared/db/due_claims.py); each quote
it takes comes back typed (`PastExpiry`).

It runs as a `WorkLoop`; a quote whose expiry raises is worked alone and parked (`parked_items`,
loop `quote_expiry`), and the others expire.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import asyncpg

from services.quote import store
from shared.clock import Clock
from shared.contracts.envelope import new_event
from shared.contracts.quote_events import TOPIC as QUOTE_EVENTS
from shared.contracts.quote_events import QuoteExpired
from shared.db.due_claims import claim_on_each_clock
from shared.db.types import DbConnection
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


@dataclass(frozen=True)
class PastExpiry:
    """A sent quote the claim took: its expiry date passed on its CSN's clock."""

    quote_number: str
    csn: str


def _past_expiry(row: asyncpg.Record) -> PastExpiry:
    return PastExpiry(row["quote_number"], row["csn"])


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

    async def _due(self, connection: DbConnection, only: str | None) -> list[PastExpiry]:
        rows = await connection.fetch(DUE, self.clock.now(), BATCH, only)
        return [_past_expiry(row) for row in rows]

    async def expire_due(self, only: str | None = None) -> int:
        """Expire up to BATCH quotes past their expiry date (or `only` that one)."""
        async with self.pool.acquire() as connection, connection.transaction():
            due = await self._due(connection, only)
            if not due:
                return 0
            self.claims.took(quote.quote_number for quote in due)
            await store.close(connection, [quote.quote_number for quote in due], "expired")
            outbox = Outbox()
            for quote in due:
                event = new_event(
                    QuoteExpired(quote_number=quote.quote_number),
                    subject=quote.csn,
                    source=self.source,
                    time=self.clock.now(),
                )
                outbox.add(QUOTE_EVENTS, event)
            await outbox.flush(connection)
        self.faults.hit(QUOTE_EXPIRY_AFTER_COMMIT)
        return len(due)
