"""Manual renewal requests decided into orders and refusals: the one decision path of the bulk
worker (recorded batches it claims) and of renewal's intake (a single-subscription request,
worked in the consumer's transaction: issue 19).

Each request is decided by the eligibility package (MAN-1: every subscription checked, every
reason given); the eligible ones are grouped by CSN, currency, purchase method and payment
method (MAN-2: never charged to another subscription's method) and each group becomes one order
asked of billing (one transaction, one charge, one confirmation — MAN-3). The caller saves the
requests' own rows (`BatchWork.items`) and announces the states the orders changed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from services.renewal.batches import Batch, BatchItem
from services.renewal.billing_orders import place_order
from services.renewal.reservations import open_reservations, reserve
from services.renewal.store import Order, save_orders
from services.renewal.subscriptions import Subscription, load_asked, to_domain
from shared.catalog.store import load_catalog
from shared.clock import Clock
from shared.contracts.billing_commands import TOPIC as BILLING_COMMANDS
from shared.contracts.envelope import new_event
from shared.contracts.renewal_events import TOPIC as RENEWAL_EVENTS
from shared.contracts.renewal_events import RenewalRejected
from shared.db.types import DbConnection
from shared.eligibility import (
    Decision,
    Group,
    Policy,
    Price,
    Promotion,
    Reservation,
    decide_manual_renewal,
)
from shared.messaging import tracing
from shared.messaging.identity import count_not_authorized, sender_named
from shared.messaging.outbox import Outbox
from shared.test_clocks import CsnClock

ORDER_NAMESPACE = uuid.UUID("6f1c8a52-3d0e-4a77-9b1e-2c4b5d6e7f80")


def order_id_for(request_id: str, group: Group) -> str:
    # Deterministic: working the same batch again yields the same order ids (billing dedupes).
    key = f"{request_id}|{group.csn}|{group.currency}|{group.purchase_method}"
    if group.payment_method is not None:  # MAN-2: one order per payment method too
        method = group.payment_method
        key += f"|{method.type}|{method.recurring}|{method.valid}"
    return str(uuid.uuid5(ORDER_NAMESPACE, key))


async def decide_requests(
    connection: DbConnection,
    batches: Sequence[Batch],
    outbox: Outbox,
    *,
    clock: Clock,
    policy: Policy,
    source: str,
    counted_as: str,
) -> BatchWork:
    """Decide these requests in one go and save their orders and reservations; their answers
    (orders to billing, refusals) go to `outbox`. `counted_as` names the process in the
    refusals' NOT_AUTHORIZED metric."""
    # Locked: what each request asks of its own CSN; another tenant's rows only read, to be
    # refused (issue 16).
    subscriptions = await load_asked(
        connection, [(sid, b.csn) for b in batches for sid in b.requested]
    )
    today = await CsnClock(clock).today_for(connection, [b.csn for b in batches])
    prices, promotions = await _catalog(connection, subscriptions.values())
    # Issue 14: a subscription an open order holds is not bought again (subscriptions are
    # locked above, so no other order can take them meanwhile).
    held = await open_reservations(connection, subscriptions)
    work = BatchWork(
        clock, policy, source, today, prices, promotions, held, outbox, counted_as=counted_as
    )
    for batch in batches:
        with tracing.caused_by(batch.traceparent):  # the command's trace goes on
            work.decide(batch, subscriptions)
    await save_orders(connection, work.orders)
    await reserve(connection, work.reserved, clock.now())
    return work


async def _catalog(
    connection: DbConnection, subscriptions: Iterable[Subscription]
) -> tuple[list[Price], list[Promotion]]:
    products = {s.snapshot.product_code for s in subscriptions}
    prices, promotions = await load_catalog(connection, products)
    return prices, promotions


