"""`billing.commands` → an order is placed once (its id is the key), its charge left `pending`.

Placing only writes: the order, its `order.placed`, and (by a trigger) a `NOTIFY` that wakes the
charger (services/billing/charges.py), which calls the provider outside any transaction. So a
transaction that fails here has taken no money, and one that commits has an order to charge.

An order whose money does not hold together (services/billing/order_checks.py: a total that is
not the sum of its lines, a line with no seats or no price, an amount finer than its currency)
is refused instead (issue 16 item 4): recorded `refused` with its reasons, never charged, no
`order.placed`, and answered by `payment.failed` with `refusals` (no retry), which releases what
the asker reserved for it. Asked again, it is refused once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from prometheus_client import Counter

from services.billing.order_checks import order_refusals, refusal_reason
from shared.clock import Clock
from shared.contracts.billing_commands import PlaceOrder
from shared.contracts.billing_events import TOPIC as BILLING_EVENTS
from shared.contracts.billing_events import OrderPlaced, OrderRefusal, PaymentFailed
from shared.contracts.envelope import CloudEvent, EventData, new_event
from shared.messaging.consumer import BatchEventHandler, Delivery, UnitOfWork, handles_batch
from shared.test_clocks import save_time_zones

ORDERS_REFUSED = Counter(
    "renewals_billing_orders_refused_total",
    "Orders billing refused to place (never charged), by reason: one order refused for two"
    " reasons counts under both",
    ["service", "reason"],  # shared.contracts.billing_events.OrderRefusal
)


def place_order_handler(clock: Clock, source: str) -> BatchEventHandler:
    """Places the batch's orders in one statement, whatever their number."""

    async def place_orders(unit: UnitOfWork, deliveries: list[Delivery]) -> None:
        now = clock.now()
        commands: dict[str, PlaceOrder] = {}
        refusals: dict[str, list[OrderRefusal]] = {}
        events: dict[str, CloudEvent[Any]] = {}
        for delivery in deliveries:
            command = delivery.data
            if command.order_id in commands:
                continue  # the first one counts
            commands[command.order_id] = command
            refusals[command.order_id] = order_refusals(command)
            answer = _answer(command, refusals[command.order_id])
            # Made now for its traceparent, kept on the order for the charger's payment event.
            events[command.order_id] = new_event(
                answer, subject=command.csn, source=source, time=now, cause=delivery.event
            )
        rows = await unit.connection.fetch(
            """INSERT INTO orders (order_id, request_id, quote_number, csn, currency, purchase_method,
                                   payment_method, lines, total, next_retry_on, status,
                                   charge_status, refusals, created_at, traceparent)
               SELECT u.order_id, u.request_id, u.quote_number, u.csn, u.currency,
                      u.purchase_method, u.payment_method, u.lines, u.total, u.next_retry_on,
                      -- A refused order is recorded as settled: the charger never claims it.
                      CASE WHEN u.refused THEN 'refused' ELSE 'placed' END,
                      CASE WHEN u.refused THEN 'recorded' ELSE 'pending' END,
                      u.refusals, $2, u.traceparent
               FROM jsonb_to_recordset($1::jsonb) AS u(
                   order_id text, request_id text, quote_number text, csn text, currency text,
                   purchase_method text, payment_method jsonb, lines jsonb, total numeric,
                   next_retry_on date, refused boolean, refusals text[], traceparent text)
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
                        "refused": bool(refusals[c.order_id]),
                        "refusals": refusals[c.order_id],
                        "traceparent": events[c.order_id].traceparent,
                    }
                    for c in commands.values()
                ]
            ),
            now,
        )
        # The CSN's today, from which the charger counts `pay_by`, is the date in its zone.
        await save_time_zones(unit.connection, commands.values())
        # The same order asked again was placed the first time: nothing to do.
        placed = {row["order_id"] for row in rows}
        for order_id, event in events.items():
            if order_id in placed:
                unit.outbox.add(BILLING_EVENTS, event)
                for reason in refusals[order_id]:
                    ORDERS_REFUSED.labels("billing", reason).inc()

    return handles_batch(place_orders)


def _answer(command: PlaceOrder, refusals: list[OrderRefusal]) -> EventData:
    if not refusals:
        return _placed(command)
    return PaymentFailed(
        order_id=command.order_id,
        reason=refusal_reason(refusals),
        next_retry_on=None,  # the same order would be refused again
        refusals=refusals,
        csn=command.csn,
        subscription_ids=order_subscription_ids(line.subscription_id for line in command.lines),
        amount=command.total,
        currency=command.currency,
    )


def order_subscription_ids(ids: Iterable[str]) -> list[str]:
    """An order's subscriptions as its payment events name them: in line order, each once."""
    return list(dict.fromkeys(ids))


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
