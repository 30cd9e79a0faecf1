"""`billing.events` → renewal: what a paid order does, and what a failed one answers.

Billing's answer releases the order's term reservations (services/renewal/reservations.py). A
paid order, by its purpose:
- `renewal` (and a `renewal` quote, with the quote's term and seats): each subscription renews
  from its current renewal date, early or in grace (LIFE-4, MAN-4), by one term of what the
  next renewal buys (TERM-1, SEAT-2), and `subscription.renewed` is announced — when the term
  can still take effect (`eligibility.settle_paid_renewal`): money for an expired subscription
  (LIFE-3, LIFE-5) or for a reservation released meanwhile goes back (billing is asked to
  refund it, `payment.refunded`), the subscription stays as it is, and a manual request hears
  why (`eligibility.refund_refusal`: EXPIRED only when it expired) — unless its order was let
  go before the money came, whose release answered it already (`refund_answers_request`,
  services/renewal/released_orders.py): one answer per command;
- an `alignment` or `new` quote does what its kind says (QUO-3, `eligibility.settle_paid_quote`):
  the renewal dates move to the quote's target, or a new subscription starts on the payment day
  (services/renewal/new_purchases.py); `quote.paid` (the quote service's) is their answer;
- `seats`: the seats are added now (SEAT-1), to a reduced next term too (SEAT-2), and
  `seats.updated` answers the command;
- `alignment`: the renewal dates move to the target (ALIGN-1), answered by `renewal_dates.updated`.
A failed one answers its command with `renewal.rejected` (an automatic renewal's failure is the
due-date engine's to retry). A quote's order, paid or failed, is answered to the quote service
(`quote_order.paid`, `quote_order.payment_failed` on `quote.order_answers`), which makes the
quote paid (`quote.paid`) or opens it again: quote reads no `billing.events` (issue 19 item 3).
A paid quote's order whose every line's money went back is not the quote paid
(`eligibility.quote_took_effect`): `quote_order.refunded`, with why, opens it again.
An order naming a subscription renewal does not hold (renewal never places one, but its row is
data) bought nothing: its money goes back (UNKNOWN_SUBSCRIPTION), its request hears it, and the
rest of the batch settles (issue 19).
Only an order still waiting for billing's answer changes state, and the first answer of the
batch for an order is the one that counts, so an answer seen twice, or an order that isn't
renewal's, changes nothing. The whole batch is settled in a handful
of set-based statements; a subscription changed by two orders of the batch changes twice, from
where the first left it, as one by one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from services.renewal.batches import SettledItem, settle_items
from services.renewal.changes import dates_updated
from services.renewal.new_purchases import NewPurchase, new_subscription_id, start_subscriptions
from services.renewal.reservations import note_pay_by, take_reservations
from services.renewal.state import announced
from services.renewal.store import (
    Order,
    claim_answered,
    look_again,
    save_renewal_terms,
)
from services.renewal.subscriptions import (
    Subscription,
    load_subscriptions,
    record_history,
    to_domain,
)
from shared import eligibility
from shared.clock import Clock
from shared.contracts.billing_commands import TOPIC as BILLING_COMMANDS
from shared.contracts.billing_commands import RefundPayment
from shared.contracts.billing_events import REGISTRY as BILLING_EVENTS_REGISTRY
from shared.contracts.billing_events import (
    PaymentAwaitingManual,
    PaymentFailed,
    PaymentSucceeded,
)
from shared.contracts.envelope import EventData, new_event, trace_of
from shared.contracts.quote_orders import ANSWERS_TOPIC as QUOTE_ORDER_ANSWERS
from shared.contracts.quote_orders import (
    QuoteOrderPaid,
    QuoteOrderPaymentFailed,
    QuoteOrderRefunded,
)
from shared.contracts.renewal_events import TOPIC as RENEWAL_EVENTS
from shared.contracts.renewal_events import RenewalRejected, SeatsUpdated, SubscriptionRenewed
from shared.contracts.topics import Topic
from shared.eligibility import (
    Policy,
    RefundReason,
    email_recipient,
    quote_took_effect,
    refund_answers_request,
    refund_refusal,
    seats_after_addition,
    settle_paid_quote,
    settle_paid_renewal,
)
from shared.eligibility.reasons import in_contract_order
from shared.messaging import tracing
from shared.messaging.consumer import (
    BatchHandler,
    Delivery,
    UnitOfWork,
    dispatch_some,
    handles_batch,
)
from shared.plumbing.committed_counts import count_on_commit
from shared.plumbing.metrics import RENEWALS_RENEWED
from shared.test_clocks import CsnClock

log = logging.getLogger(__name__)

PAYMENT_METHOD_INVALID = "PAYMENT_METHOD_INVALID"

Outcome = Delivery[PaymentSucceeded] | Delivery[PaymentFailed]
Paid = Delivery[PaymentSucceeded]
Current = dict[str, Subscription]  # an order's subscriptions, as the batch left them so far
Lines = dict[str, Subscription | None]  # the same, None for one renewal does not hold
Refunded = dict[str, RefundReason]  # the subscriptions whose money goes back, and why


@dataclass
class Settlement:
    """One batch of billing's answers: parsed (the first answer of each order counts), claimed
    (only orders still waiting change), decided case by case by the eligibility rules and
    announced, then saved with one statement per kind of change."""

    unit: UnitOfWork
    clock: Clock
    source: str
    policy: Policy

    def __post_init__(self) -> None:
        self.now = self.clock.now()
        # What the batch decided, saved together at the end (`save`).
        self.changed: Current = {}
        self.started: list[NewPurchase] = []
        self.history: list[tuple[Any, ...]] = []
        self.settled_items: list[SettledItem] = []
        self.engine_looks_again: list[str] = []
        # What the decisions read, loaded once for the batch (`apply`).
        self.held: Current = {}
        self.reserved: dict[tuple[str, str], date] = {}
        self.today: dict[str, date] = {}

    async def apply(self, deliveries: list[Outcome]) -> None:
        # Parse: the first answer of each order is the one that counts.
        answers: dict[str, Outcome] = {}
        for delivery in deliveries:
            answers.setdefault(delivery.data.order_id, delivery)
        connection = self.unit.connection
        # Claim (services/renewal/store.py): only the orders still waiting take their answer.
        paid = {order_id: isinstance(d.data, PaymentSucceeded) for order_id, d in answers.items()}
        orders = await claim_answered(connection, paid)
        if not orders:
            return
        # Load what the rules decide on, once for the batch.
        ids = {sid for order in orders for sid in order.subscription_ids}
        self.held = await load_subscriptions(connection, ids, for_update=True)
        self.reserved = await take_reservations(connection, [o.order_id for o in orders])
        self.today = await CsnClock(self.clock).today_for(connection, {o.csn for o in orders})
        # Decide and announce, case by case, in the answers' order; then save.
        for order in orders:
            delivery = answers[order.order_id]
            with tracing.within(trace_of(delivery.event)):  # what it causes continues its trace
                if isinstance(delivery.data, PaymentSucceeded):
                    self._paid(order, delivery)
                else:
                    self._failed(order)
        await self.save()

    def _paid(self, order: Order, delivery: Paid) -> None:
        lines = self._lines(order)
        refunded: Refunded = {}
        current = {sid: s for sid, s in lines.items() if s is not None}
        if order.purpose in ("seats", "alignment") and len(current) < len(lines):
            # The change is one for all its subscriptions (ALIGN-1): none of it takes effect.
            self._refund(order, _unknown(lines), whole=True)
        elif order.purpose == "seats":
            self._add_seats(order, delivery, current)
        elif order.purpose == "alignment":
            self._align(order, delivery, current)
        elif order.purpose == "quote" and order.kind != "renewal":
            refunded = self._settle_quote_kind(order, delivery, lines)
        else:
            if order.purpose == "quote":  # QUO-8: the quote's term and seats are bought
                bought = {line.subscription_id: line for line in order.lines}
                lines = {
                    sid: replace(s, next_term=bought[sid].term, next_seats=bought[sid].seats)
                    if s is not None
                    else None
                    for sid, s in lines.items()
                    if sid in bought
                }
            refunded = self.renew(order, delivery, lines)
        if order.purpose == "quote":
            self._answer_paid_quote(order, refunded)

    def _lines(self, order: Order) -> Lines:
        """The order's subscriptions as the batch left them so far; None for one renewal does
        not hold (issue 19), which the rules refund and the log tells an operator of."""
        lines = {sid: self.changed.get(sid, self.held.get(sid)) for sid in order.subscription_ids}
        if unknown := _unknown(lines):
            log.error(
                "paid order names subscriptions renewal does not hold; its money goes back",
                extra={"order_id": order.order_id, "subscription_ids": sorted(unknown)},
            )
        return lines

    # renewal, and a renewal quote --------------------------------------------------------------

    def renew(self, order: Order, delivery: Paid, lines: Lines) -> Refunded:
        """Returns the subscriptions whose money goes back, and why."""
        today = self.today[order.csn]
        refunded: Refunded = {}
        renewed: list[SubscriptionRenewed] = []
        current: Current = {}
        for sid, subscription in lines.items():
            paid = settle_paid_renewal(  # LIFE-3, LIFE-4, LIFE-5
                _domain(subscription),
                self.reserved.get((order.order_id, sid)),
                today,
                self.policy,
            )
            if paid.refund is not None:
                refunded[sid] = paid.refund
                detail: dict[str, Any] = {"order_id": order.order_id, "reason": paid.refund}
                self._record(sid, "payment_refunded", detail, order, delivery)
                continue
            assert subscription is not None and paid.renewal_date is not None
            current[sid] = subscription
            term, seats = subscription.renewal_term, subscription.renewal_seats
            self.changed[sid] = replace(
                subscription,
                renewal_date=paid.renewal_date,
                term=term,
                seats=seats,
                next_term=None,
                next_seats=None,
            )
            detail = {
                "order_id": order.order_id,
                "previous_renewal_date": subscription.renewal_date,
                "renewal_date": paid.renewal_date,
                "term": term,
                "seats": seats,
            }
            self._record(sid, "renewed", detail, order, delivery)
            renewed.append(_renewed(order, subscription, paid.renewal_date, term, seats))
        # Each event also carries what the order's one confirmation shows (MAN-3): the amount
        # billing was paid and how many subscriptions the order renewed, so that notification
        # makes the email from this stream alone (issue 17 item 3).
        payment = delivery.data
        order_fields = {
            "order_total": payment.amount,
            "currency": payment.currency,
            "renewed_in_order": len(renewed),
        }
        for event in renewed:
            self._announce(event.model_copy(update=order_fields), order.csn)
        trigger = "automatic" if order.automatic else "command"
        # Once it commits: a batch that fails is settled again, answer by answer.
        count_on_commit(RENEWALS_RENEWED.labels("renewal", trigger), len(current))
        if refunded:
            self._refund(order, refunded)
        if not order.automatic and order.purpose == "renewal":
            self.settled_items += [SettledItem(order.order_id, "renewed", sid) for sid in current]
        return refunded

    # an alignment or a new-purchase quote ------------------------------------------------------

    def _settle_quote_kind(self, order: Order, delivery: Paid, current: Lines) -> Refunded:
        """QUO-3: a paid alignment quote moves the renewal dates to its target; a paid
        new-purchase quote starts a new subscription on the payment day, for the quoted term
        and seats (services/renewal/new_purchases.py). Money that can no longer buy what the
        quote said goes back (`eligibility.settle_paid_quote`)."""
        lines = {line.subscription_id: line for line in order.lines}
        refunded: Refunded = {}
        for sid, subscription in current.items():
            line = lines.get(sid)
            paid = settle_paid_quote(
                order.kind,
                _domain(subscription if line is not None else None),  # no line: nothing bought
                self.reserved.get((order.order_id, sid)),
                self.today[order.csn],
                self.policy,
                term=line.term if line is not None else None,
                target_date=order.target_date,
            )
            if paid.refund is not None:
                refunded[sid] = paid.refund
                detail: dict[str, Any] = {"order_id": order.order_id, "reason": paid.refund}
                self._record(sid, "payment_refunded", detail, order, delivery)
                continue
            assert subscription is not None and line is not None
            assert paid.starts_on is not None and paid.renewal_date is not None
            if order.kind == "alignment":
                self.changed[sid] = replace(subscription, renewal_date=paid.renewal_date)
                detail = {
                    "order_id": order.order_id,
                    "previous_renewal_date": subscription.renewal_date,
                    "renewal_date": paid.renewal_date,
                }
                self._record(sid, "renewal_date_aligned", detail, order, delivery)
                continue
            purchase = NewPurchase(
                subscription_id=new_subscription_id(order.order_id, sid),
                quoted=subscription,
                start_date=paid.starts_on,
                renewal_date=paid.renewal_date,
                term=line.term,
                seats=line.seats,
            )
            self.started.append(purchase)
            detail = {
                "order_id": order.order_id,
                "quoted_subscription_id": sid,
                "start_date": paid.starts_on,
                "renewal_date": paid.renewal_date,
                "term": purchase.term,
                "seats": purchase.seats,
            }
            self._record(purchase.subscription_id, "new_purchase", detail, order, delivery)
        if refunded:
            self._refund(order, refunded)
        return refunded

    def _refund(self, order: Order, refunded: Refunded, *, whole: bool = False) -> None:
        """The money of subscriptions that could not renew (or of the `whole` order) goes back,
        once (LIFE-3, LIFE-5), and a request is answered for them with the refund's cause
        (`eligibility.refund_refusal`); a quote's order is answered to the quote service."""
        everything = whole or set(refunded) == set(order.subscription_ids)
        command = RefundPayment(
            order_id=order.order_id,
            csn=order.csn,
            subscription_ids=[] if everything else sorted(refunded),
            reason=next(iter(refunded.values())),
        )
        self.unit.outbox.add(
            BILLING_COMMANDS,
            new_event(command, subject=order.csn, source=self.source, time=self.now),
        )
        if order.request_id is None or order.purpose == "quote":
            return  # automatic: nobody asked; a quote's: `_answer_paid_quote`
        for sid, why in refunded.items():
            if not refund_answers_request(why, held=(order.order_id, sid) in self.reserved):
                continue  # let go before the money came: answered then (released_orders.py)
            reasons: list[str] = [refund_refusal(why)]
            self._announce(
                RenewalRejected(request_id=order.request_id, subscription_id=sid, reasons=reasons),
                order.csn,
            )
            if order.purpose == "renewal":  # a manual request's batch item
                self.settled_items.append(SettledItem(order.order_id, "rejected", sid, reasons))

    # seats and alignment -----------------------------------------------------------------------

    def _add_seats(self, order: Order, delivery: Paid, current: Current) -> None:
        [(sid, subscription)] = current.items()
        added, total = order.seats_added, order.total
        assert added is not None and total is not None and order.request_id is not None
        # SEAT-2: added to a reduced next term too, so nothing paid for is lost at renewal.
        seats, next_seats = seats_after_addition(to_domain(subscription), added)
        self.changed[sid] = replace(subscription, seats=seats, next_seats=next_seats)
        self._record(
            sid, "seats_added", {"order_id": order.order_id, "seats_added": added}, order, delivery
        )
        self._announce(
            SeatsUpdated(
                request_id=order.request_id,
                subscription_id=sid,
                seats=seats,
                order_id=order.order_id,
                prorated_total=total,
                currency=subscription.snapshot.currency,
                seats_added=added,
            ),
            order.csn,
        )

    def _align(self, order: Order, delivery: Paid, current: Current) -> None:
        target, total = order.target_date, order.total
        assert target is not None and total is not None and order.request_id is not None
        for sid, subscription in current.items():
            self.changed[sid] = replace(subscription, renewal_date=target)
            detail = {"previous_renewal_date": subscription.renewal_date, "renewal_date": target}
            self._record(sid, "renewal_date_aligned", detail, order, delivery)
        priced = [line.priced for line in order.lines if line.priced is not None]
        first = next(iter(current.values()))
        answer = dates_updated(order.request_id, target, priced, total, first.snapshot.currency)
        self._announce(answer, order.csn)

    # a failed payment --------------------------------------------------------------------------

    def _failed(self, order: Order) -> None:
        if order.request_id is None:
            # An automatic renewal: the due-date engine, which put off its next look while the
            # charge was in flight, looks again now; it retries or lets the subscription lapse.
            self.engine_looks_again.extend(order.subscription_ids)
            return
        if order.purpose == "quote":
            # The quote service answers the buyer: the quote can be accepted again.
            self._answer_quote(order, QuoteOrderPaymentFailed)
            return
        for sid in order.subscription_ids:
            self._announce(
                RenewalRejected(
                    request_id=order.request_id,
                    subscription_id=sid,
                    reasons=[PAYMENT_METHOD_INVALID],
                ),
                order.csn,
            )
        if order.purpose == "renewal":
            self.settled_items.append(
                SettledItem(order.order_id, "rejected", reasons=[PAYMENT_METHOD_INVALID])
            )

    # save and announce -------------------------------------------------------------------------

    def _record(
        self, sid: str, change: str, detail: dict[str, Any], order: Order, delivery: Paid
    ) -> None:
        self.history.append(
            (sid, self.now, change, detail, None, order.request_id, delivery.event.id)
        )

    def _announce(self, event: EventData, csn: str, topic: Topic = RENEWAL_EVENTS) -> None:
        self.unit.outbox.add(
            topic, new_event(event, subject=csn, source=self.source, time=self.now)
        )

    def _answer_paid_quote(self, order: Order, refunded: Refunded) -> None:
        """A paid quote's order is the quote paid when its money bought something; when every
        line's went back, the quote service hears why, and the quote is open again (QUO-3,
        `eligibility.quote_took_effect`; issue 19). Money after the order was released
        (abandoned.py) went back too: its quote, open again by then, stays as it is."""
        if quote_took_effect(order.subscription_ids, refunded):
            self._answer_quote(order, QuoteOrderPaid)
            return
        assert order.quote_number is not None and order.request_id is not None
        answer = QuoteOrderRefunded(
            request_id=order.request_id,  # the acceptance's: its answer is `quote.rejected`
            quote_number=order.quote_number,
            order_id=order.order_id,
            reasons=list(in_contract_order(refund_refusal(why) for why in refunded.values())),
        )
        self._announce(answer, order.csn, QUOTE_ORDER_ANSWERS)

    def _answer_quote(
        self, order: Order, answer: type[QuoteOrderPaid] | type[QuoteOrderPaymentFailed]
    ) -> None:
        """The payment outcome of a quote's order, told to the quote service, which reads no
        `billing.events` (issue 19 item 3): the claim lets only an order's first outcome here,
        so a payment seen twice is answered once."""
        assert order.quote_number is not None
        self._announce(
            answer(quote_number=order.quote_number, order_id=order.order_id),
            order.csn,
            QUOTE_ORDER_ANSWERS,
        )

    async def save(self) -> None:
        connection = self.unit.connection
        await start_subscriptions(connection, self.started)
        await save_renewal_terms(connection, self.changed.values())
        await look_again(connection, self.engine_looks_again)
        await record_history(connection, self.history)
        await settle_items(
            connection, self.settled_items, self.unit.outbox, clock=self.clock, source=self.source
        )


