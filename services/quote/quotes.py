"""`quote.commands` → quotes (QUO-1..8): requested, accepted and paid, cancelled, expired.

A request is decided by the eligibility package; a bulk selection is grouped by CSN, currency and
purchase method and becomes one quote per group (QUO-2), each with a number unique for ever
(`Q-<year>-<sequence>`), lines, the promotions that applied by themselves (QUO-6), a total, an
expiry date from the policy and its recipients (the buyer and up to the policy's limit more).
Accepting a quote (the buyer, before it expires) asks renewal for one order for its total
(`quote.orders`): renewal owns every subscription's terms, reserves the ones the quote buys and
asks billing, or refuses (`quote.order_answers`, answered `quote.rejected`: RENEWAL_IN_PROGRESS,
ALREADY_RENEWED, EXPIRED). Renewal settles billing's payment, renewing the subscriptions with the
quote's terms and seats, and answers it on the same topic (`quote_order.paid`, made `quote.paid`;
`quote_order.payment_failed`; `quote_order.refunded` when the money bought nothing and went
back, answered `quote.rejected` as a refusal is): quote reads no `billing.events` (issue 19).
Only partners and sales cancel quotes, and never once accepted (QUO-5, QUOTE_ALREADY_ACCEPTED).
A refusal is `quote.rejected` with every reason. An unknown quote number is refused
`NOT_AUTHORIZED` (the contract has no reason of its own for it, and saying nothing more does not
tell a caller which numbers exist); a cancelled one is refused `QUOTE_EXPIRED`.
Who sent a command is proven by its signature (issue 16, shared/messaging/identity.py): a quote
or a subscription that is not the sender's to act on is refused NOT_AUTHORIZED and nothing more,
a quote of another CSN than the command's is never locked, and request ids are scoped to the
sender and its CSN.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date
from typing import Any

from services.quote import store
from services.quote.directory import Held, subscriptions
from services.quote.store import StoredQuote
from shared import eligibility
from shared.catalog.store import load_catalog
from shared.clock import Clock
from shared.contracts.billing_events import OrderLine
from shared.contracts.common import PriceLine
from shared.contracts.envelope import CloudEvent, EventData, new_event
from shared.contracts.quote_commands import AcceptQuote, CancelQuote, QuoteKind, RequestQuote
from shared.contracts.quote_events import TOPIC as QUOTE_EVENTS
from shared.contracts.quote_events import (
    AppliedPromotion,
    QuoteCancelled,
    QuotePaid,
    QuoteRejected,
    QuoteSent,
)
from shared.contracts.quote_orders import TOPIC as QUOTE_ORDERS
from shared.contracts.quote_orders import (
    QuoteOrderPaid,
    QuoteOrderPaymentFailed,
    QuoteOrderRefunded,
    QuoteOrderRefused,
    QuoteOrderReleased,
    QuoteOrderRequested,
    TermStart,
)
from shared.eligibility import Decision, Policy, Price, Promotion, QuoteChanges, QuoteRequest
from shared.eligibility.checks import authorization_reasons
from shared.eligibility.identity import Sender
from shared.messaging.consumer import (
    BatchEventHandler,
    Delivery,
    EventHandler,
    UnitOfWork,
    handles_batch,
)
from shared.messaging.identity import (
    Refusal,
    count_not_authorized,
    request_key,
    sender_of,
)
from shared.messaging.requests_seen import first_time
from shared.test_clocks import CsnClock

QUOTE_ORDER_NAMESPACE = uuid.UUID("9e2f4a61-7b3c-4d58-a0e1-5c6d7e8f9a0b")

QuoteCommand = RequestQuote | AcceptQuote | CancelQuote
PaymentAnswer = QuoteOrderPaid | QuoteOrderPaymentFailed


class QuoteHandlers:
    def __init__(self, clock: Clock, policy: Policy, source: str) -> None:
        self.clock = clock
        self.csn_clock = CsnClock(clock)
        self.policy = policy
        self.source = source

    def commands(self) -> dict[type, EventHandler]:
        return {RequestQuote: self.request, AcceptQuote: self.accept, CancelQuote: self.cancel}

    def order_answers(self) -> dict[type, EventHandler | BatchEventHandler]:
        """Renewal's answers to the orders of accepted quotes; the payment outcomes a batch at
        a time, after the refusals and releases of the batch (`dispatch_by_type`)."""
        payments = handles_batch(self.payment_outcomes)
        return {
            QuoteOrderRefused: self.order_refused,
            QuoteOrderRefunded: self.order_refused,  # the same for the quote and its buyer
            QuoteOrderReleased: self.order_released,
            QuoteOrderPaid: payments,
            QuoteOrderPaymentFailed: payments,
        }

    async def _today(self, unit: UnitOfWork, csn: str) -> date:
        return (await self.csn_clock.today_for(unit.connection, [csn]))[csn]

    def _announce(
        self, unit: UnitOfWork, event: EventData, csn: str, cause: CloudEvent[Any] | None = None
    ) -> None:
        unit.outbox.add(
            QUOTE_EVENTS,
            new_event(event, subject=csn, source=self.source, time=self.clock.now(), cause=cause),
        )

    def _reject(
        self,
        unit: UnitOfWork,
        command: QuoteCommand,
        csn: str,
        reasons: Sequence[str],
        **about: Any,
    ) -> None:
        count_not_authorized("quote", reasons)
        self._announce(
            unit,
            QuoteRejected(request_id=command.request_id, reasons=list(reasons), **about),
            csn,
        )

    # quote.requested -------------------------------------------------------------------------

    def refuse(self) -> Refusal:
        """The answer to a command refused for who sent it (issue 16): NOT_AUTHORIZED only."""

        def refuse(unit: UnitOfWork, delivery: Delivery[QuoteCommand]) -> None:
            command = delivery.data  # counted by `identified` already, with why
            answer = QuoteRejected(
                request_id=command.request_id,
                reasons=["NOT_AUTHORIZED"],
                quote_number=getattr(command, "quote_number", None),
            )
            self._announce(unit, answer, delivery.event.subject)

        return refuse

    async def request(self, unit: UnitOfWork, delivery: Delivery[RequestQuote]) -> None:
        command = delivery.data
        csn = delivery.event.subject
        if not await first_time(unit.connection, request_key(delivery), delivery.event.type):
            return
        held = await subscriptions(unit.connection, command.subscription_ids)
        actor = _actor(command)
        sender = sender_of(delivery)
        if any(
            authorization_reasons(
                actor, domain, agent_of_record_may_act=command.channel == "partner", sender=sender
            )
            for _, domain in held.values()
        ):
            # One subscription not the sender's: the whole request, before it is grouped or
            # priced, and nothing more (issue 16 item 3).
            self._reject(unit, command, csn, ["NOT_AUTHORIZED"])
            return
        today = await self._today(unit, csn)
        products = {snapshot.product_code for snapshot, _ in held.values()}
        prices, promotions = await load_catalog(unit.connection, products)
        for group in _groups(command, held):
            request = _quote_request(command, group)
            decision = self._decide(actor, request, held, prices, promotions, today, sender)
            if not decision.allowed:
                self._reject(unit, command, csn, decision.all_reasons, subscription_ids=group)
                continue
            target = None
            if command.kind == "alignment":  # QUO-3: the dates it moves to, said by quote.sent
                target = eligibility.alignment_target(
                    [held[sid][1] for sid in group], request, today
                )
            await self.send(
                unit,
                command.request_id,
                group,
                held,
                decision,
                today,
                channel=command.channel,
                kind=command.kind,
                recipients=command.recipients,
                target_date=target,
            )

    def _decide(
        self,
        actor: eligibility.Actor,
        request: QuoteRequest,
        held: Held,
        prices: list[Price],
        promotions: list[Promotion],
        today: date,
        sender: Sender | None,
    ) -> Decision:
        return eligibility.decide_quote(
            actor,
            [held[sid][1] for sid in request.subscription_ids if sid in held],
            request,
            prices=prices,
            promotions=promotions,
            today=today,
            policy=self.policy,
            sender=sender,
        )

    async def send(
        self,
        unit: UnitOfWork,
        request_id: str | None,
        group: list[str],
        held: Held,
        decision: Decision,
        today: date,
        *,
        channel: str,
        kind: QuoteKind,
        recipients: Sequence[str],
        target_date: date | None = None,
    ) -> str:
        """Record and announce one quote (`quote.sent`, saying its kind and, for an alignment,
        its target: QUO-3); returns its number."""
        assert decision.preview is not None and decision.preview.expires_on is not None
        first = held[group[0]][0]
        (totals,) = decision.preview.totals  # one currency per quote (QUO-3)
        quote = StoredQuote(
            quote_number=await store.next_quote_number(unit.connection, today),
            request_id=request_id,
            csn=first.csn,
            partner_csn=first.partner_csn,
            channel=channel,
            kind=kind,
            subscription_ids=tuple(group),
            # The buyer (ROLE-3) and the recipients the request named (QUO-2).
            recipients=tuple(
                dict.fromkeys([eligibility.email_recipient(first).email, *recipients])
            ),
            currency=first.currency,
            total=totals.total,
            lines=tuple(
                PriceLine.model_validate(line, from_attributes=True)
                for line in decision.preview.lines
            ),
            expires_on=decision.preview.expires_on,
            created_at=self.clock.now(),
            term_starts={sid: _term_start(held[sid][1]) for sid in group},
            target_date=target_date,
        )
        await store.save_quote(unit.connection, quote)
        promotions = {
            line.promotion_code: line.percent_off
            for line in decision.preview.lines
            if line.promotion_code and line.percent_off is not None
        }
        self._announce(
            unit,
            QuoteSent(
                request_id=request_id,
                quote_number=quote.quote_number,
                kind=kind,
                target_date=target_date,
                subscription_ids=group,
                expires_on=quote.expires_on,
                currency=quote.currency,
                total=quote.total,
                lines=list(quote.lines),
                recipients=list(quote.recipients),
                promotions=[
                    AppliedPromotion(promotion_code=code, percent_off=percent)
                    for code, percent in promotions.items()
                ],
            ),
            quote.csn,
        )
        return quote.quote_number

    async def _quote_commanded(
        self, unit: UnitOfWork, delivery: Delivery[AcceptQuote] | Delivery[CancelQuote]
    ) -> StoredQuote | None:
        """The quote a command names, locked, the first time the command comes; None when
        there is nothing more to do: the command came before, or the quote is not of the
        command's CSN (refused NOT_AUTHORIZED, as an unknown number is: issue 16)."""
        command = delivery.data
        csn = delivery.event.subject
        if not await first_time(unit.connection, request_key(delivery), delivery.event.type):
            return None
        quote = await store.locked_quote(unit.connection, command.quote_number, csn)
        if quote is None:
            self._reject(unit, command, csn, ["NOT_AUTHORIZED"], quote_number=command.quote_number)
        return quote

    # quote.accepted --------------------------------------------------------------------------

    async def accept(self, unit: UnitOfWork, delivery: Delivery[AcceptQuote]) -> None:
        command = delivery.data
        quote = await self._quote_commanded(unit, delivery)
        if quote is None:
            return
        held = await subscriptions(unit.connection, quote.subscription_ids)
        buyer = held[quote.subscription_ids[0]][0].buyer
        sender = sender_of(delivery)
        today = await self._today(unit, quote.csn)
        # ROLE-1: the buyer accepts and pays; anyone else learns nothing of the quote.
        decision = eligibility.decide_accept_quote(
            _actor(command),
            _domain(quote),
            buyer=eligibility.Person(user_id=buyer.user_id),
            channel=sender.channel if sender is not None else "self_service",
            today=today,
            sender=sender,
            subscriptions=[held[sid][1] for sid in quote.subscription_ids if sid in held],
        )
        # Anyone but the buyer is refused whether the quote was accepted or not; the buyer
        # accepting it again has no further effect: one order, one charge.
        if quote.accepted and eligibility.Reason.NOT_AUTHORIZED not in decision.reasons:
            return
        if not decision.allowed:
            self._reject(
                unit, command, quote.csn, decision.reasons, quote_number=command.quote_number
            )
            return
        order_id = str(
            uuid.uuid5(QUOTE_ORDER_NAMESPACE, f"{command.quote_number}|{command.request_id}")
        )
        await store.mark_accepted(unit.connection, quote.quote_number, order_id)
        # Renewal reserves the terms before billing charges anything (issue 14).
        unit.outbox.add(
            QUOTE_ORDERS,
            new_event(
                _order(quote, held, command.request_id, order_id),
                subject=quote.csn,
                source=self.source,
                time=self.clock.now(),
            ),
        )

    # renewal's answers -----------------------------------------------------------------------

    async def payment_outcomes(
        self, unit: UnitOfWork, deliveries: list[Delivery[PaymentAnswer]]
    ) -> None:
        """`quote_order.paid` makes the quote of its order paid (`quote.paid`);
        `quote_order.payment_failed` opens it again, to be accepted (and paid) again until it
        expires. Renewal answers only the first payment outcome of each quote's order (its
        claim of the order), so quote hears of no other order's payment (issue 19 item 3);
        one statement per outcome and batch, not per event (item 4).

        Set-based and the same as one by one in order: the first outcome of an order decides,
        as it leaves its quote no longer `accepted` with that order (paid; or open, without
        it), so a later outcome of the same order changes nothing either way; nor does one for
        an order released before (`quote_order.released` opened its quote)."""
        first: dict[str, Delivery[PaymentAnswer]] = {}
        for delivery in deliveries:
            first.setdefault(delivery.data.order_id, delivery)
        paid = [o for o, d in first.items() if isinstance(d.data, QuoteOrderPaid)]
        failed = [o for o, d in first.items() if isinstance(d.data, QuoteOrderPaymentFailed)]
        if paid:
            position = {order_id: i for i, order_id in enumerate(paid)}
            quotes = await store.mark_paid(unit.connection, paid)
            for quote in sorted(quotes, key=lambda q: position[q.order_id]):
                self._announce(
                    unit,
                    QuotePaid(quote_number=quote.quote_number, order_id=quote.order_id),
                    quote.csn,
                    cause=first[quote.order_id].event,
                )
        if failed:
            await store.reopen(unit.connection, failed)

    async def order_refused(
        self, unit: UnitOfWork, delivery: Delivery[QuoteOrderRefused | QuoteOrderRefunded]
    ) -> None:
        """Renewal placed no order (the term is being bought or was bought, or expired), or
        its payment bought nothing and went back, or its subscriptions expired while it waited
        for its money (issue 19): the buyer's acceptance is answered why, and the quote is open
        again until it expires — not paid. A quote no longer accepted with that order (released, accepted
        again) is left as it is, and nothing is said."""
        refused = delivery.data
        reopened = await store.reopen(
            unit.connection, [refused.order_id], quote_number=refused.quote_number
        )
        for csn in reopened:
            self._announce(
                unit,
                QuoteRejected(
                    request_id=refused.request_id,
                    reasons=list(refused.reasons),
                    quote_number=refused.quote_number,
                ),
                csn,
            )

    async def order_released(
        self, unit: UnitOfWork, delivery: Delivery[QuoteOrderReleased]
    ) -> None:
        """Not paid by its `pay_by`: the quote is open again (cancellable, and it expires).
        Renewal now says so with `quote_order.refused` (its acceptance answered too, issue 19);
        this answer of older renewals may still be on the topic."""
        released = delivery.data
        await store.reopen(unit.connection, [released.order_id], quote_number=released.quote_number)

    # quote.cancel_requested ------------------------------------------------------------------

    async def cancel(self, unit: UnitOfWork, delivery: Delivery[CancelQuote]) -> None:
        command = delivery.data
        quote = await self._quote_commanded(unit, delivery)
        if quote is None:
            return
        today = await self._today(unit, quote.csn)
        decision = eligibility.decide_cancel_quote(
            _actor(command),
            _domain(quote),
            channel=command.channel,
            today=today,
            sender=sender_of(delivery),
        )
        if not decision.allowed:
            self._reject(
                unit, command, quote.csn, decision.reasons, quote_number=command.quote_number
            )
            return
        await store.close(unit.connection, [quote.quote_number], "cancelled")
        self._announce(
            unit,
            QuoteCancelled(request_id=command.request_id, quote_number=command.quote_number),
            quote.csn,
        )


