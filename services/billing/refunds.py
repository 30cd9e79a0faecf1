"""Refunds: money that arrived for an order that can no longer take effect goes back, once.

Renewal asks (`payment.refund_requested`: an order paid for a subscription that expired meanwhile,
LIFE-3/LIFE-5, or whose reservation was released); the request is recorded `pending`, one per
order, for the lines named (all of them when none is). The refunder, like the charger
(services/billing/charges.py), commits its attempt, asks the provider outside any transaction
with the order id as idempotency key (asked again after a crash: the same refund), then records
the outcome and its `payment.refunded` in one transaction, only for its own attempt.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import asyncpg

from services.billing.provider import PaymentProvider, RefundRequest
from shared.clock import Clock
from shared.contracts.billing_commands import RefundPayment
from shared.contracts.billing_events import TOPIC as BILLING_EVENTS
from shared.contracts.billing_events import PaymentRefunded
from shared.contracts.envelope import new_event
from shared.messaging.consumer import Delivery, EventHandler, UnitOfWork
from shared.messaging.loops import WorkLoop
from shared.messaging.outbox import Outbox

log = logging.getLogger(__name__)

LOOP = "refunder"

# The amount of the lines named (every line when none is), of an order that was paid.
REQUEST = """
INSERT INTO refunds (order_id, amount, currency, reason, status, requested_at)
SELECT o.order_id,
       CASE WHEN cardinality($2::text[]) = 0 THEN p.amount
            ELSE (SELECT sum((l ->> 'amount')::numeric) FROM jsonb_array_elements(o.lines) AS l
                  WHERE l ->> 'subscription_id' = ANY($2::text[])) END,
       p.currency, $3, 'pending', $4
FROM orders AS o JOIN payments AS p ON p.order_id = o.order_id AND p.outcome = 'succeeded'
WHERE o.order_id = $1
ON CONFLICT (order_id) DO NOTHING
"""

CLAIM = """
UPDATE refunds AS r SET status = 'refunding', attempts = r.attempts + 1, attempt_at = $1
FROM (SELECT order_id FROM refunds
      WHERE status = 'pending' OR (status = 'refunding' AND attempt_at < $2)
      ORDER BY requested_at LIMIT $3 FOR UPDATE SKIP LOCKED) AS due
WHERE r.order_id = due.order_id
RETURNING r.order_id, r.amount, r.currency, r.reason, r.attempts
"""

RECORD = """
UPDATE refunds AS r SET status = 'recorded', refund_reference = u.reference
FROM unnest($1::text[], $2::integer[], $3::text[]) AS u(order_id, attempt, reference)
WHERE r.order_id = u.order_id AND r.status = 'refunding' AND r.attempts = u.attempt
RETURNING r.order_id, r.amount, r.currency, r.reason, r.refund_reference,
          (SELECT csn FROM orders AS o WHERE o.order_id = r.order_id) AS csn
"""


def refund_requested_handler(clock: Clock) -> EventHandler:
    async def record_refund(unit: UnitOfWork, delivery: Delivery) -> None:
        asked: RefundPayment = delivery.data
        await unit.connection.execute(
            REQUEST, asked.order_id, asked.subscription_ids, asked.reason, clock.now()
        )

    return record_refund


class Refunder:
    def __init__(
        self,
        pool: asyncpg.Pool,
        provider: PaymentProvider,
        clock: Clock,
        *,
        source: str,
        batch_size: int,
        lease_seconds: float,
        timeout_seconds: float,
    ) -> None:
        self.pool = pool
        self.provider = provider
        self.clock = clock
        self.source = source
        self.batch_size = batch_size
        self.lease = timedelta(seconds=lease_seconds)
        self.timeout_seconds = timeout_seconds

    def work_loop(self, *, channel: str, poll_seconds: float) -> WorkLoop:
        return WorkLoop(
            LOOP,
            self.step,
            service="billing",
            poll_seconds=poll_seconds,
            pool=self.pool,
            channel=channel,
        )

    async def step(self) -> int:
        now = self.clock.now()
        claimed = await self.pool.fetch(CLAIM, now, now - self.lease, self.batch_size)
        if not claimed:
            return 0
        async with asyncio.timeout(self.timeout_seconds):
            results = await self.provider.refund_many(
                [RefundRequest(r["order_id"], r["amount"], r["currency"]) for r in claimed]
            )
        async with self.pool.acquire() as connection, connection.transaction():
            rows = await connection.fetch(
                RECORD,
                [r["order_id"] for r in claimed],
                [r["attempts"] for r in claimed],
                [result.refund_reference for result in results],
            )
            outbox = Outbox()
            for row in rows:
                refunded = PaymentRefunded(
                    order_id=row["order_id"],
                    amount=row["amount"],
                    currency=row["currency"],
                    reason=row["reason"],
                    refund_reference=row["refund_reference"],
                )
                outbox.add(
                    BILLING_EVENTS,
                    new_event(refunded, subject=row["csn"], source=self.source, time=now),
                )
            await outbox.flush(connection)
        log.info("refunds given back", extra={"orders": len(rows)})
        return len(rows)
