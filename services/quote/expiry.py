"""Quotes not paid by their expiry date become `quote.expired`, on each CSN's clock (QUO-8)."""

from __future__ import annotations

import asyncio
import logging

import asyncpg

from shared.clock import Clock
from shared.contracts.envelope import new_event
from shared.contracts.quote_events import TOPIC as QUOTE_EVENTS
from shared.contracts.quote_events import QuoteExpired
from shared.messaging.consumer import INFRASTRUCTURE_ERRORS
from shared.messaging.outbox import Outbox

log = logging.getLogger(__name__)


class QuoteExpiry:
    def __init__(
        self, pool: asyncpg.Pool, clock: Clock, source: str, interval_seconds: float
    ) -> None:
        self.pool = pool
        self.clock = clock
        self.source = source
        self.interval_seconds = interval_seconds

    async def run(self) -> None:
        while True:
            try:
                await self.expire_due()
            except INFRASTRUCTURE_ERRORS as error:
                log.warning("quote expiry failed, retrying", extra={"error": repr(error)})
            except Exception:
                log.exception("quote expiry failed, retrying")
            await asyncio.sleep(self.interval_seconds)

    async def expire_due(self) -> int:
        async with self.pool.acquire() as connection, connection.transaction():
            rows = await connection.fetch(
                """UPDATE quotes AS q SET status = 'expired'
                   FROM quotes AS o LEFT JOIN test_clocks AS c ON c.csn = o.csn
                   WHERE q.quote_number = o.quote_number AND o.status = 'sent'
                     AND o.expires_on < COALESCE(c.today, $1)
                   RETURNING q.quote_number, q.csn""",
                self.clock.today(),
            )
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
            return len(rows)
