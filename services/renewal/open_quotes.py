"""`quote.events` → renewal: the quotes renewal must know of while they are open (AUTO-5).

A paid quote's subscriptions are renewed by its order (placed through renewal, which reserved
their terms first: services/renewal/quote_orders.py), when billing says it is paid.

AUTO-5: while a renewal quote that changes a subscription (its term or seats) is open, that
subscription's auto-renew is off (`auto_renew.changed`, reason AUTO-5, and the buyer is told),
and back on once the quote is paid, expired or cancelled. The due-date engine never renews
automatically a subscription an open quote covers (services/renewal/due_date_engine.py).

A consumer batch is handled in a few statements whatever its size (#19: a busy day's automatic
quotes locked and stored one event at a time took 0.9-1.7 s a batch): the subscriptions its
quotes name are locked and read in one, the quotes it names in one; the events are then decided
in order in memory, as one by one — a switch by one quote is what the next one sees — and the
outcome written in one statement per kind of write.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

from services.renewal.store import KeptQuote, keep_quotes, kept_quotes
from services.renewal.subscriptions import (
    Subscription,
    load_subscriptions,
    record_history,
    to_domain,
)
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
    UnitOfWork,
    dispatch_some,
    handles_batch,
)

Closing = QuotePaid | QuoteExpired | QuoteCancelled
# What a closing event makes of an open quote.
CLOSED_AS: dict[type, Literal["paid", "closed"]] = {
    QuotePaid: "paid",
    QuoteExpired: "closed",
    QuoteCancelled: "closed",
}


@dataclass
class _Batch:
    """The batch's quotes and subscriptions as the events so far left them, and what to write."""

    held: dict[str, Subscription]
    quotes: dict[str, KeptQuote]
    new: dict[str, KeptQuote] = field(default_factory=dict)
    moved: dict[str, KeptQuote] = field(default_factory=dict)
    auto_renew: dict[str, bool] = field(default_factory=dict)  # switched: the last value
    switches: list[tuple[Delivery[Any], str, bool]] = field(default_factory=list)

    def sent(self, delivery: Delivery[QuoteSent]) -> None:
        """AUTO-5: a renewal quote kept while open; auto-renew off where it changes what the
        renewal buys and was on (as the events before it in the batch left it)."""
        sent = delivery.data
        if sent.kind != "renewal" or sent.quote_number in self.quotes:
            return  # an alignment or a new purchase holds nothing; a quote seen is kept once
        changing = [
            line.subscription_id
            for line in sent.lines
            if line.subscription_id in self.held
            and quote_suspends_auto_renew(
                to_domain(self._as_now(line.subscription_id)), [(line.term, line.seats)]
            )
        ]
        quote = KeptQuote(
            sent.quote_number,
            delivery.event.subject,
            [line.model_dump(mode="json") for line in sent.lines],
            "sent",
            changing,
        )
        self.quotes[sent.quote_number] = self.new[sent.quote_number] = quote
        self._switch(delivery, changing, enabled=False)

    def closed(self, delivery: Delivery[Closing]) -> None:
        """The quote is no longer open: auto-renew back on where AUTO-5 switched it off. A paid
        quote's order renewed its subscriptions when billing said it was paid
        (services/renewal/settlement.py, purpose `quote`)."""
        quote = self.quotes.get(delivery.data.quote_number)
        if quote is None or quote.status != "sent":
            return
        quote.status = CLOSED_AS[type(delivery.data)]
        if quote.quote_number not in self.new:
            self.moved[quote.quote_number] = quote
        self._switch(delivery, quote.auto_renew_suspended, enabled=True)

    def _as_now(self, subscription_id: str) -> Subscription:
        held = self.held[subscription_id]
        switched = self.auto_renew.get(subscription_id, held.auto_renew)
        return held if switched == held.auto_renew else replace(held, auto_renew=switched)

    def _switch(self, delivery: Delivery[Any], ids: list[str], *, enabled: bool) -> None:
        for sid in ids:
            self.auto_renew[sid] = enabled
            self.switches.append((delivery, sid, enabled))


def quote_events_handler(clock: Clock, source: str) -> BatchHandler:
    async def follow_quotes(unit: UnitOfWork, deliveries: list[Delivery[Any]]) -> None:
        sent_ids = [
            line.subscription_id
            for delivery in deliveries
            if isinstance(delivery.data, QuoteSent) and delivery.data.kind == "renewal"
            for line in delivery.data.lines
        ]
        held = (
            await load_subscriptions(unit.connection, sent_ids, for_update=True) if sent_ids else {}
        )
        batch = _Batch(
            held, await kept_quotes(unit.connection, (d.data.quote_number for d in deliveries))
        )
        for delivery in deliveries:
            if isinstance(delivery.data, QuoteSent):
                batch.sent(delivery)
            else:
                batch.closed(delivery)
        await keep_quotes(unit.connection, list(batch.new.values()), list(batch.moved.values()))
        await _write_switches(unit, batch)

    async def _write_switches(unit: UnitOfWork, batch: _Batch) -> None:
        """Each switch's history row and `auto_renew.changed`, in order; each subscription's
        auto-renew as the last switch left it, in one statement."""
        if not batch.switches:
            return
        ids = sorted(batch.auto_renew)
        await unit.connection.execute(
            "UPDATE subscriptions AS s SET auto_renew = u.enabled, updated_at = now()"
            " FROM unnest($1::text[], $2::boolean[]) AS u(subscription_id, enabled)"
            " WHERE s.subscription_id = u.subscription_id",
            ids,
            [batch.auto_renew[sid] for sid in ids],
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
                for delivery, sid, enabled in batch.switches
            ],
        )
        for delivery, sid, enabled in batch.switches:
            changed = AutoRenewChanged(
                request_id=None, subscription_id=sid, enabled=enabled, reason="AUTO-5"
            )
            unit.outbox.add(
                RENEWAL_EVENTS,
                new_event(changed, subject=delivery.event.subject, source=source, time=now),
            )

    handler = handles_batch(follow_quotes)
    return dispatch_some(
        QUOTE_EVENTS_REGISTRY,
        {QuoteSent: handler, QuotePaid: handler, QuoteExpired: handler, QuoteCancelled: handler},
    )