def _renewed(
    order: Order, was: Subscription, renewal_date: date, term: Any, seats: int
) -> SubscriptionRenewed:
    return SubscriptionRenewed(
        subscription_id=was.subscription_id,
        order_id=order.order_id,
        previous_renewal_date=was.renewal_date,
        renewal_date=renewal_date,
        term=term,
        seats=seats,
        request_id=order.request_id,
        csn=was.csn,
        product_name=was.snapshot.product_name,
        buyer=email_recipient(was.snapshot),  # ROLE-3
    )


def _domain(subscription: Subscription | None) -> eligibility.Subscription | None:
    """The rules' view of a subscription; None for one renewal does not hold."""
    return to_domain(subscription) if subscription is not None else None


def _unknown(lines: Lines) -> Refunded:
    """The subscriptions of an order renewal does not hold: their money goes back."""
    return {sid: RefundReason.UNKNOWN_SUBSCRIPTION for sid, s in lines.items() if s is None}


def billing_events_handler(clock: Clock, source: str, policy: Policy) -> BatchHandler:
    async def settle(unit: UnitOfWork, deliveries: list[Outcome]) -> None:
        await Settlement(unit, clock, source, policy).apply(deliveries)

    async def awaiting(unit: UnitOfWork, deliveries: list[Delivery[PaymentAwaitingManual]]) -> None:
        # A manual payment's last day: after it the order is abandoned, its reservation released.
        await note_pay_by(unit.connection, {d.data.order_id: d.data.pay_by for d in deliveries})

    # Billing's other events concern renewal only through their payment outcome.
    outcomes = handles_batch(announced(settle, policy, source, clock))
    return dispatch_some(
        BILLING_EVENTS_REGISTRY,
        {
            PaymentFailed: outcomes,
            PaymentSucceeded: outcomes,
            PaymentAwaitingManual: handles_batch(awaiting),
        },
    )
