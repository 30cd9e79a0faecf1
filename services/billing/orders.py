"""`billing.commands` → an order is placed once (its id is the key), its charge left `pending`.

Placing only writes: the order, its `order.placed`, and (by a trigger) a `NOTIFY` that wakes the
charger (services/billing/charges.py), which calls the provider outside any transaction. So a
transaction that fails here has taken no money, and one that commits has an order to charge.
"""

from __future__ import annotations

import json
from typing import Any

from shared.clock import Clock
from shared.contracts.billing_commands import PlaceOrder
from shared.contracts.billing_events import TOPIC as BILLING_EVENTS
from shared.contracts.billing_events import OrderPlaced
from shared.contracts.envelope import CloudEvent, new_event
from shared.messaging.consumer import BatchEventHandler, Delivery, UnitOfWork, handles_batch


def place_order_handler(clock: Clock, source: str) -> BatchEventHandler:
    """Places the batch's orders in one statement, whatever their number."""

    async def place_orders(unit: UnitOfWork, deliveries: list[Delivery]) -> None:
        now = clock.now()
        commands: dict[str, PlaceOrder] = {}
        events: dict[str, CloudEvent[Any]] = {}
        for delivery in deliveries:
            command = delivery.data
            if command.order_id in commands:
                continue  # the first one counts
            commands[command.order_id] = command
            # Made now for its traceparent, kept on the order for the charger's payment event.
            events[command.order_id] = new_event(
                _placed(command), subject=command.csn, source=source, time=now, cause=delivery.event
            )
        rows = await unit.connection.fetch(
            """INSERT INTO orders (order_id, request_id, quote_number, csn, currency, purchase_method,
                                   payment_method, lines, total, next_retry_on, status,
                                   charge_status, created_at, traceparent)
               SELECT u.order_id, u.request_id, u.quote_number, u.csn, u.currency,
                      u.purchase_method, u.payment_method, u.lines, u.total, u.next_retry_on,
                      'placed', 'pending', $2, u.traceparent
               FROM jsonb_to_recordset($1::jsonb) AS u(
                   order_id text, request_id text, quote_number text, csn text, currency text,
                   purchase_method text, payment_method jsonb, lines jsonb, total numeric,
                   next_retry_on date, traceparent text)
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
                        "next_retry_on": c.next_retry_on and c.next_retry_on.isoformat(),
                        "traceparent": events[c.order_id].traceparent,
                    }
                    for c in commands.values()
                ]
            ),
            now,
        )
        # The same order asked again was placed the first time: nothing to do.
        placed = {row["order_id"] for row in rows}
        for order_id, event in events.items():
            if order_id in placed:
                unit.outbox.add(BILLING_EVENTS, event)

    return handles_batch(place_orders)


def _placed(command: PlaceOrder) -> OrderPlaced:
    return OrderPlaced(
        order_id=command.order_id,
        csn=command.csn,
        currency=command.currency,
        purchase_method=command.purchase_method,
        lines=command.lines,
        total=command.total,
        request_id=command.request_id,
        quote_number=command.quote_number,
    )
