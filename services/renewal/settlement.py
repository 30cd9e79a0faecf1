"""`billing.events` → renewal: what a paid order does, and what a failed one answers.

Billing's answer releases the order's term reservations (services/renewal/reservations.py). A
paid order, by its purpose:
- `renewal` (and a `renewal` quote, with the quote's term and seats): each subscription renews
  from its current renewal date, early or in grace (LIFE-4, MAN-4), by one term of what the
  next renewal buys (TERM-1, SEAT-2), and `subscription.renewed` is announced — when the term
  can still take effect (`eligibility.settle_paid_renewal`): money for an expired subscription
  (LIFE-3, LIFE-5) or for a reservation released meanwhile goes back (billing is asked to
  refund it, `payment.refunded`), and the subscription stays as it is;
- an `alignment` or `new` quote does what its kind says (QUO-3, `eligibility.settle_paid_quote`):
  the renewal dates move to the quote's target, or a new subscription starts on the payment day
  (services/renewal/new_purchases.py); `quote.paid` (the quote service's) is their answer;
- `seats`: the seats are added now (SEAT-1), to a reduced next term too (SEAT-2), and
  `seats.updated` answers the command;
- `alignment`: the renewal dates move to the target (ALIGN-1), answered by `renewal_dates.updated`.
A failed one answers its command with `renewal.rejected` (an automatic renewal's failure is the
due-date engine's to retry). Only an order still waiting for billing's answer changes state, and
the first answer of the batch for an order is the one that counts, so an answer seen twice, or an
order that isn't renewal's (a quote's), changes nothing. The whole batch is settled in a handful
of set-based statements; a subscription changed by two orders of the batch changes twice, from
where the first left it, as one by one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from typing import Any

from services.renewal.batches import finish_batches
from services.renewal.changes import dates_updated
from services.renewal.new_purchases import NewPurchase, new_subscription_id, start_subscriptions
from services.renewal.reservations import note_pay_by, take_reservations
from services.renewal.state import announced
from services.renewal.subscriptions import (
    Subscription,
    load_subscriptions,
    record_history,
    to_domain,
)
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
from shared.contracts.renewal_events import TOPIC as RENEWAL_EVENTS
from shared.contracts.renewal_events import RenewalRejected, SeatsUpdated, SubscriptionRenewed
from shared.db.types import DbConnection
from shared.eligibility import (
    Policy,
    seats_after_addition,
    settle_paid_quote,
    settle_paid_renewal,
)
from shared.messaging import tracing
from shared.messaging.consumer import (
    BatchHandler,
    Delivery,
    UnitOfWork,
    dispatch_some,
    handles_batch,
)
from shared.plumbing.metrics import RENEWALS_RENEWED
from shared.test_clocks import CsnClock

PAYMENT_METHOD_INVALID = "PAYMENT_METHOD_INVALID"


@dataclass
class Settlement:
    """One batch of billing's answers, applied to the orders still waiting for them."""

    unit: UnitOfWork
    clock: Clock
    source: str
    policy: Policy

    def __post_init__(self) -> None:
        self.now = self.clock.now()
        self.history: list[tuple[Any, ...]] = []
        self.settled_items: list[dict[str, Any]] = []
        self.reserved: dict[tuple[str, str], date] = {}
        self.today: dict[str, date] = {}
        self.engine_looks_again: list[str] = []
        self.started: list[NewPurchase] = []

    async def apply(self, deliveries: list[Delivery]) -> None:
        answers: dict[str, Delivery] = {}
        for delivery in deliveries:
            answers.setdefault(delivery.data.order_id, delivery)
        orders = await self._claim(answers)
        if not orders:
            return
        ids = {sid for order in orders for sid in order["subscription_ids"]}
        held = await load_subscriptions(self.unit.connection, ids, for_update=True)
        connection = self.unit.connection
        self.reserved = await take_reservations(connection, [o["order_id"] for o in orders])
        self.today = await CsnClock(self.clock).today_for(connection, {o["csn"] for o in orders})
        changed: dict[str, Subscription] = {}
        for order in orders:
            delivery = answers[order["order_id"]]
            with tracing.within(trace_of(delivery.event)):  # what it causes continues its trace
                if order["status"] == "paid":
                    self._paid(order, delivery, held, changed)
                else:
                    self._failed(order)
        await self.save(changed)

    async def _claim(self, answers: dict[str, Delivery]) -> list[dict[str, Any]]:
        statuses = [
            "paid" if isinstance(d.data, PaymentSucceeded) else "failed" for d in answers.values()
        ]
        rows = await self.unit.connection.fetch(
            """UPDATE orders AS o SET status = u.status
               FROM unnest($1::text[], $2::text[]) AS u(order_id, status)
               WHERE o.order_id = u.order_id AND o.status = 'requested'
               RETURNING o.order_id, o.request_id, o.csn, o.subscription_ids, o.purpose,
                         o.detail::text AS detail, o.status""",
            list(answers),
            statuses,
        )
        by_id = {r["order_id"]: {**dict(r), "detail": json.loads(r["detail"])} for r in rows}
        return [by_id[order_id] for order_id in answers if order_id in by_id]  # in their order

    def _paid(
        self,
        order: dict[str, Any],
        delivery: Delivery,
        held: dict[str, Subscription],
        changed: dict[str, Subscription],
    ) -> None:
        current = {sid: changed.get(sid, held[sid]) for sid in order["subscription_ids"]}
        if order["purpose"] == "seats":
            self._add_seats(order, delivery, current, changed)
        elif order["purpose"] == "alignment":
            self._align(order, delivery, current, changed)
        elif order["purpose"] == "quote" and order["detail"].get("kind", "renewal") != "renewal":
            self._settle_quote_kind(order, delivery, current, changed)
        else:
            if order["purpose"] == "quote":  # QUO-8: the quote's term and seats are bought
                current = {
                    line["subscription_id"]: replace(
                        current[line["subscription_id"]],
                        next_term=line["term"],
                        next_seats=line["seats"],
                    )
                    for line in order["detail"]["lines"]
                    if line["subscription_id"] in current
                }
            self.renew(order, delivery, current, changed)

    def renew(
        self,
        order: dict[str, Any],
        delivery: Delivery,
        current: dict[str, Subscription],
        changed: dict[str, Subscription],
    ) -> None:
        today = self.today[order["csn"]]
        refunded: dict[str, str] = {}
        renewed: list[SubscriptionRenewed] = []
        for sid, subscription in list(current.items()):
            term, seats = subscription.renewal_term, subscription.renewal_seats
            paid = settle_paid_renewal(  # LIFE-3, LIFE-4, LIFE-5
                to_domain(subscription),
                self.reserved.get((order["order_id"], sid)),
                today,
                self.policy,
            )
            if paid.refund is not None:
                refunded[sid] = paid.refund
                del current[sid]
                detail = {"order_id": order["order_id"], "reason": paid.refund}
                self._record(sid, "payment_refunded", detail, order, delivery)
                continue
            assert paid.renewal_date is not None
            renewed_to = paid.renewal_date
            changed[sid] = replace(
                subscription,
                renewal_date=renewed_to,
                term=term,
                seats=seats,
                next_term=None,
                next_seats=None,
            )
            detail = {
                "order_id": order["order_id"],
                "previous_renewal_date": subscription.renewal_date,
                "renewal_date": renewed_to,
                "term": term,
                "seats": seats,
            }
            self._record(sid, "renewed", detail, order, delivery)
            renewed.append(
                SubscriptionRenewed(
                    subscription_id=sid,
                    order_id=order["order_id"],
                    previous_renewal_date=subscription.renewal_date,
                    renewal_date=renewed_to,
                    term=term,
                    seats=seats,
                    request_id=order["request_id"],
                    csn=subscription.csn,
                    product_name=subscription.snapshot.product_name,
                    buyer=subscription.snapshot.buyer,
                )
            )
        # Each event also carries what the order's one confirmation shows (MAN-3): the amount
        # billing was paid and how many subscriptions the order renewed, so that notification
        # makes the email from this stream alone (issue 17 item 3).
        payment: PaymentSucceeded = delivery.data
        order_fields = {
            "order_total": payment.amount,
            "currency": payment.currency,
            "renewed_in_order": len(renewed),
        }
        for event in renewed:
            self._announce(event.model_copy(update=order_fields), order["csn"])
        trigger = "automatic" if order["request_id"] is None else "command"
        RENEWALS_RENEWED.labels("renewal", trigger).inc(len(current))
        if refunded:
            self._refund(order, refunded)
        if order["request_id"] is not None and order["purpose"] == "renewal":
            for sid in current:
                self.settled_items.append(
                    {
                        "order_id": order["order_id"],
                        "subscription_id": sid,
                        "status": "renewed",
                        "reasons": [],
                    }
                )

    def _settle_quote_kind(
        self,
        order: dict[str, Any],
        delivery: Delivery,
        current: dict[str, Subscription],
        changed: dict[str, Subscription],
    ) -> None:
        """QUO-3: a paid alignment quote moves the renewal dates to its target; a paid
        new-purchase quote starts a new subscription on the payment day, for the quoted term
        and seats (services/renewal/new_purchases.py). Money that can no longer buy what the
        quote said goes back (`eligibility.settle_paid_quote`)."""
        kind = order["detail"]["kind"]
        target = order["detail"].get("target_date")
        lines = {line["subscription_id"]: line for line in order["detail"]["lines"]}
        refunded: dict[str, str] = {}
        for sid, subscription in current.items():
            line = lines[sid]
            paid = settle_paid_quote(
                kind,
                to_domain(subscription),
                self.reserved.get((order["order_id"], sid)),
                self.today[order["csn"]],
                self.policy,
                term=line["term"],
                target_date=date.fromisoformat(target) if target else None,
            )
            if paid.refund is not None:
                refunded[sid] = paid.refund
                detail = {"order_id": order["order_id"], "reason": paid.refund}
                self._record(sid, "payment_refunded", detail, order, delivery)
                continue
            assert paid.starts_on is not None and paid.renewal_date is not None
            if kind == "alignment":
                changed[sid] = replace(subscription, renewal_date=paid.renewal_date)
                detail = {
                    "order_id": order["order_id"],
                    "previous_renewal_date": subscription.renewal_date,
                    "renewal_date": paid.renewal_date,
                }
                self._record(sid, "renewal_date_aligned", detail, order, delivery)
                continue
            purchase = NewPurchase(
                subscription_id=new_subscription_id(order["order_id"], sid),
                quoted=subscription,
                start_date=paid.starts_on,
                renewal_date=paid.renewal_date,
                term=line["term"],
                seats=line["seats"],
            )
            self.started.append(purchase)
            detail = {
                "order_id": order["order_id"],
                "quoted_subscription_id": sid,
                "start_date": paid.starts_on,
                "renewal_date": paid.renewal_date,
                "term": purchase.term,
                "seats": purchase.seats,
            }
            self._record(purchase.subscription_id, "new_purchase", detail, order, delivery)
        if refunded:
            self._refund(order, refunded)

    def _refund(self, order: dict[str, Any], refunded: dict[str, str]) -> None:
        """The money of subscriptions that could not renew goes back, once (LIFE-3, LIFE-5),
        and a manual request is answered for them."""
        everything = set(refunded) == set(order["subscription_ids"])
        reason = next(iter(refunded.values()))
        command = RefundPayment(
            order_id=order["order_id"],
            csn=order["csn"],
            subscription_ids=[] if everything else sorted(refunded),
            reason=reason,
        )
        self.unit.outbox.add(
            BILLING_COMMANDS,
            new_event(command, subject=order["csn"], source=self.source, time=self.now),
        )
        if order["request_id"] is None or order["purpose"] != "renewal":
            return
        for sid, why in refunded.items():
            self._announce(
                RenewalRejected(
                    request_id=order["request_id"], subscription_id=sid, reasons=[_reason(why)]
                ),
                order["csn"],
            )
            self.settled_items.append(
                {
                    "order_id": order["order_id"],
                    "subscription_id": sid,
                    "status": "rejected",
                    "reasons": [_reason(why)],
                }
            )

    def _add_seats(
        self,
        order: dict[str, Any],
        delivery: Delivery,
        current: dict[str, Subscription],
        changed: dict[str, Subscription],
    ) -> None:
        [(sid, subscription)] = current.items()
        added = order["detail"]["seats_added"]
        # SEAT-2: added to a reduced next term too, so nothing paid for is lost at renewal.
        seats, next_seats = seats_after_addition(to_domain(subscription), added)
        changed[sid] = replace(subscription, seats=seats, next_seats=next_seats)
        detail = {"order_id": order["order_id"], "seats_added": added}
        self._record(sid, "seats_added", detail, order, delivery)
        self._announce(
            SeatsUpdated(
                request_id=order["request_id"],
                subscription_id=sid,
                seats=seats,
                order_id=order["order_id"],
                prorated_total=Decimal(order["detail"]["total"]),
                currency=subscription.snapshot.currency,
                seats_added=added,
            ),
            order["csn"],
        )

    def _align(
        self,
        order: dict[str, Any],
        delivery: Delivery,
        current: dict[str, Subscription],
        changed: dict[str, Subscription],
    ) -> None:
        target = date.fromisoformat(order["detail"]["target_date"])
        for sid, subscription in current.items():
            changed[sid] = replace(subscription, renewal_date=target)
            detail = {"previous_renewal_date": subscription.renewal_date, "renewal_date": target}
            self._record(sid, "renewal_date_aligned", detail, order, delivery)
        first = next(iter(current.values()))
        answer = dates_updated(
            order["request_id"],
            target,
            order["detail"]["lines"],
            Decimal(order["detail"]["total"]),
            first.snapshot.currency,
        )
        self._announce(answer, order["csn"])

    def _failed(self, order: dict[str, Any]) -> None:
        if order["request_id"] is None:
            # An automatic renewal: the due-date engine, which put off its next look while the
            # charge was in flight, looks again now; it retries or lets the subscription lapse.
            self.engine_looks_again.extend(order["subscription_ids"])
            return
        if order["purpose"] == "quote":
            return  # the quote service answers it: the quote can be accepted again
        for sid in order["subscription_ids"]:
            self._announce(
                RenewalRejected(
                    request_id=order["request_id"],
                    subscription_id=sid,
                    reasons=[PAYMENT_METHOD_INVALID],
                ),
                order["csn"],
            )
        if order["purpose"] == "renewal":
            self.settled_items.append(
                {
                    "order_id": order["order_id"],
                    "status": "rejected",
                    "reasons": [PAYMENT_METHOD_INVALID],
                }
            )

    def _record(
        self,
        sid: str,
        change: str,
        detail: dict[str, Any],
        order: dict[str, Any],
        delivery: Delivery,
    ) -> None:
        self.history.append(
            (sid, self.now, change, detail, None, order["request_id"], delivery.event.id)
        )

    def _announce(self, event: EventData, csn: str) -> None:
        self.unit.outbox.add(
            RENEWAL_EVENTS, new_event(event, subject=csn, source=self.source, time=self.now)
        )

    async def save(self, changed: dict[str, Subscription]) -> None:
        connection: DbConnection = self.unit.connection
        await start_subscriptions(connection, self.started)
        if changed:
            rows = list(changed.values())
            await connection.execute(
                """UPDATE subscriptions AS s SET renewal_date = u.renewal_date, term = u.term,
                       seats = u.seats, next_term = u.next_term, next_seats = u.next_seats,
                       updated_at = now()
                   FROM unnest($1::text[], $2::date[], $3::text[], $4::int[], $5::text[],
                               $6::int[])
                       AS u(subscription_id, renewal_date, term, seats, next_term, next_seats)
                   WHERE s.subscription_id = u.subscription_id""",
                [s.subscription_id for s in rows],
                [s.renewal_date for s in rows],
                [s.term for s in rows],
                [s.seats for s in rows],
                [s.next_term for s in rows],
                [s.next_seats for s in rows],
            )
        if self.engine_looks_again:
            await connection.execute(  # the engine's next look back to the renewal date
                "UPDATE subscriptions SET next_check_for = NULL WHERE subscription_id = ANY($1)",
                self.engine_looks_again,
            )
        await record_history(connection, self.history)
        if self.settled_items:
            settled = await connection.fetch(
                """WITH settled AS (
                       UPDATE renewal_batch_items AS i SET status = u.status, reasons = u.reasons
                       FROM jsonb_to_recordset($1::jsonb)
                           AS u(order_id text, subscription_id text, status text, reasons text[])
                       WHERE i.order_id = u.order_id
                         AND (u.subscription_id IS NULL OR i.subscription_id = u.subscription_id)
                       RETURNING i.request_id)
                   SELECT DISTINCT request_id FROM settled""",
                json.dumps(self.settled_items),
            )
            await finish_batches(
                connection,
                [row["request_id"] for row in settled],
                self.unit.outbox,
                clock=self.clock,
                source=self.source,
            )


def _reason(refund_reason: str) -> str:
    """The refusal a manual request gets for money that went back (CONTRACT.md's reasons)."""
    return "ALREADY_RENEWED" if refund_reason == "ALREADY_RENEWED" else "EXPIRED"


def billing_events_handler(clock: Clock, source: str, policy: Policy) -> BatchHandler:
    async def settle(unit: UnitOfWork, deliveries: list[Delivery]) -> None:
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
