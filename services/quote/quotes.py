"""`quote.commands` → quotes (QUO-1..8): requested, accepted and paid, cancelled, expired.

A request is decided by the eligibility package; a bulk selection is grouped by CSN, currency and
purchase method and becomes one quote per group (QUO-2), each with a number unique for ever
(`Q-<year>-<sequence>`), lines, the promotions that applied by themselves (QUO-6), a total, an
expiry date from the policy and its recipients (the buyer and up to the policy's limit more).
Accepting a quote (the buyer, before it expires) asks renewal for one order for its total
(`quote.orders`): renewal owns every subscription's terms, reserves the ones the quote buys and
asks billing, or refuses (`quote.order_answers`, answered `quote.rejected`: RENEWAL_IN_PROGRESS,
ALREADY_RENEWED, EXPIRED). Billing's `payment.succeeded` makes it paid (`quote.paid`), and
renewal renews its subscriptions with the quote's terms and seats. Only partners and sales
cancel quotes, and never once accepted (QUO-5, QUOTE_ALREADY_ACCEPTED).
A refusal is `quote.rejected` with every reason. An unknown quote number is refused
`NOT_AUTHORIZED` (the contract has no reason of its own for it, and saying nothing more does not
tell a caller which numbers exist); a cancelled one is refused `QUOTE_EXPIRED`.
Who sent a command is proven by its signature (issue 16, shared/messaging/identity.py): a quote
or a subscription that is not the sender's to act on is refused NOT_AUTHORIZED and nothing more,
a quote of another CSN than the command's is never locked, and request ids are scoped to the
sender and its CSN.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from services.quote.directory import subscriptions
from shared import eligibility
from shared.catalog.store import load_catalog
from shared.clock import Clock
from shared.contracts.billing_events import OrderLine, PaymentFailed, PaymentSucceeded
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
    QuoteOrderRefused,
    QuoteOrderReleased,
    QuoteOrderRequested,
    TermStart,
)
from shared.contracts.subscription_events import SubscriptionUpserted
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


class QuoteHandlers:
    def __init__(self, clock: Clock, policy: Policy, source: str) -> None:
        self.clock = clock
        self.csn_clock = CsnClock(clock)
        self.policy = policy
        self.source = source

    def commands(self) -> dict[type, EventHandler]:
        return {RequestQuote: self.request, AcceptQuote: self.accept, CancelQuote: self.cancel}

    def billing(self) -> dict[type, EventHandler | BatchEventHandler]:
        """Only the payment outcomes: billing's other events are skipped unread (issue 19)."""
        outcomes = handles_batch(self.payment_outcomes)
        return {PaymentSucceeded: outcomes, PaymentFailed: outcomes}

    def order_answers(self) -> dict[type, EventHandler]:
        return {QuoteOrderRefused: self.order_refused, QuoteOrderReleased: self.order_released}

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
        self, unit: UnitOfWork, command: Any, csn: str, reasons: Sequence[str], **about: Any
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

        def refuse(unit: UnitOfWork, delivery: Delivery) -> None:
            command = delivery.data  # counted by `identified` already, with why
            answer = QuoteRejected(
                request_id=command.request_id,
                reasons=["NOT_AUTHORIZED"],
                quote_number=getattr(command, "quote_number", None),
            )
            self._announce(unit, answer, delivery.event.subject)

        return refuse

    async def request(self, unit: UnitOfWork, delivery: Delivery) -> None:
        command: RequestQuote = delivery.data
        csn = delivery.event.subject
        if not await first_time(unit.connection, request_key(delivery), delivery.event.type):
            return
        held = await subscriptions(unit.connection, command.subscription_ids)
        actor = eligibility.Actor(user_id=command.actor.user_id, csn=command.actor.csn)
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
        known = [sid for sid in dict.fromkeys(command.subscription_ids) if sid in held]
        if len(known) < len(set(command.subscription_ids)) or not known:
            groups = [list(command.subscription_ids)]  # the refusal names the unknown ones
        else:  # QUO-2: one quote per CSN, currency and purchase method
            domains = [held[sid][1] for sid in known]
            groups = [list(g.subscription_ids) for g in eligibility.group_subscriptions(domains)]
        for group in groups:
            request = _quote_request(command, group)
            decision = self._decide(command, request, held, prices, promotions, today, sender)
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
        command: RequestQuote,
        request: QuoteRequest,
        held: dict[str, Any],
        prices: list[Price],
        promotions: list[Promotion],
        today: date,
        sender: Sender | None,
    ) -> Decision:
        return eligibility.decide_quote(
            eligibility.Actor(user_id=command.actor.user_id, csn=command.actor.csn),
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
        held: dict[str, Any],
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
        first: SubscriptionUpserted = held[group[0]][0]
        lines = [
            {
                "subscription_id": line.subscription_id,
                "product_code": line.product_code,
                "term": line.term,
                "seats": line.seats,
                "unit_price": str(line.unit_price),
                "discount": str(line.discount),
                "amount": str(line.amount),
            }
            for line in decision.preview.lines
        ]
        (totals,) = decision.preview.totals  # one currency per quote (QUO-3)
        total = totals.total
        promotions = {
            line.promotion_code: line.percent_off
            for line in decision.preview.lines
            if line.promotion_code and line.percent_off is not None
        }
        # The buyer (ROLE-3) and the recipients the request named (QUO-2).
        to = list(dict.fromkeys([eligibility.email_recipient(first).email, *recipients]))
        sequence = await unit.connection.fetchval("SELECT nextval('quote_number_seq')")
        quote_number = f"Q-{today.year}-{sequence:06d}"
        await unit.connection.execute(
            """INSERT INTO quotes (quote_number, request_id, csn, partner_csn, channel, kind,
                                   subscription_ids, recipients, currency, total, lines,
                                   expires_on, created_at, term_starts, target_date)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb, $12, $13,
                       $14::jsonb, $15)""",
            quote_number,
            request_id,
            first.csn,
            first.partner_csn,
            channel,
            kind,
            group,
            to,
            first.currency,
            total,
            json.dumps(lines),
            decision.preview.expires_on,
            self.clock.now(),
            # Where the term each line buys starts (LIFE-4), fixed now.
            json.dumps({sid: _term_start(held[sid][1]).isoformat() for sid in group}),
            target_date,
        )
        self._announce(
            unit,
            QuoteSent(
                request_id=request_id,
                quote_number=quote_number,
                kind=kind,
                target_date=target_date,
                subscription_ids=group,
                expires_on=decision.preview.expires_on,
                currency=first.currency,
                total=total,
                lines=lines,
                recipients=to,
                promotions=[
                    AppliedPromotion(promotion_code=code, percent_off=percent)
                    for code, percent in promotions.items()
                ],
            ),
            first.csn,
        )
        return quote_number

    # quote.accepted --------------------------------------------------------------------------

    async def accept(self, unit: UnitOfWork, delivery: Delivery) -> None:
        command: AcceptQuote = delivery.data
        csn = delivery.event.subject
        if not await first_time(unit.connection, request_key(delivery), delivery.event.type):
            return
        quote = await self._quote(unit, command.quote_number, csn)
        if quote is None:
            self._reject(unit, command, csn, ["NOT_AUTHORIZED"], quote_number=command.quote_number)
            return
        held = await subscriptions(unit.connection, quote["subscription_ids"])
        buyer = held[quote["subscription_ids"][0]][0].buyer
        sender = sender_of(delivery)
        today = await self._today(unit, quote["csn"])
        # ROLE-1: the buyer accepts and pays; anyone else learns nothing of the quote.
        decision = eligibility.decide_accept_quote(
            eligibility.Actor(user_id=command.actor.user_id, csn=command.actor.csn),
            _domain(quote),
            buyer=eligibility.Person(user_id=buyer.user_id),
            channel=sender.channel if sender is not None else "self_service",
            today=today,
            sender=sender,
            subscriptions=[held[sid][1] for sid in quote["subscription_ids"] if sid in held],
        )
        if eligibility.Reason.NOT_AUTHORIZED in decision.reasons:
            self._reject(
                unit, command, quote["csn"], decision.reasons, quote_number=command.quote_number
            )
            return
        if quote["status"] in ("accepted", "paid"):
            return  # accepting it again has no further effect: one order, one charge
        if not decision.allowed:
            self._reject(
                unit, command, quote["csn"], decision.reasons, quote_number=command.quote_number
            )
            return
        first: SubscriptionUpserted = held[quote["subscription_ids"][0]][0]
        order_id = str(
            uuid.uuid5(QUOTE_ORDER_NAMESPACE, f"{command.quote_number}|{command.request_id}")
        )
        lines = json.loads(quote["lines"])
        starts = json.loads(quote["term_starts"] or "{}")
        order = QuoteOrderRequested(
            request_id=command.request_id,
            quote_number=command.quote_number,
            kind=quote["kind"],
            term_starts=[
                TermStart(
                    subscription_id=sid,
                    term_start=starts.get(sid) or _term_start(held[sid][1]).isoformat(),
                )
                for sid in quote["subscription_ids"]
                if sid in held
            ],
            order_id=order_id,
            csn=quote["csn"],
            currency=quote["currency"],
            purchase_method=first.purchase_method,
            payment_method=first.payment_method,  # every subscription's (MAN-2, decided above)
            lines=[
                OrderLine(
                    subscription_id=line["subscription_id"],
                    product_code=line["product_code"],
                    product_name=held[line["subscription_id"]][0].product_name,
                    term=line["term"],
                    seats=line["seats"],
                    unit_price=Decimal(line["unit_price"]),
                    amount=Decimal(line["amount"]),
                )
                for line in lines
            ],
            total=quote["total"],
            target_date=quote["target_date"],
        )
        await unit.connection.execute(
            "UPDATE quotes SET status = 'accepted', order_id = $2 WHERE quote_number = $1",
            command.quote_number,
            order_id,
        )
        # Renewal reserves the terms before billing charges anything (issue 14).
        unit.outbox.add(
            QUOTE_ORDERS,
            new_event(order, subject=quote["csn"], source=self.source, time=self.clock.now()),
        )

    async def _quote(self, unit: UnitOfWork, quote_number: str, csn: str) -> Any:
        """The quote, locked, when it is of the CSN the command is about; None otherwise (issue
        16: another customer's quote is never locked, and is refused as an unknown one is)."""
        return await unit.connection.fetchrow(
            "SELECT quote_number, csn, partner_csn, subscription_ids, currency, total,"
            " lines::text AS lines, expires_on, status, order_id, kind,"
            " term_starts::text AS term_starts, target_date FROM quotes"
            " WHERE quote_number = $1 AND csn = $2 FOR UPDATE",
            quote_number,
            csn,
        )

    # billing's answers -----------------------------------------------------------------------

    async def payment_outcomes(self, unit: UnitOfWork, deliveries: list[Delivery]) -> None:
        """`payment.succeeded` makes the quote of its order paid (`quote.paid`); `payment.failed`
        opens it again, to be accepted (and paid) again until it expires. Most payments are of
        renewal's orders, not a quote's: one statement per outcome and batch, not per event,
        finds the few that are (issue 19 items 3 and 4).

        Set-based and the same as one by one in order: the first outcome of an order decides,
        as it leaves its quote no longer `accepted` with that order (paid; or open, without
        it), so a later outcome of the same order changes nothing either way."""
        first: dict[str, Delivery] = {}
        for delivery in deliveries:
            first.setdefault(delivery.data.order_id, delivery)
        paid = [o for o, d in first.items() if isinstance(d.data, PaymentSucceeded)]
        failed = [o for o, d in first.items() if isinstance(d.data, PaymentFailed)]
        if paid:
            rows = await unit.connection.fetch(
                "UPDATE quotes SET status = 'paid' WHERE order_id = ANY($1::text[])"
                " AND status = 'accepted' RETURNING quote_number, csn, order_id",
                paid,
            )
            position = {order_id: i for i, order_id in enumerate(paid)}
            for row in sorted(rows, key=lambda r: position[r["order_id"]]):
                self._announce(
                    unit,
                    QuotePaid(quote_number=row["quote_number"], order_id=row["order_id"]),
                    row["csn"],
                    cause=first[row["order_id"]].event,
                )
        if failed:
            await unit.connection.execute(
                "UPDATE quotes SET status = 'sent', order_id = NULL"
                " WHERE order_id = ANY($1::text[]) AND status = 'accepted'",
                failed,
            )

    async def order_refused(self, unit: UnitOfWork, delivery: Delivery) -> None:
        """Renewal placed no order (the term is being bought or was bought, or expired): the
        buyer is told why, and the quote is open again until it expires."""
        refused: QuoteOrderRefused = delivery.data
        row = await unit.connection.fetchrow(
            "UPDATE quotes SET status = 'sent', order_id = NULL"
            " WHERE quote_number = $1 AND order_id = $2 AND status = 'accepted' RETURNING csn",
            refused.quote_number,
            refused.order_id,
        )
        if row is not None:
            self._announce(
                unit,
                QuoteRejected(
                    request_id=refused.request_id,
                    reasons=list(refused.reasons),
                    quote_number=refused.quote_number,
                ),
                row["csn"],
            )

    async def order_released(self, unit: UnitOfWork, delivery: Delivery) -> None:
        """Not paid by its `pay_by`: the quote is open again (cancellable, and it expires)."""
        released: QuoteOrderReleased = delivery.data
        await unit.connection.execute(
            "UPDATE quotes SET status = 'sent', order_id = NULL"
            " WHERE quote_number = $1 AND order_id = $2 AND status = 'accepted'",
            released.quote_number,
            released.order_id,
        )

    # quote.cancel_requested ------------------------------------------------------------------

    async def cancel(self, unit: UnitOfWork, delivery: Delivery) -> None:
        command: CancelQuote = delivery.data
        csn = delivery.event.subject
        if not await first_time(unit.connection, request_key(delivery), delivery.event.type):
            return
        quote = await self._quote(unit, command.quote_number, csn)
        if quote is None:
            self._reject(unit, command, csn, ["NOT_AUTHORIZED"], quote_number=command.quote_number)
            return
        today = await self._today(unit, quote["csn"])
        decision = eligibility.decide_cancel_quote(
            eligibility.Actor(user_id=command.actor.user_id, csn=command.actor.csn),
            _domain(quote),
            channel=command.channel,
            today=today,
            sender=sender_of(delivery),
        )
        if not decision.allowed:
            self._reject(
                unit, command, quote["csn"], decision.reasons, quote_number=command.quote_number
            )
            return
        await unit.connection.execute(
            "UPDATE quotes SET status = 'cancelled' WHERE quote_number = $1", command.quote_number
        )
        self._announce(
            unit,
            QuoteCancelled(request_id=command.request_id, quote_number=command.quote_number),
            quote["csn"],
        )


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


def _domain(quote: Any) -> eligibility.Quote:
    """The eligibility package's view of a stored quote."""
    return eligibility.Quote(
        quote_number=quote["quote_number"],
        csn=quote["csn"],
        expires_on=quote["expires_on"],
        partner_csn=quote["partner_csn"],
        accepted=quote["status"] in ("accepted", "paid"),
        closed=quote["status"] in ("expired", "cancelled"),
    )
