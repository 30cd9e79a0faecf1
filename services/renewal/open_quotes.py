"""`quote.events` → renewal: the quotes renewal must know of while they are open (AUTO-5).

A paid quote's subscriptions are renewed by its order (placed through renewal, which reserved
their terms first: services/renewal/quote_orders.py), when billing says it is paid.

AUTO-5: while a renewal quote that changes a subscription (its term or seats) is open, that
subscription's auto-renew is off (`auto_renew.changed`, reason AUTO-5, and the buyer is told),
and back on once the quote is paid, expired or cancelled. The due-date engine never renews
automatically a subscription an open quote covers (services/renewal/due_date_engine.py).
"""

from __future__ import annotations

from typing import Any, Literal

from services.renewal.store import close_quote, remember_quote
from services.renewal.subscriptions import load_subscriptions, record_history, to_domain
from shared.clock import Clock
from shared.contracts.envelope import new_event
from shared.contracts.quote_events import REGISTRY as QUOTE_EVENTS_REGISTRY
from shared.contracts.quote_events import QuoteCancelled, QuoteExpired, QuotePaid, QuoteSent
from shared.contracts.renewal_events import TOPIC as RENEWAL_EVENTS
from shared.contracts.renewal_events import AutoRenewChanged
from shared.eligibility import quote_suspends_auto_renew
from shared.messaging.consumer import (
    BatchHandler,
    Delivery,
    EventHandler,
    UnitOfWork,
    dispatch_some,
)


def quote_events_handler(clock: Clock, source: str) -> BatchHandler:
    async def remember(unit: UnitOfWork, delivery: Delivery[QuoteSent]) -> None:
        sent = delivery.data
        if sent.kind != "renewal":
            return  # AUTO-5 is a renewal quote's: an alignment or a new purchase holds nothing
        held = await load_subscriptions(
            unit.connection, [line.subscription_id for line in sent.lines], for_update=True
        )
        changing = [
            line.subscription_id
            for line in sent.lines
            if line.subscription_id in held
            and quote_suspends_auto_renew(
                to_domain(held[line.subscription_id]), [(line.term, line.seats)]
            )
        ]
        recorded = await remember_quote(
            unit.connection,
            sent.quote_number,
            delivery.event.subject,
            [line.model_dump(mode="json") for line in sent.lines],
            changing,
        )
        if recorded and changing:
            await _switch(unit, delivery, changing, enabled=False)

    async def _switch(
        unit: UnitOfWork, delivery: Delivery[Any], ids: list[str], *, enabled: bool
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

    def closing(status: Literal["paid", "closed"]) -> EventHandler:
        async def close(
            unit: UnitOfWork, delivery: Delivery[QuotePaid | QuoteExpired | QuoteCancelled]
        ) -> None:
            """The quote is no longer open: auto-renew back on where AUTO-5 switched it off.
            A paid quote's order renewed its subscriptions when billing said it was paid
            (services/renewal/settlement.py, purpose `quote`)."""
            suspended = await close_quote(unit.connection, delivery.data.quote_number, status)
            if suspended:
                await _switch(unit, delivery, suspended, enabled=True)

        return close

    closed = closing("closed")  # expired or cancelled
    return dispatch_some(
        QUOTE_EVENTS_REGISTRY,
        {
            QuoteSent: remember,
            QuotePaid: closing("paid"),
            QuoteExpired: closed,
            QuoteCancelled: closed,
        },
    )
