"""Quote orders let go at expiry: a subscription that expires (LIFE-3) while its quote's order
waits for a manual payment loses its reservation (due_date_engine.py), and once the order holds
nothing any more the quote service hears it then, in the engine's transaction — not only if
the money comes late (issue 19). Without it the quote stays `accepted` for ever: quote expiry
closes only open quotes, and the subscriptions keep it as their `open_quote`.

The answer is the one the late money would give (settlement.py: `quote_order.refunded`
EXPIRED): `quote_order.refused` EXPIRED, so the acceptance is answered `quote.rejected` and the
quote is open again. Open, it is what any sent quote of an expired subscription is: accepting
it again is refused EXPIRED (an expired subscription is renewed by nothing, LIFE-3), and it ends
at its expiry date or when cancelled (QUO-5, QUO-8), which gives the subscriptions' auto-renew
back (AUTO-5). Money that still comes goes back, and the quote, no longer accepted with that
order, hears of it but says nothing more: one answer to the acceptance.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from services.renewal.reservations import orders_holding
from services.renewal.store import waiting_orders
from shared.contracts.envelope import new_event
from shared.contracts.quote_orders import ANSWERS_TOPIC, QuoteOrderRefused
from shared.db.types import DbConnection
from shared.eligibility import RefundReason, refund_refusal
from shared.messaging.outbox import Outbox


async def tell_quotes(
    connection: DbConnection,
    outbox: Outbox,
    released: Sequence[tuple[str, str]],
    *,
    source: str,
    now: datetime,
) -> None:
    """`released`: the (subscription, order) reservations the expiry let go. A quote's order
    with a line still held (another subscription, not expired) can still buy something: it
    waits for its money or its `pay_by` (abandoned.py) as before."""
    order_ids = {order_id for _, order_id in released}
    if not order_ids:
        return
    let_go = order_ids - await orders_holding(connection, order_ids)
    reasons = [str(refund_refusal(RefundReason.EXPIRED))]  # what its money would be answered
    for order in await waiting_orders(connection, let_go):
        if order.purpose != "quote":
            continue
        assert order.quote_number is not None and order.request_id is not None
        refused = QuoteOrderRefused(
            request_id=order.request_id,  # the acceptance's: its answer is `quote.rejected`
            quote_number=order.quote_number,
            order_id=order.order_id,
            reasons=reasons,
        )
        outbox.add(ANSWERS_TOPIC, new_event(refused, subject=order.csn, source=source, time=now))
