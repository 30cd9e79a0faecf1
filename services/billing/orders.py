"""`billing.commands` → an order is placed once (its id is the key) and charged once."""

from __future__ import annotations

import json
from datetime import date, timedelta

from services.billing.provider import ChargeResult, PaymentProvider
from shared.clock import Clock
from shared.contracts.billing_commands import PlaceOrder
from shared.contracts.billing_events import TOPIC as BILLING_EVENTS
from shared.contracts.billing_events import (
    OrderPlaced,
    PaymentAwaitingManual,
    PaymentFailed,
    PaymentSucceeded,
)
from shared.contracts.envelope import EventData, new_event
from shared.messaging.consumer import BatchEventHandler, Delivery, UnitOfWork, handles_batch
from shared.messaging.metrics import RENEWALS_PAYMENTS
from shared.test_clocks import CsnClock


def place_order_handler(
    provider: PaymentProvider, clock: Clock, source: str, manual_payment_days: int
) -> BatchEventHandler:
    """Places and charges the batch's orders in two statements, whatever their number."""

    async def place_orders(unit: UnitOfWork, deliveries: list[Delivery]) -> None:
        now = clock.now()
        commands: dict[str, PlaceOrder] = {}
        for delivery in deliveries:
            commands.setdefault(delivery.data.order_id, delivery.data)  # the first one counts
        rows = await unit.connection.fetch(
            """INSERT INTO orders (order_id, request_id, quote_number, csn, currency, purchase_method,
                                   payment_method, lines, total, status, created_at)
               SELECT u.order_id, u.request_id, u.quote_number, u.csn, u.currency,
                      u.purchase_method, u.payment_method, u.lines, u.total, 'placed', $2
               FROM jsonb_to_recordset($1::jsonb) AS u(
                   order_id text, request_id text, quote_number text, csn text, currency text,
                   purchase_method text, payment_method jsonb, lines jsonb, total numeric)
               ON CONFLICT (order_id) DO NOTHING RETURNING order_id""",
            json.dumps(
                [
                    {
                        "order_id": c.order_id,
                        "request_id": c.request_id,
                        "quote_number": c.quote_number,
                        "csn": c.csn,
                        "currency": c.currency,
                        "purchase_method": c.purchase_method,
                        "payment_method": c.payment_method.model_dump(mode="json"),
                        "lines": [line.model_dump(mode="json") for line in c.lines],
                        "total": str(c.total),
                    }
                    for c in commands.values()
                ]
            ),
            now,
        )
        placed = {row["order_id"] for row in rows}
        # The same order asked again was placed and charged the first time: nothing to do.
        # Charged only once placed, with the order id as the provider's idempotency key: a
        # redelivery after a crash finds the order and charges nothing.
        charged = [
            (
                command,
                provider.charge(
                    idempotency_key=command.order_id,
                    amount=command.total,
                    currency=command.currency,
                    method=command.payment_method,
                ),
            )
            for command in commands.values()
            if command.order_id in placed
        ]
        if not charged:
            return
        await unit.connection.execute(
            """WITH charge AS (
                   SELECT * FROM unnest($1::text[], $2::numeric[], $3::text[], $4::text[],
                                        $5::text[], $6::text[])
                       AS c(order_id, amount, currency, outcome, payment_reference, reason)),
               placed AS (
                   UPDATE orders AS o SET status = charge.outcome
                   FROM charge WHERE o.order_id = charge.order_id)
               INSERT INTO payments (order_id, amount, currency, outcome, payment_reference,
                                     reason, at)
               SELECT order_id, amount, currency, outcome, payment_reference, reason, $7
               FROM charge""",
            [command.order_id for command, _ in charged],
            [command.total for command, _ in charged],
            [command.currency for command, _ in charged],
            [charge.outcome for _, charge in charged],
            [charge.payment_reference for _, charge in charged],
            [charge.reason for _, charge in charged],
            now,
        )
        for _, charge in charged:  # counted when charged; a batch retried counts again
            RENEWALS_PAYMENTS.labels("billing", charge.outcome).inc()
        today = await CsnClock(clock).today_for(unit.connection, {c.csn for c, _ in charged})
        for command, charge in charged:
            pay_by = today[command.csn] + timedelta(days=manual_payment_days)
            for event in _events(command, charge, pay_by):
                unit.outbox.add(
                    BILLING_EVENTS, new_event(event, subject=command.csn, source=source, time=now)
                )

    return handles_batch(place_orders)


def _events(command: PlaceOrder, charge: ChargeResult, pay_by: date) -> list[EventData]:
    events: list[EventData] = [
        OrderPlaced(
            order_id=command.order_id,
            csn=command.csn,
            currency=command.currency,
            purchase_method=command.purchase_method,
            lines=command.lines,
            total=command.total,
            request_id=command.request_id,
            quote_number=command.quote_number,
        )
    ]
    if charge.outcome == "succeeded":
        assert charge.payment_reference is not None
        events.append(
            PaymentSucceeded(
                order_id=command.order_id,
                amount=command.total,
                currency=command.currency,
                payment_reference=charge.payment_reference,
            )
        )
    elif charge.outcome == "awaiting_manual":
        assert charge.payment_reference is not None
        events.append(
            PaymentAwaitingManual(
                order_id=command.order_id,
                amount=command.total,
                currency=command.currency,
                payment_reference=charge.payment_reference,
                pay_by=pay_by,
            )
        )
    else:
        events.append(
            PaymentFailed(
                order_id=command.order_id,
                reason=charge.reason or "declined",
                next_retry_on=command.next_retry_on,  # when renewal will try again, if it will
            )
        )
    return events
