"""`quote.events` → renewal: a paid quote renews each of its subscriptions with the quote's term
and seats, from the current renewal date (LIFE-4), once — whatever how often `quote.paid` comes.

AUTO-5: while a renewal quote that changes a subscription (its term or seats) is open, that
subscription's auto-renew is off (`auto_renew.changed`, reason AUTO-5, and the buyer is told),
and back on once the quote is paid, expired or cancelled. The due-date engine never renews
automatically a subscription an open quote covers (services/renewal/engine.py).
"""

from __future__ import annotations

import json
from dataclasses import replace

from services.renewal.payments import Settlement
from services.renewal.subscriptions import load_subscriptions, record_history
from shared.clock import Clock
from shared.contracts.envelope import new_event
from shared.contracts.quote_events import REGISTRY as QUOTE_EVENTS_REGISTRY
from shared.contracts.quote_events import QuoteCancelled, QuoteExpired, QuotePaid, QuoteSent
from shared.contracts.renewal_events import TOPIC as RENEWAL_EVENTS
from shared.contracts.renewal_events import AutoRenewChanged
from shared.messaging.consumer import (
    BatchHandler,
    Delivery,
    UnitOfWork,
    dispatch_some,
)


def quote_events_handler(clock: Clock, source: str) -> BatchHandler:
    async def remember(unit: UnitOfWork, delivery: Delivery) -> None:
        sent: QuoteSent = delivery.data
        held = await load_subscriptions(
            unit.connection, [line.subscription_id for line in sent.lines], for_update=True
        )
        changing = [
            line.subscription_id
            for line in sent.lines
            if line.subscription_id in held
            and held[line.subscription_id].auto_renew
            and (line.term, line.seats)
            != (held[line.subscription_id].renewal_term, held[line.subscription_id].renewal_seats)
        ]
        recorded = await unit.connection.fetchval(
            "INSERT INTO quotes (quote_number, csn, lines, auto_renew_suspended)"
            " VALUES ($1, $2, $3::jsonb, $4) ON CONFLICT (quote_number) DO NOTHING RETURNING true",
            sent.quote_number,
            delivery.event.subject,
            json.dumps([line.model_dump(mode="json") for line in sent.lines]),
            changing,
        )
        if recorded and changing:
            await _switch(unit, delivery, changing, enabled=False)

    async def _switch(
        unit: UnitOfWork, delivery: Delivery, ids: list[str], *, enabled: bool
    ) -> None:
        await unit.connection.execute(
            "UPDATE subscriptions SET auto_renew = $2, updated_at = now()"
            " WHERE subscription_id = ANY($1::text[])",
            ids,
            enabled,
        )
        now = clock.now()
        await record_history(
            unit.connection,
            [
                (
                    sid,
                    now,
                    "auto_renew_on" if enabled else "auto_renew_off",
                    {"enabled": enabled, "reason": "AUTO-5"},
                    None,
                    None,
                    delivery.event.id,
                )
                for sid in ids
            ],
        )
        for sid in ids:
            changed = AutoRenewChanged(
                request_id=None, subscription_id=sid, enabled=enabled, reason="AUTO-5"
            )
            unit.outbox.add(
                RENEWAL_EVENTS,
                new_event(changed, subject=delivery.event.subject, source=source, time=now),
            )

    async def close(unit: UnitOfWork, delivery: Delivery) -> None:
        """An expired or cancelled quote: auto-renew back on where AUTO-5 switched it off."""
        row = await unit.connection.fetchrow(
            "UPDATE quotes SET status = 'closed' WHERE quote_number = $1 AND status = 'sent'"
            " RETURNING auto_renew_suspended",
            delivery.data.quote_number,
        )
        if row is not None and row["auto_renew_suspended"]:
            await _switch(unit, delivery, list(row["auto_renew_suspended"]), enabled=True)

    async def renew(unit: UnitOfWork, delivery: Delivery) -> None:
        paid: QuotePaid = delivery.data
        row = await unit.connection.fetchrow(
            "UPDATE quotes SET status = 'paid' WHERE quote_number = $1 AND status = 'sent'"
            " RETURNING csn, lines::text AS lines, auto_renew_suspended",
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
        if row["auto_renew_suspended"]:  # AUTO-5: the quote is paid, auto-renew comes back
            await _switch(unit, delivery, list(row["auto_renew_suspended"]), enabled=True)

    return dispatch_some(
        QUOTE_EVENTS_REGISTRY,
        {QuoteSent: remember, QuotePaid: renew, QuoteExpired: close, QuoteCancelled: close},
    )
