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
import json
import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

import asyncpg

from services.billing.orders import order_subscription_ids
from services.billing.provider import ChargeRequest, ChargeResult, PaymentProvider
from shared.clock import Clock
from shared.contracts.billing_events import TOPIC as BILLING_EVENTS
from shared.contracts.billing_events import PaymentAwaitingManual, PaymentFailed, PaymentSucceeded
from shared.contracts.envelope import EventData, new_event
from shared.contracts.subscription_events import PaymentMethod
from shared.messaging import tracing
from shared.messaging.consumer import PoolHolder
from shared.messaging.loops import WorkLoop
from shared.messaging.outbox import Outbox
from shared.plumbing.faults import BILLING_AFTER_CHARGE, BILLING_BEFORE_CHARGE, FaultPoints
from shared.plumbing.metrics import RENEWALS_PAYMENTS
from shared.test_clocks import CsnClock

log = logging.getLogger(__name__)

LOOP = "charger"
# Steps that try again to record the outcomes a failed step kept, before leaving them to the lease.
KEEP_TRIES = 3

# The attempt is committed with its number: the outcome is recorded only for that attempt.
CLAIM = """
UPDATE orders AS o
SET charge_status = 'charging', charge_attempts = o.charge_attempts + 1, charge_attempt_at = $1
FROM (SELECT order_id FROM orders
      WHERE charge_status = 'pending'
         OR (charge_status = 'charging' AND charge_attempt_at < $2)
      ORDER BY created_at
      LIMIT $3
      FOR UPDATE SKIP LOCKED) AS due
WHERE o.order_id = due.order_id
RETURNING o.order_id, o.csn, o.currency, o.total, o.payment_method::text AS payment_method,
          o.next_retry_on, o.charge_attempts, o.traceparent,
          -- named by the payment event, for its email (issue 17 item 3)
          ARRAY(SELECT line ->> 'subscription_id'
                FROM jsonb_array_elements(o.lines) WITH ORDINALITY AS l(line, n)
                ORDER BY n) AS subscription_ids
"""

# Only an attempt still `charging` under its own number is recorded: one outcome per order.
RECORD = """
WITH outcome AS (
    SELECT * FROM unnest($1::text[], $2::integer[], $3::text[], $4::text[], $5::text[])
        AS c(order_id, attempt, outcome, payment_reference, reason)),
recorded AS (
    UPDATE orders AS o SET status = outcome.outcome, charge_status = 'recorded'
    FROM outcome
    WHERE o.order_id = outcome.order_id AND o.charge_status = 'charging'
      AND o.charge_attempts = outcome.attempt
    RETURNING o.order_id, o.total, o.currency, outcome.outcome, outcome.payment_reference,
              outcome.reason),
paid AS (
    INSERT INTO payments (order_id, amount, currency, outcome, payment_reference, reason, at)
    SELECT order_id, total, currency, outcome, payment_reference, reason, $6 FROM recorded)
SELECT order_id FROM recorded
"""


@dataclass(frozen=True)
class Attempt:
    """One claimed charge: the order as billing placed it, and the attempt's number."""

    order_id: str
    csn: str
    currency: str
    total: Decimal
    method: PaymentMethod
    next_retry_on: date | None
    number: int
    traceparent: str | None = None  # of the order's `order.placed`: the payment continues it
    subscription_ids: tuple[str, ...] = ()  # in line order, each once

    @property
    def unfinished_before(self) -> bool:
        """An earlier attempt was made and never recorded: the provider may have charged it."""
        return self.number > 1


