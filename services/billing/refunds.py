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
from dataclasses import dataclass

from services.billing import store
from services.billing.provider import PaymentProvider, RefundRequest
from services.billing.settings import ProviderCalls
from services.billing.store import Refund
from shared.clock import Clock
from shared.contracts.billing_commands import RefundPayment
from shared.contracts.billing_events import TOPIC as BILLING_EVENTS
from shared.contracts.billing_events import PaymentRefunded
from shared.contracts.envelope import new_event
from shared.messaging.consumer import Delivery, EventHandler, PoolHolder, UnitOfWork
from shared.messaging.outbox import Outbox

log = logging.getLogger(__name__)

LOOP = "refunder"


def refund_requested_handler(clock: Clock) -> EventHandler:
    async def record_refund(unit: UnitOfWork, delivery: Delivery[RefundPayment]) -> None:
        asked = delivery.data
        await store.request_refund(
            unit.connection, asked.order_id, asked.subscription_ids, asked.reason, clock.now()
        )

    return record_refund


@dataclass(frozen=True)
class Refunder:
    pools: PoolHolder
    provider: PaymentProvider
    clock: Clock
    calls: ProviderCalls

    async def step(self) -> int:
        """One claim of refunds, given back and recorded; returns how many were recorded."""
        now = self.clock.now()
        async with self.pools.get().acquire() as connection:
            claimed = await store.claim_refunds(
                connection,
                now=now,
                stale_before=now - self.calls.lease,
                limit=self.calls.batch_size,
            )
        if not claimed:
            return 0
        async with asyncio.timeout(self.calls.timeout_seconds):
            results = await self.provider.refund_many(
                [RefundRequest(r.order_id, r.amount, r.currency) for r in claimed]
            )
        async with self.pools.get().acquire() as connection, connection.transaction():
            refunds = await store.record_refunds(
                connection, list(zip(claimed, results, strict=True))
            )
            outbox = Outbox()
            for refund in refunds:
                outbox.add(
                    BILLING_EVENTS,
                    new_event(
                        _refunded(refund), subject=refund.csn, source=self.calls.source, time=now
                    ),
                )
            await outbox.flush(connection)
        log.info("refunds given back", extra={"orders": len(refunds)})
        return len(refunds)


def _refunded(refund: Refund) -> PaymentRefunded:
    # The refund's fields are named as the contract's; its `csn` is the event's subject.
    return PaymentRefunded.model_validate(refund, from_attributes=True)
