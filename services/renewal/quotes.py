"""`quote.events` → renewal: a paid quote renews each of its subscriptions with the quote's term
and seats, from the current renewal date (LIFE-4), once — whatever how often `quote.paid` comes."""

from __future__ import annotations

import json
from dataclasses import replace

from services.renewal.payments import Settlement
from services.renewal.subscriptions import load_subscriptions
from shared.clock import Clock
from shared.contracts.quote_events import REGISTRY as QUOTE_EVENTS_REGISTRY
from shared.contracts.quote_events import QuotePaid, QuoteSent
from shared.messaging.consumer import (
    BatchHandler,
    Delivery,
    EventHandler,
    UnitOfWork,
    dispatch_by_type,
)


def quote_events_handler(clock: Clock, source: str) -> BatchHandler:
    async def remember(unit: UnitOfWork, delivery: Delivery) -> None:
        sent: QuoteSent = delivery.data
        await unit.connection.execute(
            "INSERT INTO quotes (quote_number, csn, lines) VALUES ($1, $2, $3::jsonb)"
            " ON CONFLICT (quote_number) DO NOTHING",
            sent.quote_number,
            delivery.event.subject,
            json.dumps([line.model_dump(mode="json") for line in sent.lines]),
        )

    async def renew(unit: UnitOfWork, delivery: Delivery) -> None:
        paid: QuotePaid = delivery.data
        row = await unit.connection.fetchrow(
            "UPDATE quotes SET status = 'paid' WHERE quote_number = $1 AND status = 'sent'"
            " RETURNING csn, lines::text AS lines",
            paid.quote_number,
        )
        if row is None:
            return  # renewed already, or a quote renewal never heard of (it can't renew it)
        lines = json.loads(row["lines"])
        held = await load_subscriptions(
            unit.connection, [line["subscription_id"] for line in lines], for_update=True
        )
        # The quote's term and seats are what this renewal buys (QUO-8, TERM-1, SEAT-2).
        current = {
            line["subscription_id"]: replace(
                held[line["subscription_id"]], next_term=line["term"], next_seats=line["seats"]
            )
            for line in lines
            if line["subscription_id"] in held
        }
        order = {
            "order_id": paid.order_id,
            "request_id": None,
            "csn": row["csn"],
            "subscription_ids": list(current),
            "purpose": "renewal",
            "detail": {"quote_number": paid.quote_number},
        }
        settlement = Settlement(unit, clock, source)
        changed: dict = {}
        settlement.renew(order, delivery, current, changed)
        await settlement.save(changed)

    async def nothing_to_do(unit: UnitOfWork, delivery: Delivery) -> None:
        """The other quote events change nothing renewal holds."""

    handlers: dict[type, EventHandler] = dict.fromkeys(
        QUOTE_EVENTS_REGISTRY.models.values(), nothing_to_do
    )
    handlers.update({QuoteSent: remember, QuotePaid: renew})
    return dispatch_by_type(handlers)
