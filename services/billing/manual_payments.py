"""`payment.events` → billing: a payment that arrived by bank transfer, convenience store or ATM
for an order awaiting manual payment (AUTO-4).

It completes the order when it matches one that awaits payment, its amount and its currency
(`payment.succeeded`, and renewal renews); otherwise `payment.rejected` with every reason that
applies (`UNKNOWN_ORDER`, `AMOUNT_MISMATCH`, `CURRENCY_MISMATCH`) and nothing changes. At most
one successful payment per order, by the database's own unique index.
"""

from __future__ import annotations

from services.billing import store
from services.billing.store import BillingOrder, Payment
from shared.clock import Clock
from shared.contracts.billing_events import TOPIC as BILLING_EVENTS
from shared.contracts.billing_events import PaymentRejected, PaymentSucceeded
from shared.contracts.envelope import EventData, new_event
from shared.contracts.payment_events import PaymentReceived
from shared.messaging.consumer import Delivery, EventHandler, UnitOfWork
from shared.plumbing.committed_counts import count_on_commit
from shared.plumbing.metrics import RENEWALS_PAYMENTS


def payment_received_handler(clock: Clock, source: str) -> EventHandler:
    async def settle_manual_payment(unit: UnitOfWork, delivery: Delivery[PaymentReceived]) -> None:
        received = delivery.data
        payment = Payment(
            received.order_id, received.amount, received.currency, received.payment_reference
        )
        order = await store.order_awaiting_payment(
            unit.connection, payment.order_id, payment.payment_reference
        )
        reasons = rejections(payment, order)
        now = clock.now()
        answer: EventData
        if reasons:
            answer = PaymentRejected(
                payment_reference=payment.payment_reference,
                order_id=payment.order_id,
                reasons=reasons,
            )
        else:
            await store.record_manual_payment(unit.connection, payment, now)
            # Once it commits: a batch that fails is handled again, message by message.
            count_on_commit(RENEWALS_PAYMENTS.labels("billing", "succeeded"))
            # The payment's fields are named as the contract's: it is what succeeded.
            answer = PaymentSucceeded.model_validate(payment, from_attributes=True)
        subject = order.csn if order is not None else delivery.event.subject
        unit.outbox.add(BILLING_EVENTS, new_event(answer, subject=subject, source=source, time=now))

    return settle_manual_payment


def rejections(payment: Payment, order: BillingOrder | None) -> list[str]:
    """Why the payment does not complete the order it names; empty when it does."""
    if order is None:
        return ["UNKNOWN_ORDER"]
    reasons: list[str] = []
    if payment.amount != order.total:
        reasons.append("AMOUNT_MISMATCH")
    if payment.currency != order.currency:
        reasons.append("CURRENCY_MISMATCH")
    return reasons