def _actor(command: QuoteCommand) -> eligibility.Actor:
    """Who the command says acts, as the eligibility package sees them."""
    return eligibility.Actor(user_id=command.actor.user_id, csn=command.actor.csn)


def _groups(command: RequestQuote, held: Held) -> list[list[str]]:
    """QUO-2: one quote per CSN, currency and purchase method; a request naming a subscription
    not found stays whole, for its refusal to name the unknown ones."""
    known = [sid for sid in dict.fromkeys(command.subscription_ids) if sid in held]
    if len(known) < len(set(command.subscription_ids)) or not known:
        return [list(command.subscription_ids)]
    domains = [held[sid][1] for sid in known]
    return [list(group.subscription_ids) for group in eligibility.group_subscriptions(domains)]


def _quote_request(command: RequestQuote, group: list[str]) -> QuoteRequest:
    """The eligibility package's view of `quote.requested`, for one group of it (QUO-2)."""
    changes = command.changes.model_dump(exclude_none=True) if command.changes else {}
    return QuoteRequest(
        channel=command.channel,
        kind=command.kind,
        subscription_ids=tuple(group),
        recipients=tuple(command.recipients),
        changes=QuoteChanges(**changes),
    )


def _term_start(subscription: eligibility.Subscription) -> date:
    """LIFE-4: the term a quote buys starts at the renewal date it was quoted on."""
    starts_on, _ = eligibility.renewed_term(subscription)
    return starts_on


