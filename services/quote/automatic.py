"""Automatic quotes (QUO-7): for the subscriptions the policy selects (annual and three-year by
default, not renewing automatically), a renewal quote 30 days before the renewal date, on the
CSN's clock, emailed to the buyer like any quote (`quote.sent` with no request id).

One per subscription and renewal date: the `automatic_quotes` row is claimed in the same
transaction as the quote, so replicas and restarts never send two. The claim reads only the
subscriptions whose quote day came and that were not looked at for their renewal date
(`automatic_quote_for`, issue 19 item 2), on each CSN's clock (shared/db/due_claims.py): by
the instant the renewal date comes in the CSN's zone (migration 010), so that it reads the
renewal dates from now to the quote day's days ahead (two hours more, not a day), never those
already past; each subscription it takes comes back typed (`QuoteDay`).
It runs as a `WorkLoop`; a subscription whose quote raises is worked alone and parked
(`parked_items`, loop `automatic_quotes`), and the others are quoted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date

import asyncpg

from services.quote.directory import Held, subscriptions
from services.quote.quotes import QuoteHandlers
from shared import eligibility
from shared.catalog.store import load_catalog
from shared.clock import Clock
from shared.db.due_claims import claim_on_each_clock
from shared.db.types import DbConnection
from shared.eligibility import Policy, Price, Promotion, QuoteRequest
from shared.messaging import tracing
from shared.messaging.consumer import UnitOfWork
from shared.messaging.loops import WorkLoop
from shared.messaging.parking import IsolatingClaims, not_parked
from shared.plumbing.faults import AUTOMATIC_QUOTES_AFTER_COMMIT, FaultPoints

log = logging.getLogger(__name__)

LOOP = "automatic_quotes"


def _due(rows: str, today: str) -> str:
    return f"""SELECT s.subscription_id, s.renewal_date, {today} AS today
    FROM {rows}
    -- not looked at yet for this renewal date (migration 005: the claim's index; set with the
    -- `automatic_quotes` row, whose key refuses a second one for the date all the same)
    WHERE s.automatic_quote_for IS DISTINCT FROM s.renewal_date
      AND s.renewal_date <= {today} + $2::int  -- its quote day come
      AND s.renewal_date > {today}
      -- a quote already open for it covers the renewal: no second one
      AND NOT EXISTS (SELECT 1 FROM quotes AS q WHERE q.status IN ('sent', 'accepted')
                      AND q.subscription_ids @> ARRAY[s.subscription_id])
      AND {not_parked(LOOP, "s.subscription_id")}
      AND ($3::text IS NULL OR s.subscription_id = $3)  -- one subscription alone (isolating)"""


# The instant the renewal date comes in the CSN's time zone (the subscription's copy of it): the
# key of the claim's index for the CSNs on the system's clock (migration 010), read from now (a
# renewal date still ahead) to the quote's days ahead of now — two hours more, as the clocks
# going back in between make the CSN's midnight come that much later (one hour; two in
# Antarctica/Troll). The quote day itself is the CSN's today, decided in `_due` as ever; in the
# two hours before a CSN's midnight, a claim reads (and passes by) its next quote day's too.
DUE_AT = "local_midnight(s.renewal_date, s.time_zone)"
QUOTE_DAYS_AHEAD = f"{DUE_AT} > $1 AND {DUE_AT} <= $1 + make_interval(hours => 24 * $2 + 2)"

# $1 the clock's now (each CSN's today is the date there in its time zone), $2 the quote day's
# days before the renewal date, $3 one subscription alone (or NULL), $4 how many.
DUE = claim_on_each_clock(
    _due,
    key="s.renewal_date",
    limit="$4",
    then="SELECT * FROM claimed ORDER BY renewal_date",
    due_at=DUE_AT,
    due_range=QUOTE_DAYS_AHEAD,
)
BATCH = 200


@dataclass(frozen=True)
class QuoteDay:
    """A subscription the claim took: its quote day came for this renewal date."""

    subscription_id: str
    renewal_date: date
    today: date  # the CSN's


def _quote_day(row: asyncpg.Record) -> QuoteDay:
    return QuoteDay(row["subscription_id"], row["renewal_date"], row["today"])


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
        self.claims = IsolatingClaims(pool, "quote", LOOP, self.send_due)

    def work_loop(self) -> WorkLoop:
        return WorkLoop(
            LOOP, self.step, service="quote", poll_seconds=self.interval, pool=self.pool
        )

    async def step(self) -> int:
        """One claim, its failing subscriptions parked (shared/messaging/parking.py)."""
        return await self.claims.step()

    async def _due(self, connection: DbConnection, only: str | None) -> list[QuoteDay]:
        rows = await connection.fetch(
            DUE, self.clock.now(), self.policy.automatic_quote_days_before, only, BATCH
        )
        return [_quote_day(row) for row in rows]

    async def send_due(self, only: str | None = None) -> int:
        """Quote up to BATCH subscriptions come to their quote day (or `only` that one)."""
        async with self.pool.acquire() as connection, connection.transaction():
            due = await self._due(connection, only)
            if not due:
                return 0
            self.claims.took(day.subscription_id for day in due)
            unit = UnitOfWork(connection)
            held = await subscriptions(connection, [day.subscription_id for day in due])
            products = {snapshot.product_code for snapshot, _ in held.values()}
            prices, promotions = await load_catalog(connection, products)
            claimed: list[tuple[str, date, str | None]] = []
            for day in due:
                with tracing.decision():  # one trace per automatic quote, and all it causes
                    quote_number = await self._quote(unit, day, held, prices, promotions)
                claimed.append((day.subscription_id, day.renewal_date, quote_number))
            # One row per subscription and renewal date (the quote number, or NULL when none
            # was sent), and the renewal date looked at: out of the claim's index until a
            # renewal moves it.
            await connection.execute(
                """WITH looked AS (
                       SELECT * FROM unnest($1::text[], $2::date[], $3::text[])
                           AS u(subscription_id, renewal_date, quote_number)
                   ), marked AS (
                       UPDATE subscriptions AS s SET automatic_quote_for = looked.renewal_date
                       FROM looked WHERE s.subscription_id = looked.subscription_id
                   )
                   INSERT INTO automatic_quotes (subscription_id, renewal_date, quote_number,
                                                 created_at)
                   SELECT subscription_id, renewal_date, quote_number, now() FROM looked""",
                *(list(column) for column in zip(*claimed, strict=True)),
            )
            await unit.outbox.flush(connection)
        self.faults.hit(AUTOMATIC_QUOTES_AFTER_COMMIT)
        return len(due)

    async def _quote(
        self,
        unit: UnitOfWork,
        day: QuoteDay,
        held: Held,
        prices: list[Price],
        promotions: list[Promotion],
    ) -> str | None:
        snapshot, domain = held[day.subscription_id]
        if not eligibility.automatic_quote_due(domain, day.today, self.policy):
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
            today=day.today,
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
            day.today,
            channel="sales",
            kind="renewal",
            recipients=[],
        )
