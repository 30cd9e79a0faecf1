"""Changes a buyer asks for besides renewing: the next renewal's term or seats (TERM-1, SEAT-2),
seats added now, paid pro rata (SEAT-1), and renewal dates aligned, paid pro rata (ALIGN-1).

Each is decided by the eligibility package; a refusal is `renewal.rejected` with every reason.
A change that costs money becomes an order to billing (`purpose` seats or alignment): it takes
effect, and is answered, when billing's `payment.succeeded` arrives (services/renewal/settlement.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from services.renewal.billing_orders import place_order, priced_line
from services.renewal.reservations import open_reservations, reserve
from services.renewal.state import announced
from services.renewal.store import Order, OrderLine, Purpose, save_orders, save_renewal_terms
from services.renewal.subscriptions import (
    Subscription,
    load_for_command,
    record_history,
    to_domain,
)
from shared.catalog.store import load_catalog
from shared.clock import Clock
from shared.contracts.billing_commands import TOPIC as BILLING_COMMANDS
from shared.contracts.common import PriceLine as ContractPriceLine
from shared.contracts.envelope import EventData, new_event
from shared.contracts.renewal_commands import AddSeats, AlignRenewalDates, ChangeRenewalTerms
from shared.contracts.renewal_events import TOPIC as RENEWAL_EVENTS
from shared.contracts.renewal_events import (
    RenewalDatesUpdated,
    RenewalRejected,
    RenewalTermsUpdated,
)
from shared.eligibility import (
    Actor,
    Decision,
    Policy,
    Price,
    PriceLine,
    Promotion,
    Reservation,
    decide_add_seats,
    decide_align_dates,
    decide_change_terms,
    reservation_reasons,
)
from shared.messaging.consumer import Delivery, EventHandler, UnitOfWork
from shared.messaging.identity import count_not_authorized, request_key, sender_of
from shared.messaging.requests_seen import first_time
from shared.test_clocks import CsnClock

CHANGE_ORDER_NAMESPACE = uuid.UUID("3d5a7c19-2b4e-4f60-8e1d-9a0b1c2d3e4f")


@dataclass
class ChangeContext:
    """What every change handler needs: the subscriptions, the CSN's today, the catalog, the
    policy."""

    unit: UnitOfWork
    delivery: Delivery
    held: dict[str, Subscription]
    today: date
    prices: list[Price]
    promotions: list[Promotion]
    policy: Policy

    @property
    def actor(self) -> Actor:
        command = self.delivery.data
        return Actor(user_id=command.actor.user_id, csn=command.actor.csn)

    def decide(self, decide: Callable[..., Decision], *asked: Any, **options: Any) -> Decision:
        """Call an eligibility decision with what every one of them takes."""
        return decide(
            self.actor,
            [to_domain(s) for s in self.held.values()],
            *asked,
            prices=self.prices,
            promotions=self.promotions,
            today=self.today,
            policy=self.policy,
            sender=sender_of(self.delivery),
            **options,
        )


class ChangeHandlers:
    def __init__(self, clock: Clock, policy: Policy, source: str) -> None:
        self.clock = clock
        self.csn_clock = CsnClock(clock)
        self.policy = policy
        self.source = source

    def handlers(self) -> dict[type, EventHandler]:
        handlers: dict[type, EventHandler] = {
            ChangeRenewalTerms: self.change_terms,
            AddSeats: self.add_seats,
            AlignRenewalDates: self.align_dates,
        }
        return {t: announced(h, self.policy, self.source, self.clock) for t, h in handlers.items()}

    async def _context(
        self, unit: UnitOfWork, delivery: Delivery, subscription_ids: Sequence[str]
    ) -> ChangeContext | None:
        if not await first_time(unit.connection, request_key(delivery), delivery.event.type):
            return None  # the same request id again: one effect, one answer
        held = await load_for_command(unit.connection, subscription_ids, delivery.event.subject)
        csn = delivery.event.subject  # the customer's today (a partner's actor is not of it)
        today = (await self.csn_clock.today_for(unit.connection, [csn]))[csn]
        products = {s.snapshot.product_code for s in held.values()}
        prices, promotions = await load_catalog(unit.connection, products)
        return ChangeContext(unit, delivery, held, today, prices, promotions, self.policy)

    async def change_terms(self, unit: UnitOfWork, delivery: Delivery[ChangeRenewalTerms]) -> None:
        """TERM-1, SEAT-2: recorded now, effective at the next renewal, at the renewal price of
        the new term (PRICE-1); reducing seats takes effect at renewal only."""
        command = delivery.data
        context = await self._context(unit, delivery, [command.subscription_id])
        if context is None:
            return
        decision = context.decide(
            decide_change_terms, command.subscription_id, term=command.term, seats=command.seats
        )
        if self._refused(context, decision):
            return
        subscription = context.held[command.subscription_id]
        term = command.term or subscription.renewal_term
        seats = command.seats if command.seats is not None else subscription.renewal_seats
        await save_renewal_terms(
            unit.connection, [replace(subscription, next_term=term, next_seats=seats)]
        )
        await self._history(
            context,
            command.subscription_id,
            "renewal_terms_changed",
            {"term": term, "seats": seats},
        )
        self._announce(
            context,
            RenewalTermsUpdated(
                request_id=command.request_id,
                subscription_id=command.subscription_id,
                term=term,
                seats=seats,
                effective_on=subscription.renewal_date,
            ),
        )

    async def add_seats(self, unit: UnitOfWork, delivery: Delivery[AddSeats]) -> None:
        """SEAT-1: an order for the pro-rata amount; the seats are added once it is paid."""
        command = delivery.data
        context = await self._context(unit, delivery, [command.subscription_id])
        if context is None:
            return
        decision = context.decide(decide_add_seats, command.subscription_id, seats=command.seats)
        if self._refused(context, decision) or await self._in_progress(context):
            return
        assert decision.preview is not None
        [line] = decision.preview.lines
        subscription = context.held[command.subscription_id]
        await self._order(
            context, "seats", [(line, subscription)], line.amount, seats_added=command.seats
        )

    async def align_dates(self, unit: UnitOfWork, delivery: Delivery[AlignRenewalDates]) -> None:
        """ALIGN-1: every renewal date moves to the target once the pro-rata extension is paid;
        an alignment that costs nothing takes effect at once."""
        command = delivery.data
        context = await self._context(unit, delivery, command.subscription_ids)
        if context is None:
            return
        decision = context.decide(
            decide_align_dates, command.subscription_ids, target_date=command.target_date
        )
        if self._refused(context, decision) or await self._in_progress(context):
            return
        assert decision.preview is not None
        lines = [(line, context.held[line.subscription_id]) for line in decision.preview.lines]
        [totals] = decision.preview.totals  # one currency: MIXED_CURRENCY refuses the others
        total = totals.total
        if total > 0:
            target = command.target_date
            await self._order(context, "alignment", lines, total, target_date=target)
            return
        await align(
            unit,
            context.delivery.event.id,
            command.request_id,
            [s for _, s in lines],
            command.target_date,
            self.clock.now(),
        )
        answer = dates_updated(
            command.request_id,
            command.target_date,
            [priced_line(line) for line, _ in lines],
            total,
            lines[0][1].snapshot.currency,
        )
        self._announce(context, answer)

    def _refused(self, context: ChangeContext, decision: Decision) -> bool:
        if decision.allowed:
            return False
        command = context.delivery.data
        refusals: list[tuple[str | None, Sequence[str]]] = (
            [(None, decision.reasons)] if decision.reasons else []
        )
        refusals += [(o.subscription_id, o.reasons) for o in decision.subscriptions if o.reasons]
        # One command, counted once, however many answers name its refused subscriptions.
        count_not_authorized("renewal", decision.all_reasons)
        for subscription_id, reasons in refusals:
            self._announce(
                context,
                RenewalRejected(
                    request_id=command.request_id,
                    subscription_id=subscription_id,
                    reasons=list(reasons),
                ),
            )
        return True

    async def _in_progress(self, context: ChangeContext) -> bool:
        """Issue 14: seats and dates change what a term costs and when it starts, so they wait
        while another order holds one of the subscriptions (RENEWAL_IN_PROGRESS)."""
        held = await open_reservations(context.unit.connection, context.held)
        refusals = {
            sid: reasons
            for sid, subscription in context.held.items()
            if (reasons := reservation_reasons(to_domain(subscription), held.get(sid)))
        }
        for subscription_id, reasons in refusals.items():
            self._announce(
                context,
                RenewalRejected(
                    request_id=context.delivery.data.request_id,
                    subscription_id=subscription_id,
                    reasons=list(reasons),
                ),
            )
        return bool(refusals)

    async def _order(
        self,
        context: ChangeContext,
        purpose: Purpose,
        lines: list[tuple[PriceLine, Subscription]],
        total: Any,
        *,
        seats_added: int | None = None,
        target_date: date | None = None,
    ) -> None:
        command = context.delivery.data
        first = lines[0][1].snapshot
        # Scoped like the request id (issue 16): another tenant's same request id, another order.
        order_id = str(
            uuid.uuid5(CHANGE_ORDER_NAMESPACE, f"{purpose}|{request_key(context.delivery)}")
        )
        order = place_order(
            order_id=order_id, request_id=command.request_id, lines=lines, total=total
        )
        await save_orders(
            context.unit.connection,
            [
                Order(
                    order_id=order_id,
                    request_id=command.request_id,
                    csn=first.csn,
                    subscription_ids=tuple(line.subscription_id for line, _ in lines),
                    purpose=purpose,
                    lines=tuple(
                        OrderLine(line.subscription_id, line.term, line.seats, priced_line(line))
                        for line, _ in lines
                    ),
                    target_date=target_date,
                    seats_added=seats_added,
                    total=total,
                )
            ],
        )
        await reserve(  # what the order changes, held until billing answers
            context.unit.connection,
            [
                Reservation(
                    subscription_id=line.subscription_id,
                    order_id=order_id,
                    term_start=subscription.renewal_date,
                )
                for line, subscription in lines
            ],
            self.clock.now(),
        )
        context.unit.outbox.add(BILLING_COMMANDS, self._event(order, first.csn))

    async def _history(
        self, context: ChangeContext, subscription_id: str, change: str, detail: dict[str, Any]
    ) -> None:
        command = context.delivery.data
        await record_history(
            context.unit.connection,
            [
                (
                    subscription_id,
                    self.clock.now(),
                    change,
                    detail,
                    command.actor.model_dump(),
                    command.request_id,
                    context.delivery.event.id,
                )
            ],
        )

    def _announce(self, context: ChangeContext, event: EventData) -> None:
        context.unit.outbox.add(RENEWAL_EVENTS, self._event(event, context.delivery.event.subject))

    def _event(self, data: EventData, csn: str) -> Any:
        return new_event(data, subject=csn, source=self.source, time=self.clock.now())


def dates_updated(
    request_id: str,
    target_date: date,
    lines: Sequence[ContractPriceLine],
    total: Any,
    currency: str,
) -> RenewalDatesUpdated:
    """The answer to an alignment, with its pro-rata lines (as stored with the order)."""
    return RenewalDatesUpdated(
        request_id=request_id,
        subscription_ids=[line.subscription_id for line in lines],
        target_date=target_date,
        lines=lines,
        total=total,
        currency=currency,
    )


async def align(
    unit: UnitOfWork,
    event_id: str,
    request_id: str | None,
    subscriptions: list[Subscription],
    target_date: date,
    now: Any,
) -> None:
    """Move every renewal date to the target (ALIGN-1), with its audit trail."""
    await save_renewal_terms(
        unit.connection, [replace(s, renewal_date=target_date) for s in subscriptions]
    )
    await record_history(
        unit.connection,
        [
            (
                s.subscription_id,
                now,
                "renewal_date_aligned",
                {"previous_renewal_date": s.renewal_date, "renewal_date": target_date},
                None,
                request_id,
                event_id,
            )
            for s in subscriptions
        ],
    )