def _order(quote: StoredQuote, held: Held, request_id: str, order_id: str) -> QuoteOrderRequested:
    """The order an accepted quote asks renewal for: its lines, total and terms as quoted; the
    purchase and payment method every subscription of it shares (MAN-2, decided before)."""
    first = held[quote.subscription_ids[0]][0]
    return QuoteOrderRequested(
        request_id=request_id,
        quote_number=quote.quote_number,
        kind=quote.kind,
        term_starts=[
            TermStart(
                subscription_id=sid,
                term_start=quote.term_starts.get(sid) or _term_start(held[sid][1]),
            )
            for sid in quote.subscription_ids
            if sid in held
        ],
        order_id=order_id,
        csn=quote.csn,
        currency=quote.currency,
        purchase_method=first.purchase_method,
        payment_method=first.payment_method,
        lines=[
            OrderLine(
                subscription_id=line.subscription_id,
                product_code=line.product_code,
                product_name=held[line.subscription_id][0].product_name,
                term=line.term,
                seats=line.seats,
                unit_price=line.unit_price,
                amount=line.amount,
            )
            for line in quote.lines
        ],
        total=quote.total,
        target_date=quote.target_date,
    )


def _domain(quote: StoredQuote) -> eligibility.Quote:
    """The eligibility package's view of a stored quote."""
    return eligibility.Quote(
        quote_number=quote.quote_number,
        csn=quote.csn,
        expires_on=quote.expires_on,
        partner_csn=quote.partner_csn,
        accepted=quote.accepted,
        closed=quote.closed,
    )
