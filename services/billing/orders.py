"""`billing.commands` → an order is placed once (its id is the key) and charged once."""

from __future__ import annotations

import json
from datetime import timedelta

from services.billing.provider import PaymentProvider
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
from shared.messaging.consumer import Delivery, EventHandler, UnitOfWork


def place_order_handler(
    provider: PaymentProvider, clock: Clock, source: str, manual_payment_days: int
) -> EventHandler:
    async def place_order(unit: UnitOfWork, delivery: Delivery) -> None:
        command: PlaceOrder = delivery.data
        now = clock.now()
        placed = await unit.connection.fetchval(
            """INSERT INTO orders (order_id, request_id, quote_number, csn, currency, purchase_method,
                                   payment_method, lines, total, status, created_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8::jsonb, $9, $10, $11)
               ON CONFLICT (order_id) DO NOTHING RETURNING true""",
            command.order_id,
            command.request_id,
            command.quote_number,
            command.csn,
            command.currency,
            command.purchase_method,
            command.payment_method.model_dump_json(),
            json.dumps([line.model_dump(mode="json") for line in command.lines]),
            command.total,
            "placed",
            now,
        )
        if not placed:
            return  # the same order asked again: it was placed and charged the first time
        # Charged only once placed, with the order id as the provider's idempotency key: a
        # redelivery after a crash finds the order and charges nothing.
        charge = provider.charge(
            idempotency_key=command.order_id,
            amount=command.total,
            currency=command.currency,
            method=command.payment_method,
        )
        await unit.connection.execute(
            "UPDATE orders SET status = $2 WHERE order_id = $1", command.order_id, charge.outcome
        )
        await unit.connection.execute(
            """INSERT INTO payments (order_id, amount, currency, outcome, payment_reference, reason, at)
               VALUES ($1, $2, $3, $4, $5, $6, $7)""",
            command.order_id,
            command.total,
            command.currency,
            charge.outcome,
            charge.payment_reference,
            charge.reason,
            now,
        )
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
                    pay_by=now.date() + timedelta(days=manual_payment_days),
                )
            )
        else:
            events.append(
                PaymentFailed(
                    order_id=command.order_id,
                    reason=charge.reason or "declined",
                    next_retry_on=None,
                )
            )
        for event in events:
            unit.outbox.add(
                BILLING_EVENTS, new_event(event, subject=command.csn, source=source, time=now)
            )

    return place_order
