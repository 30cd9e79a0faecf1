"""Orders let go before billing answered them answer whoever waits for them (issue 19).

An order is let go when its manual payment was not received by its `pay_by` (abandoned.py) or
when its subscription expires (LIFE-3, due_date_engine.py) while the money is awaited. Nobody
would hear of it otherwise unless the money came late: a manual request (single, or an item of
a bulk request that would then never complete) and a quote accepted for ever. So the release
answers, in its own transaction, through its outbox:
- a manual renewal request: `renewal.rejected` for each subscription let go, its batch item
  settled rejected, which completes a bulk request nothing else waits for (`bulk.completed`);
- a quote's order, at expiry, once it holds nothing: `quote_order.refused` EXPIRED. It is the
  answer the late money would give (settlement.py: `quote_order.refunded` EXPIRED): the
  acceptance is answered `quote.rejected` and the quote is open again — what any sent quote of
  an expired subscription is: accepting it is refused EXPIRED (nothing renews an expired
  subscription, LIFE-3), and it ends at its expiry date (QUO-8; a renewal quote's is at most
  its subscriptions' grace end, so at once) or when cancelled, which frees the subscriptions'
  `open_quote` and gives their auto-renew back (AUTO-5); abandoned, the same with
  `eligibility.abandoned_refusal` (abandoned.py).
Money that still comes goes back and answers nobody again (`eligibility.refund_answers_request`):
one answer per command (CONTRACT.md).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from services.renewal.batches import SettledItem, settle_items
from services.renewal.reservations import orders_holding
from services.renewal.store import Order, waiting_orders
from shared.clock import Clock
from shared.contracts.envelope import new_event
from shared.contracts.quote_orders import ANSWERS_TOPIC, QuoteOrderRefused
from shared.contracts.renewal_events import TOPIC as RENEWAL_EVENTS
from shared.contracts.renewal_events import RenewalRejected
from shared.db.types import DbConnection
from shared.eligibility import Reason, RefundReason, refund_refusal
from shared.messaging.outbox import Outbox


async def answer_requests(
    connection: DbConnection,
    outbox: Outbox,
    orders: Sequence[Order],
    released: Collection[tuple[str, str]],
    reasons: Sequence[Reason],
    *,
    clock: Clock,
    source: str,
) -> None:
    """Each (order, subscription) `released` of a manual renewal request is refused for
    `reasons`, and its batch item settled so. Only the subscriptions released now: a claim cut
    through an order releases (and answers) the rest at its next step."""
    said = [str(reason) for reason in reasons]
    items: list[SettledItem] = []
    for order in orders:
        if order.purpose != "renewal" or order.request_id is None:
            continue  # a change's order is answered by its payment; the engine's by nobody
        for sid in order.subscription_ids:
            if (order.order_id, sid) not in released:
                continue
            rejected = RenewalRejected(
                request_id=order.request_id, subscription_id=sid, reasons=said
            )
            outbox.add(
                RENEWAL_EVENTS,
                new_event(rejected, subject=order.csn, source=source, time=clock.now()),
            )
            items.append(SettledItem(order.order_id, "rejected", sid, said))
    await settle_items(connection, items, outbox, clock=clock, source=source)


async def answer_expired(
    connection: DbConnection,
    outbox: Outbox,
    released: Sequence[tuple[str, str]],
    *,
    clock: Clock,
    source: str,
    now: datetime,
) -> None:
    """`released`: the (subscription, order) reservations the expiry let go. A quote's order
    with a line still held (another subscription, not expired) can still buy something: it
    waits for its money or its `pay_by` (abandoned.py) as before."""
    if not released:
        return
    order_ids = {order_id for _, order_id in released}
    orders = await waiting_orders(connection, order_ids)
    expired = refund_refusal(RefundReason.EXPIRED)  # what its money would be answered
    let_go = {(order_id, sid) for sid, order_id in released}
    await answer_requests(connection, outbox, orders, let_go, [expired], clock=clock, source=source)
    holding = await orders_holding(connection, order_ids)
    for order in orders:
        if order.purpose == "quote" and order.order_id not in holding:
            refuse_quote_order(outbox, order, expired, source=source, now=now)


def refuse_quote_order(
    outbox: Outbox, order: Order, reason: Reason, *, source: str, now: datetime
) -> None:
    """A quote's order let go: quote hears `quote_order.refused` for `reason`, opens the quote
    again and answers the acceptance `quote.rejected`."""
    assert order.quote_number is not None and order.request_id is not None
    refused = QuoteOrderRefused(
        request_id=order.request_id,  # the acceptance's: its answer is `quote.rejected`
        quote_number=order.quote_number,
        order_id=order.order_id,
        reasons=[reason],
    )
    outbox.add(ANSWERS_TOPIC, new_event(refused, subject=order.csn, source=source, time=now))
