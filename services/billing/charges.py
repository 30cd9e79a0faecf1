"""The charger: charges placed orders, never inside a database transaction, never twice.

One step of its `WorkLoop` (woken by `NOTIFY <schema>_charges` when orders are placed):
1. claims unfinished charges (`FOR UPDATE SKIP LOCKED`, one statement) and records the attempt
   (`charging`, when, attempt count) — COMMITTED before the provider hears of it;
2. asks the provider, outside any transaction, with the order id as idempotency key: an order
   whose earlier attempt never finished (a crash, a lease run out) is looked up first, and only
   charged (again, with the same key) when the provider has no charge for it;
3. records each outcome, its payment row and its `payment.*` event in one transaction, on the
   condition that the attempt is still the one it made (another replica may have reconciled it).

A database error in step 3 (deadlock, serialization failure, failover) fails the step: the loop
backs off, and the next step records the outcomes kept from this one before claiming anything
new. Were the process to die instead, the attempt stays `charging` and is reconciled with the
provider's record (step 2) by the next process to start, or by any replica once its lease ran out.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from services.billing import store
from services.billing.outcomes import charged
from services.billing.provider import ChargeRequest, ChargeResult, PaymentProvider
from services.billing.settings import ProviderCalls
from services.billing.store import ChargeAttempt
from shared.clock import Clock
from shared.contracts.billing_events import TOPIC as BILLING_EVENTS
from shared.contracts.envelope import new_event
from shared.messaging import tracing
from shared.messaging.consumer import PoolHolder
from shared.messaging.outbox import Outbox
from shared.plumbing.faults import BILLING_AFTER_CHARGE, BILLING_BEFORE_CHARGE, FaultPoints
from shared.plumbing.metrics import RENEWALS_PAYMENTS
from shared.test_clocks import CsnClock

log = logging.getLogger(__name__)

LOOP = "charger"
# Steps that try again to record the outcomes a failed step kept, before leaving them to the lease.
KEEP_TRIES = 3

AttemptResult = tuple[ChargeAttempt, ChargeResult]


@dataclass
class Charger:
    pools: PoolHolder
    provider: PaymentProvider
    clock: Clock
    calls: ProviderCalls
    manual_payment_days: int = field(kw_only=True)
    faults: FaultPoints = field(default_factory=FaultPoints, kw_only=True)
    started_at: datetime | None = field(default=None, init=False)
    # Outcomes the provider gave that a failed step could not record: recorded first at the
    # next steps; after `KEEP_TRIES` failures left to reconciliation, so they can't block.
    unrecorded: list[AttemptResult] = field(default_factory=list, init=False)
    unrecorded_tries: int = field(default=0, init=False)

    async def step(self) -> int:
        """Record what is left from a failed step, then one claim; returns how many recorded."""
        recorded = 0
        if self.unrecorded:
            recorded += await self._record_kept()
        attempts = await self._claim()
        if not attempts:
            return recorded
        self.faults.hit(BILLING_BEFORE_CHARGE)
        async with asyncio.timeout(self.calls.timeout_seconds):
            results = await self._ask_provider(attempts)
        self.faults.hit(BILLING_AFTER_CHARGE)
        self.unrecorded = list(zip(attempts, results, strict=True))
        self.unrecorded_tries = 1
        recorded += await self._record(self.unrecorded)
        self.unrecorded = []
        return recorded

    async def _record_kept(self) -> int:
        kept = self.unrecorded
        if self.unrecorded_tries >= KEEP_TRIES:
            # Still `charging` in the database: reconciled once their lease runs out.
            log.warning("outcomes left to reconciliation", extra={"orders": len(kept)})
            self.unrecorded = []
            return 0
        self.unrecorded_tries += 1
        recorded = await self._record(kept)
        self.unrecorded = []
        return recorded

    async def _claim(self) -> list[ChargeAttempt]:
        now = self.clock.now()
        if self.started_at is None:
            self.started_at = now
        # Unfinished attempts to reconcile: every one made before this process started (a
        # restart after a crash), and then any whose lease ran out (a replica that died).
        stale_before = max(now - self.calls.lease, self.started_at)
        async with self.pools.get().acquire() as connection:
            return await store.claim_charges(
                connection, now=now, stale_before=stale_before, limit=self.calls.batch_size
            )

    async def _ask_provider(self, attempts: list[ChargeAttempt]) -> list[ChargeResult]:
        """Each order's outcome: the provider's record of an unfinished attempt, else a charge."""
        known = await self.provider.lookup_many(
            [a.order.order_id for a in attempts if a.unfinished_before]
        )
        if known:
            log.info("charges reconciled with the provider", extra={"orders": len(known)})
        to_charge = [a for a in attempts if a.order.order_id not in known]
        made = await self.provider.charge_many([_request(a) for a in to_charge])
        results = {**known, **{a.order.order_id: r for a, r in zip(to_charge, made, strict=True)}}
        return [results[a.order.order_id] for a in attempts]

    async def _record(self, outcomes: list[AttemptResult]) -> int:
        now = self.clock.now()
        async with self.pools.get().acquire() as connection, connection.transaction():
            recorded_ids = await store.record_charges(connection, outcomes, now)
            recorded = [(a, r) for a, r in outcomes if a.order.order_id in recorded_ids]
            awaiting = {a.order.csn for a, r in recorded if r.outcome == "awaiting_manual"}
            # The CSN's today (its time zone, its test clock), not the UTC date (issue 14).
            today = await CsnClock(self.clock).today_for(connection, awaiting) if awaiting else {}
            outbox = Outbox()
            for attempt, result in recorded:
                pay_by = today.get(attempt.order.csn, now.date()) + timedelta(
                    days=self.manual_payment_days
                )
                outbox.add(
                    BILLING_EVENTS,
                    new_event(
                        charged(attempt, result, pay_by),
                        subject=attempt.order.csn,
                        source=self.calls.source,
                        time=now,
                        cause=tracing.parse(attempt.traceparent),
                    ),
                )
            await outbox.flush(connection)
        for _, result in recorded:  # once per order: its outcome is recorded once
            RENEWALS_PAYMENTS.labels("billing", result.outcome).inc()
        return len(recorded)


def _request(attempt: ChargeAttempt) -> ChargeRequest:
    """The provider is asked with the order id as idempotency key: the same order, one charge."""
    order = attempt.order
    return ChargeRequest(order.order_id, order.total, order.currency, attempt.method)
