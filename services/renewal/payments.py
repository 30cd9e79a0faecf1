"""`billing.events` → renewal: a paid order renews its subscriptions; a failed one refuses them.

A renewal starts at the current renewal date whether it is early or in grace (LIFE-4, MAN-4):
the date moves by exactly one term from where it was.
"""

from __future__ import annotations

from services.renewal.batches import finish_batches
from services.renewal.subscriptions import load_subscriptions, record_history
from shared.clock import Clock
from shared.contracts.billing_events import (
    OrderPlaced,
    PaymentAwaitingManual,
    PaymentFailed,
    PaymentRejected,
    PaymentSucceeded,
)
from shared.contracts.envelope import new_event
from shared.contracts.renewal_events import TOPIC as RENEWAL_EVENTS
from shared.contracts.renewal_events import RenewalRejected, SubscriptionRenewed
from shared.eligibility import add_term
from shared.messaging.consumer import BatchHandler, Delivery, UnitOfWork, dispatch_by_type


def billing_events_handler(clock: Clock, source: str) -> BatchHandler:
    async def renew_paid_order(unit: UnitOfWork, delivery: Delivery) -> None:
        payment: PaymentSucceeded = delivery.data
        order = await _claim_order(unit, payment.order_id, "paid")
        if order is None:
            return
        connection = unit.connection
        subscriptions = await load_subscriptions(
            connection, order["subscription_ids"], for_update=True
        )
        now = clock.now()
        moved: list[tuple[str, object]] = []
        history = []
        for subscription_id in order["subscription_ids"]:
            subscription = subscriptions[subscription_id]
            previous = subscription.renewal_date
            renewed_to = add_term(previous, subscription.term)
            moved.append((subscription_id, renewed_to))
            renewed = SubscriptionRenewed(
                subscription_id=subscription_id,
                order_id=payment.order_id,
                previous_renewal_date=previous,
                renewal_date=renewed_to,
                term=subscription.term,
                seats=subscription.seats,
                request_id=order["request_id"],
                csn=subscription.csn,
                product_name=subscription.snapshot.product_name,
                buyer=subscription.snapshot.buyer,
            )
            unit.outbox.add(
                RENEWAL_EVENTS,
                new_event(renewed, subject=subscription.csn, source=source, time=now),
            )
            history.append(
                (
                    subscription_id,
                    now,
                    "renewed",
                    {
                        "order_id": payment.order_id,
                        "previous_renewal_date": previous,
                        "renewal_date": renewed_to,
                    },
                    None,
                    order["request_id"],
                    delivery.event.id,
                )
            )
        await connection.execute(
            """UPDATE subscriptions AS s SET renewal_date = u.renewal_date, updated_at = now()
               FROM unnest($1::text[], $2::date[]) AS u(subscription_id, renewal_date)
               WHERE s.subscription_id = u.subscription_id""",
            [sid for sid, _ in moved],
            [d for _, d in moved],
        )
        await record_history(connection, history)
        await _settle_items(unit, order, "renewed", [])

    async def refuse_failed_order(unit: UnitOfWork, delivery: Delivery) -> None:
        failure: PaymentFailed = delivery.data
        order = await _claim_order(unit, failure.order_id, "failed")
        if order is None:
            return
        now = clock.now()
        for subscription_id in order["subscription_ids"]:
            if order["request_id"] is not None:
                rejected = RenewalRejected(
                    request_id=order["request_id"],
                    subscription_id=subscription_id,
                    reasons=["PAYMENT_METHOD_INVALID"],
                )
                unit.outbox.add(
                    RENEWAL_EVENTS,
                    new_event(rejected, subject=order["csn"], source=source, time=now),
                )
        await _settle_items(unit, order, "rejected", ["PAYMENT_METHOD_INVALID"])

    async def _claim_order(unit: UnitOfWork, order_id: str, status: str) -> dict | None:
        # Only an order still waiting for billing's answer changes state: an answer seen twice,
        # or an order that isn't renewal's (a quote's), changes nothing.
        row = await unit.connection.fetchrow(
            "UPDATE orders SET status = $2 WHERE order_id = $1 AND status = 'requested'"
            " RETURNING order_id, request_id, csn, subscription_ids",
            order_id,
            status,
        )
        return dict(row) if row else None

    async def _settle_items(unit: UnitOfWork, order: dict, status: str, reasons: list[str]) -> None:
        if order["request_id"] is None:
            return
        await unit.connection.execute(
            "UPDATE renewal_batch_items SET status = $2, reasons = $3 WHERE order_id = $1",
            order["order_id"],
            status,
            reasons,
        )
        await finish_batches(
            unit.connection, [order["request_id"]], unit.outbox, clock=clock, source=source
        )

    async def nothing_to_do(unit: UnitOfWork, delivery: Delivery) -> None:
        """Billing's other events concern renewal only through their payment outcome."""

    return dispatch_by_type(
        {
            PaymentSucceeded: renew_paid_order,
            PaymentFailed: refuse_failed_order,
            OrderPlaced: nothing_to_do,
            PaymentAwaitingManual: nothing_to_do,
            PaymentRejected: nothing_to_do,
        }
    )
