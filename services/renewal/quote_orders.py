"""`quote.orders` → renewal: an accepted quote's order, placed only once its terms are reserved.

Renewal owns every subscription's terms (issue 14): the quote service does not ask billing
itself. Each subscription of the quote is locked and checked (`eligibility.quote_order_reasons`:
RENEWAL_IN_PROGRESS, ALREADY_RENEWED, EXPIRED); when one fails nothing is placed and the quote
service hears why (`quote_order.refused`, answered to the buyer as `quote.rejected`); otherwise
the terms are reserved, the order recorded (purpose `quote`, settled by
services/renewal/settlement.py) and `order.requested` goes to billing, all in one transaction.
"""

from __future__ import annotations

from services.renewal.billing_orders import place_quote_order
from services.renewal.reservations import open_reservations, reserve
from services.renewal.state import announced
from services.renewal.store import Order, OrderLine, order_exists, save_orders
from services.renewal.subscriptions import load_subscriptions, to_domain
from shared.clock import Clock
from shared.contracts.billing_commands import TOPIC as BILLING_COMMANDS
from shared.contracts.envelope import new_event
from shared.contracts.quote_orders import ANSWERS_TOPIC, QuoteOrderRefused, QuoteOrderRequested
from shared.eligibility import Policy, Reservation, quote_order_reasons
from shared.messaging.consumer import Delivery, EventHandler, UnitOfWork
from shared.test_clocks import CsnClock


def quote_order_handler(clock: Clock, policy: Policy, source: str) -> EventHandler:
    csn_clock = CsnClock(clock)

    async def reserve_quote_order(
        unit: UnitOfWork, delivery: Delivery[QuoteOrderRequested]
    ) -> None:
        command = delivery.data
        connection = unit.connection
        if await order_exists(connection, command.order_id):
            return  # asked again: placed the first time
        ids = [line.subscription_id for line in command.lines]
        held = await load_subscriptions(connection, ids, for_update=True)
        reservations = await open_reservations(connection, ids)
        today = (await csn_clock.today_for(connection, [command.csn]))[command.csn]
        reasons = quote_order_reasons(
            {sid: to_domain(held[sid]) if sid in held else None for sid in ids},
            reservations,
            {t.subscription_id: t.term_start for t in command.term_starts},
            kind=command.kind,
            today=today,
            policy=policy,
        )
        now = clock.now()
        if reasons:
            refused = QuoteOrderRefused(
                request_id=command.request_id,
                quote_number=command.quote_number,
                order_id=command.order_id,
                reasons=list(reasons),
            )
            unit.outbox.add(
                ANSWERS_TOPIC,
                new_event(refused, subject=command.csn, source=source, time=now),
            )
            return
        order = Order(
            order_id=command.order_id,
            request_id=command.request_id,
            csn=command.csn,
            subscription_ids=tuple(ids),
            purpose="quote",
            lines=tuple(
                OrderLine(line.subscription_id, line.term, line.seats) for line in command.lines
            ),
            kind=command.kind,  # QUO-3: what the payment does (services/renewal/settlement.py)
            quote_number=command.quote_number,
            target_date=command.target_date,
        )
        await save_orders(connection, [order])
        await reserve(
            connection,
            [
                Reservation(
                    subscription_id=sid, order_id=command.order_id, term_start=s.renewal_date
                )
                for sid, s in held.items()
            ],
            now,
        )
        placed = place_quote_order(command, list(held.values()))
        unit.outbox.add(
            BILLING_COMMANDS, new_event(placed, subject=command.csn, source=source, time=now)
        )

    return announced(reserve_quote_order, policy, source, clock)
