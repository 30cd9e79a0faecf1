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

from prometheus_client import Counter

from services.billing import store
from services.billing.order_checks import order_refusals
from services.billing.outcomes import refused
from services.billing.store import BillingOrder, NewOrder
from shared.clock import Clock
from shared.contracts.billing_commands import PlaceOrder
from shared.contracts.billing_events import TOPIC as BILLING_EVENTS
from shared.contracts.billing_events import OrderPlaced, OrderRefusal
from shared.contracts.envelope import CloudEvent, EventData, new_event
from shared.messaging.consumer import BatchEventHandler, Delivery, UnitOfWork, handles_batch
from shared.plumbing.committed_counts import count_on_commit
from shared.test_clocks import save_time_zones

ORDERS_REFUSED = Counter(
    "renewals_billing_orders_refused_total",
    "Orders billing refused to place (never charged), by reason: one order refused for two"
    " reasons counts under both",
    ["service", "reason"],  # shared.contracts.billing_events.OrderRefusal
)


def place_order_handler(clock: Clock, source: str) -> BatchEventHandler:
    """Places the batch's orders in one statement, whatever their number."""

    async def place_orders(unit: UnitOfWork, deliveries: list[Delivery[PlaceOrder]]) -> None:
        now = clock.now()
        orders: dict[str, NewOrder] = {}
        answers: dict[str, CloudEvent[EventData]] = {}
        for delivery in deliveries:
            command = delivery.data
            if command.order_id in orders:
                continue  # the first one counts
            refusals = order_refusals(command)
            # Made now for its traceparent, kept on the order for the charger's payment event.
            answer = new_event(
                _answer(command, refusals),
                subject=command.csn,
                source=source,
                time=now,
                cause=delivery.event,
            )
            answers[command.order_id] = answer
            orders[command.order_id] = NewOrder(command, refusals, answer.traceparent)
        placed = await store.place_orders(unit.connection, orders.values(), now)
        # The CSN's today, from which the charger counts `pay_by`, is the date in its zone.
        await save_time_zones(unit.connection, (order.command for order in orders.values()))
        # The same order asked again was placed the first time: nothing to do.
        for order_id, answer in answers.items():
            if order_id in placed:
                unit.outbox.add(BILLING_EVENTS, answer)
                for reason in orders[order_id].refusals:
                    count_on_commit(ORDERS_REFUSED.labels("billing", reason))

    return handles_batch(place_orders)


def _answer(command: PlaceOrder, refusals: list[OrderRefusal]) -> EventData:
    if refusals:
        return refused(BillingOrder.asked(command), refusals)
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
