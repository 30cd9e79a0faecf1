"""Automatic quotes (QUO-7): for the subscriptions the policy selects (annual and three-year by
default, not renewing automatically), a renewal quote 30 days before the renewal date, on the
CSN's clock, emailed to the buyer like any quote (`quote.sent` with no request id).

One per subscription and renewal date: the `automatic_quotes` row is claimed in the same
transaction as the quote, so replicas and restarts never send two. It runs as a `WorkLoop`; a
subscription whose quote raises is worked alone and parked (`parked_items`, loop
`automatic_quotes`), and the others are quoted.
"""

from __future__ import annotations

import logging
from typing import Any

import asyncpg

from services.quote.directory import subscriptions
from services.quote.quotes import QuoteHandlers
from shared import eligibility
from shared.catalog.store import load_prices, load_promotions
from shared.clock import Clock
from shared.eligibility import Policy, Price, Promotion, QuoteRequest
from shared.messaging import tracing
from shared.messaging.consumer import UnitOfWork
from shared.messaging.faults import AUTOMATIC_QUOTES_AFTER_COMMIT, FaultPoints
from shared.messaging.loops import WorkLoop
from shared.messaging.parking import IsolatingClaims, not_parked

log = logging.getLogger(__name__)

LOOP = "automatic_quotes"
DUE = f"""
SELECT s.subscription_id, s.renewal_date, COALESCE(c.today, $1) AS today
FROM subscriptions AS s LEFT JOIN test_clocks AS c USING (csn)
WHERE s.renewal_date - $2::int <= COALESCE(c.today, $1)
  AND s.renewal_date > COALESCE(c.today, $1)
  AND NOT EXISTS (SELECT 1 FROM automatic_quotes AS a
                  WHERE a.subscription_id = s.subscription_id AND a.renewal_date = s.renewal_date)
  -- a quote already open for it covers the renewal: no second one
  AND NOT EXISTS (SELECT 1 FROM quotes AS q WHERE q.status IN ('sent', 'accepted')
                  AND s.subscription_id = ANY(q.subscription_ids))
  AND {not_parked(LOOP, "s.subscription_id")}
  AND ($3::text IS NULL OR s.subscription_id = $3)  -- one subscription alone (isolating)
ORDER BY s.renewal_date
LIMIT 200
FOR UPDATE OF s SKIP LOCKED
"""


class AutomaticQuotes:
    def __init__(
        self,
        pool: asyncpg.Pool,
        clock: Clock,
        policy: Policy,
        quotes: QuoteHandlers,
        interval: float,
        faults: FaultPoints | None = None,
    ) -> None:
        self.pool = pool
        self.clock = clock
        self.policy = policy
        self.quotes = quotes
        self.interval = interval
        self.faults = faults or FaultPoints()
        self.claims = IsolatingClaims(pool, "quote", LOOP, self.send_due, self._candidates)

    def work_loop(self) -> WorkLoop:
        return WorkLoop(
            LOOP, self.step, service="quote", poll_seconds=self.interval, pool=self.pool
        )

    async def step(self) -> int:
        """One claim, its failing subscriptions parked (shared/messaging/parking.py)."""
        return await self.claims.step()

    async def _due(self, connection: Any, only: str | None) -> list[Any]:
        return list(
            await connection.fetch(
                DUE, self.clock.today(), self.policy.automatic_quote_days_before, only
            )
        )

    async def _candidates(self) -> list[str]:
        async with self.pool.acquire() as connection, connection.transaction():
            rows = await self._due(connection, None)
        return [row["subscription_id"] for row in rows]

    async def send_due(self, only: str | None = None) -> int:
        """Quote up to 200 subscriptions come to their quote day (or `only` that one)."""
        async with self.pool.acquire() as connection, connection.transaction():
            rows = await self._due(connection, only)
            if not rows:
                return 0
            unit = UnitOfWork(connection)
            held = await subscriptions(connection, [r["subscription_id"] for r in rows])
            products = {snapshot.product_code for snapshot, _ in held.values()}
            prices = [Price(**vars(p)) for p in await load_prices(connection, products)]
            promotions = [Promotion(**vars(p)) for p in await load_promotions(connection, products)]
            claimed: list[tuple[str, Any, str | None]] = []
            for row in rows:
                with tracing.decision():  # one trace per automatic quote, and all it causes
                    quote_number = await self._quote(unit, row, held, prices, promotions)
                claimed.append((row["subscription_id"], row["renewal_date"], quote_number))
            await connection.executemany(
                "INSERT INTO automatic_quotes (subscription_id, renewal_date, quote_number, created_at)"
                " VALUES ($1, $2, $3, now())",
                claimed,
            )
            await unit.outbox.flush(connection)
        self.faults.hit(AUTOMATIC_QUOTES_AFTER_COMMIT)
        return len(rows)

    async def _quote(
        self,
        unit: UnitOfWork,
        row: Any,
        held: dict[str, Any],
        prices: list[Price],
        promotions: list[Promotion],
    ) -> str | None:
        snapshot, domain = held[row["subscription_id"]]
        if not eligibility.automatic_quote_due(domain, row["today"], self.policy):
            return None  # not selected by the policy (term, auto-renewal, trial)
        request = QuoteRequest(
            channel="sales", kind="renewal", subscription_ids=(snapshot.subscription_id,)
        )
        buyer = eligibility.Actor(user_id=snapshot.buyer.user_id, csn=snapshot.csn)
        decision = eligibility.decide_quote(
            buyer,
            [domain],
            request,
            prices=prices,
            promotions=promotions,
            today=row["today"],
            policy=self.policy,
        )
        if not decision.allowed:
            log.info(
                "no automatic quote",
                extra={
                    "subscription_id": snapshot.subscription_id,
                    "reasons": list(decision.all_reasons),
                },
            )
            return None
        return await self.quotes.send(
            unit,
            None,
            [snapshot.subscription_id],
            held,
            decision,
            row["today"],
            channel="sales",
            kind="renewal",
            recipients=[],
        )