class Charger:
    def __init__(
        self,
        pools: PoolHolder,
        provider: PaymentProvider,
        clock: Clock,
        *,
        source: str,
        manual_payment_days: int,
        batch_size: int,
        lease_seconds: float,
        timeout_seconds: float,
        faults: FaultPoints | None = None,
    ) -> None:
        self.pools = pools
        self.provider = provider
        self.clock = clock
        self.source = source
        self.manual_payment_days = manual_payment_days
        self.batch_size = batch_size
        self.lease = timedelta(seconds=lease_seconds)
        self.timeout_seconds = timeout_seconds
        self.faults = faults or FaultPoints()
        self.started_at: datetime | None = None
        # Outcomes the provider gave that a failed step could not record: recorded first at the
        # next steps; after `KEEP_TRIES` failures left to reconciliation, so they can't block.
        self.unrecorded: list[tuple[Attempt, ChargeResult]] = []
        self.unrecorded_tries = 0

    def work_loop(self, pool: asyncpg.Pool, *, channel: str, poll_seconds: float) -> WorkLoop:
        """The charger's loop, woken by `channel` on `pool`."""
        return WorkLoop(
            LOOP,
            self.step,
            service="billing",
            poll_seconds=poll_seconds,
            pool=pool,
            channel=channel,
        )

    async def step(self) -> int:
        """Record what is left from a failed step, then one claim; returns how many recorded."""
        recorded = 0
        if self.unrecorded:
            recorded += await self._record_kept()
        attempts = await self._claim()
        if not attempts:
            return recorded
        self.faults.hit(BILLING_BEFORE_CHARGE)
        async with asyncio.timeout(self.timeout_seconds):
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

    async def _claim(self) -> list[Attempt]:
        now = self.clock.now()
        if self.started_at is None:
            self.started_at = now
        # Unfinished attempts to reconcile: every one made before this process started (a
        # restart after a crash), and then any whose lease ran out (a replica that died).
        stale_before = max(now - self.lease, self.started_at)
        rows = await self.pools.get().fetch(CLAIM, now, stale_before, self.batch_size)
        return [
            Attempt(
                order_id=row["order_id"],
                csn=row["csn"],
                currency=row["currency"],
                total=row["total"],
                method=PaymentMethod.model_validate(json.loads(row["payment_method"])),
                next_retry_on=row["next_retry_on"],
                number=row["charge_attempts"],
                traceparent=row["traceparent"],
                subscription_ids=tuple(order_subscription_ids(row["subscription_ids"])),
            )
            for row in rows
        ]

    async def _ask_provider(self, attempts: list[Attempt]) -> list[ChargeResult]:
        """Each order's outcome: the provider's record of an unfinished attempt, else a charge."""
        known = await self.provider.lookup_many(
            [a.order_id for a in attempts if a.unfinished_before]
        )
        if known:
            log.info("charges reconciled with the provider", extra={"orders": len(known)})
        to_charge = [a for a in attempts if a.order_id not in known]
        charged = await self.provider.charge_many(
            [ChargeRequest(a.order_id, a.total, a.currency, a.method) for a in to_charge]
        )
        results = {**known, **{a.order_id: r for a, r in zip(to_charge, charged, strict=True)}}
        return [results[a.order_id] for a in attempts]

    async def _record(self, outcomes: list[tuple[Attempt, ChargeResult]]) -> int:
        now = self.clock.now()
        async with self.pools.get().acquire() as connection, connection.transaction():
            rows = await connection.fetch(
                RECORD,
                [a.order_id for a, _ in outcomes],
                [a.number for a, _ in outcomes],
                [r.outcome for _, r in outcomes],
                [r.payment_reference for _, r in outcomes],
                [r.reason for _, r in outcomes],
                now,
            )
            recorded_ids = {row["order_id"] for row in rows}
            recorded = [(a, r) for a, r in outcomes if a.order_id in recorded_ids]
            awaiting = {a.csn for a, r in recorded if r.outcome == "awaiting_manual"}
            # The CSN's today (its time zone, its test clock), not the UTC date (issue 14).
            today = await CsnClock(self.clock).today_for(connection, awaiting) if awaiting else {}
            outbox = Outbox()
            for attempt, result in recorded:
                pay_by = today.get(attempt.csn, now.date()) + timedelta(
                    days=self.manual_payment_days
                )
                event = _event(attempt, result, pay_by)
                outbox.add(
                    BILLING_EVENTS,
                    new_event(
                        event,
                        subject=attempt.csn,
                        source=self.source,
                        time=now,
                        cause=tracing.parse(attempt.traceparent),
                    ),
                )
            await outbox.flush(connection)
        for _, result in recorded:  # once per order: its outcome is recorded once
            RENEWALS_PAYMENTS.labels("billing", result.outcome).inc()
        return len(recorded)


def _event(attempt: Attempt, charge: ChargeResult, pay_by: date) -> EventData:
    if charge.outcome == "succeeded":
        assert charge.payment_reference is not None
        return PaymentSucceeded(
            order_id=attempt.order_id,
            amount=attempt.total,
            currency=attempt.currency,
            payment_reference=charge.payment_reference,
        )
    if charge.outcome == "awaiting_manual":
        assert charge.payment_reference is not None
        return PaymentAwaitingManual(
            order_id=attempt.order_id,
            amount=attempt.total,
            currency=attempt.currency,
            payment_reference=charge.payment_reference,
            pay_by=pay_by,
            csn=attempt.csn,
            subscription_ids=list(attempt.subscription_ids),
        )
    return PaymentFailed(
        order_id=attempt.order_id,
        reason=charge.reason or "declined",
        next_retry_on=attempt.next_retry_on,  # when renewal will try again, if it will
        csn=attempt.csn,
        subscription_ids=list(attempt.subscription_ids),
        amount=attempt.total,
        currency=attempt.currency,
    )