class BatchWork:
    """What one go decides: orders to ask for, refusals to announce, item outcomes to save."""

    def __init__(
        self,
        clock: Clock,
        policy: Policy,
        source: str,
        today: dict[str, date],
        prices: list[Price],
        promotions: list[Promotion],
        reservations: dict[str, Reservation],
        outbox: Outbox,
        *,
        counted_as: str,
    ) -> None:
        self.clock = clock
        self.policy = policy
        self.source = source
        self.today = today
        self.prices = prices
        self.promotions = promotions
        # Open before this go, and made by it: two requests of one go (a double click) see
        # each other's orders.
        self.reservations = reservations
        self.outbox = outbox
        self.counted_as = counted_as
        self.reserved: list[Reservation] = []
        self.items: list[BatchItem] = []
        self.orders: list[Order] = []

    def decide(self, batch: Batch, held: dict[str, Subscription]) -> None:
        # The batch's key is the request id scoped to its sender and CSN (issue 16 item 3); the
        # answers and the orders carry the client's own request id.
        key, request_id, csn, requested = batch.key, batch.request_id, batch.csn, batch.requested
        found = [held[sid] for sid in dict.fromkeys(requested) if sid in held]
        decision = decide_manual_renewal(
            batch.actor,
            [to_domain(s) for s in found],
            list(requested),
            prices=self.prices,
            promotions=self.promotions,
            today=self.today[csn],
            policy=self.policy,
            reservations=self.reservations,
            sender=sender_named(batch.signer),
        )
        # One request, counted once, however many of its subscriptions are refused.
        count_not_authorized(self.counted_as, decision.all_reasons)
        if decision.reasons:
            # The whole request is refused and nothing is done (MAN-1, e.g. over the bulk limit).
            self._reject(request_id, csn, None, decision.reasons)
            self.items += [
                BatchItem(key, position, "rejected", tuple(decision.reasons))
                for position in range(len(requested))
            ]
            return
        order_of = self._place_orders(key, request_id, decision, held)
        for position, subscription_id in enumerate(requested):
            outcome = decision.outcome(subscription_id)
            if outcome.allowed:
                self.items.append(
                    BatchItem(key, position, "ordered", order_id=order_of[subscription_id])
                )
            else:
                self._reject(request_id, csn, subscription_id, outcome.reasons)
                self.items.append(BatchItem(key, position, "rejected", tuple(outcome.reasons)))

    def _place_orders(
        self, key: str, request_id: str, decision: Decision, held: dict[str, Subscription]
    ) -> dict[str, str]:
        assert decision.preview is not None or not decision.groups
        lines = {
            line.subscription_id: line
            for line in (decision.preview.lines if decision.preview else ())
        }
        order_of: dict[str, str] = {}
        # MAN-2: one order per CSN, currency, purchase method and payment method
        for group in decision.groups:
            order_id = order_id_for(key, group)
            assert group.total is not None  # every allowed subscription has its price
            command = place_order(
                order_id=order_id,
                request_id=request_id,
                lines=[(lines[sid], held[sid]) for sid in group.subscription_ids],
                total=group.total.amount,
            )
            self.outbox.add(BILLING_COMMANDS, self._event(command, group.csn))
            self.orders.append(
                Order(order_id, request_id, group.csn, tuple(group.subscription_ids))
            )
            order_of.update(dict.fromkeys(group.subscription_ids, order_id))
            for sid in group.subscription_ids:  # what this order buys, before any charge
                reservation = Reservation(
                    subscription_id=sid, order_id=order_id, term_start=held[sid].renewal_date
                )
                self.reservations[sid] = reservation
                self.reserved.append(reservation)
        return order_of

    def _reject(
        self, request_id: str, csn: str, subscription_id: str | None, reasons: Sequence[str]
    ) -> None:
        rejected = RenewalRejected(
            request_id=request_id,
            subscription_id=subscription_id,
            reasons=list(reasons),
        )
        self.outbox.add(RENEWAL_EVENTS, self._event(rejected, csn))

    def _event(self, data: Any, csn: str) -> Any:
        return new_event(data, subject=csn, source=self.source, time=self.clock.now())
