"""Orders abandoned: a manual payment not received by its `pay_by` (on the CSN's clock) releases
the terms its order reserved, so that the customer can order again (issue 14); whoever waits
for the order is answered then, in the release's transaction, for the reason
`eligibility.abandoned_refusal` gives (issue 19): a manual renewal request with
`renewal.rejected` for each subscription released, its batch item settled rejected, which
completes a bulk request with nothing else waiting (`bulk.completed`); a quote's acceptance
with `quote_order.refused`, which reopens the quote and answers the acceptance
`quote.rejected`, as the expiry does (services/renewal/released_orders.py). Money that still
arrives for it later only goes back (services/renewal/settlement.py: RESERVATION_RELEASED),
unanswered.

It runs as a `WorkLoop`, in batches claimed with `FOR UPDATE SKIP LOCKED` (replicas share it).
"""

from __future__ import annotations

import logging

import asyncpg

from services.renewal.released_orders import answer_requests, refuse_quote_order
from services.renewal.state import StateAnnouncer
from services.renewal.store import waiting_orders
from services.renewal.subscriptions import record_history
from shared.clock import Clock
from shared.eligibility import Policy, abandoned_refusal
from shared.messaging.loops import WorkLoop
from shared.messaging.outbox import Outbox
from shared.test_clocks import csn_today_sql

log = logging.getLogger(__name__)

LOOP = "abandoned_orders"

TODAY = csn_today_sql("s.csn", "$1")
RELEASE = f"""
WITH due AS (
    SELECT r.subscription_id FROM term_reservations AS r
    JOIN subscriptions AS s USING (subscription_id)
    {TODAY.joins}
    -- Only a manual payment has a pay_by: said apart from the CSN's today, which needs the
    -- joins, so that the automatic renewals in flight are never read (their partial index).
    WHERE r.pay_by IS NOT NULL AND r.pay_by < {TODAY.today}
    LIMIT $2
    FOR UPDATE OF r, s SKIP LOCKED)  -- s too: the announce bumps its state version
DELETE FROM term_reservations AS r USING due WHERE r.subscription_id = due.subscription_id
RETURNING r.subscription_id, r.order_id, r.pay_by
"""


class AbandonedOrders:
    def __init__(
        self,
        pool: asyncpg.Pool,
        clock: Clock,
        *,
        source: str,
        batch_size: int,
        poll_seconds: float,
        policy: Policy | None = None,
    ) -> None:
        self.pool = pool
        self.announcer = StateAnnouncer(policy or Policy(), source)
        self.clock = clock
        self.source = source
        self.batch_size = batch_size
        self.poll_seconds = poll_seconds

    def work_loop(self) -> WorkLoop:
        return WorkLoop(
            LOOP, self.step, service="renewal", poll_seconds=self.poll_seconds, pool=self.pool
        )

    async def step(self) -> int:
        now = self.clock.now()
        async with self.pool.acquire() as connection, connection.transaction():
            rows = await connection.fetch(RELEASE, now, self.batch_size)
            await record_history(
                connection,
                [
                    (
                        row["subscription_id"],
                        now,
                        "order_abandoned",
                        {"order_id": row["order_id"], "pay_by": row["pay_by"]},
                        None,
                        None,
                        None,
                    )
                    for row in rows
                ],
            )
            orders = await waiting_orders(connection, {row["order_id"] for row in rows})
            outbox = Outbox()
            why = abandoned_refusal()
            for order in orders:
                if order.purpose == "quote":  # the quote service reopens it, answers the buyer
                    refuse_quote_order(outbox, order, why, source=self.source, now=now)
            released_of = {(row["order_id"], row["subscription_id"]) for row in rows}
            await answer_requests(
                connection, outbox, orders, released_of, [why], clock=self.clock, source=self.source
            )
            await self.announcer.announce_changes(connection, outbox, now)  # pending_order gone
            await outbox.flush(connection)
        if rows:
            log.info("abandoned orders released", extra={"subscriptions": len(rows)})
        return len(rows)
