"""`payment.events` → billing: a payment that arrived by bank transfer, convenience store or ATM
for an order awaiting manual payment (AUTO-4).

It completes the order when it matches one that awaits payment, its amount and its currency
(`payment.succeeded`, and renewal renews); otherwise `payment.rejected` with every reason that
applies (`UNKNOWN_ORDER`, `AMOUNT_MISMATCH`, `CURRENCY_MISMATCH`) and nothing changes. At most
one successful payment per order, by the database's own unique index.
"""

from __future__ import annotations

from shared.clock import Clock
from shared.contracts.billing_events import TOPIC as BILLING_EVENTS
from shared.contracts.billing_events import PaymentRejected, PaymentSucceeded
from shared.contracts.envelope import EventData, new_event
from shared.contracts.payment_events import PaymentReceived
from shared.messaging.consumer import Delivery, EventHandler, UnitOfWork
from shared.plumbing.metrics import RENEWALS_PAYMENTS


def payment_received_handler(clock: Clock, source: str) -> EventHandler:
    async def settle_manual_payment(unit: UnitOfWork, delivery: Delivery) -> None:
        received: PaymentReceived = delivery.data
        connection = unit.connection
        order = await connection.fetchrow(
            """SELECT o.order_id, o.csn, o.total, o.currency FROM orders AS o
               JOIN payments AS p ON p.order_id = o.order_id AND p.outcome = 'awaiting_manual'
               WHERE o.order_id = $1 AND o.status = 'awaiting_manual'
                 AND p.payment_reference = $2
               FOR UPDATE OF o""",
            received.order_id,
            received.payment_reference,
        )
        reasons = []
        if order is None:
            reasons.append("UNKNOWN_ORDER")
        else:
            if received.amount != order["total"]:
                reasons.append("AMOUNT_MISMATCH")
            if received.currency != order["currency"]:
                reasons.append("CURRENCY_MISMATCH")
        now = clock.now()
        subject = order["csn"] if order is not None else delivery.event.subject
        answer: EventData
        if reasons:
            answer = PaymentRejected(
                payment_reference=received.payment_reference,
                order_id=received.order_id,
                reasons=reasons,
            )
        else:
            await connection.execute(
                "UPDATE orders SET status = 'succeeded' WHERE order_id = $1", received.order_id
            )
            await connection.execute(
                """INSERT INTO payments (order_id, amount, currency, outcome, payment_reference, at)
                   VALUES ($1, $2, $3, 'succeeded', $4, $5)""",
                received.order_id,
                received.amount,
                received.currency,
                received.payment_reference,
                now,
            )
            RENEWALS_PAYMENTS.labels("billing", "succeeded").inc()
            answer = PaymentSucceeded(
                order_id=received.order_id,
                amount=received.amount,
                currency=received.currency,
                payment_reference=received.payment_reference,
            )
        unit.outbox.add(BILLING_EVENTS, new_event(answer, subject=subject, source=source, time=now))

    return settle_manual_payment
