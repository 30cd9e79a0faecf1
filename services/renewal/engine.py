"""The due-date engine: on each CSN's clock, what happens when a renewal date comes.

Every few seconds it claims, in batches (`FOR UPDATE SKIP LOCKED`: replicas share the work,
never do it twice), the subscriptions whose renewal date has come on their CSN's clock:
- auto-renew on with a valid recurring payment method (AUTO-1) → one order to billing for the
  term, at the renewal price (PRICE-1); `auto_renewals` holds one order per subscription and
  renewal date, so a term is never charged twice; billing's `payment.succeeded` then renews it
  (services/renewal/payments.py);
- not renewed by its renewal date → `subscription.lapsed` (LIFE-2), once;
- still not renewed the day after grace ends (WIN-2) → `subscription.expired` (LIFE-3), once.
After downtime it simply catches up: every step is recorded against the renewal date it was for.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import date
from typing import Any

import asyncpg

from services.renewal.subscriptions import Subscription, from_row, record_history, to_domain
from shared.catalog.store import load_prices
from shared.clock import Clock
from shared.contracts.billing_commands import TOPIC as BILLING_COMMANDS
from shared.contracts.billing_commands import PlaceOrder
from shared.contracts.billing_events import OrderLine
from shared.contracts.envelope import EventData, new_event
from shared.contracts.renewal_events import TOPIC as RENEWAL_EVENTS
from shared.contracts.renewal_events import SubscriptionExpired, SubscriptionLapsed
from shared.db.types import DbConnection
from shared.eligibility import (
    Policy,
    Price,
    expires_on,
    find_price,
    grace_ends,
    renewal_unit_price,
    renews_automatically,
    round_money,
)
from shared.messaging.consumer import INFRASTRUCTURE_ERRORS
from shared.messaging.outbox import Outbox

log = logging.getLogger(__name__)

AUTO_ORDER_NAMESPACE = uuid.UUID("0b7e3f51-9c2d-4e8a-a6f4-5d1c2b3a4e90")

DUE = """
SELECT s.snapshot::text AS snapshot, s.renewal_date, s.term, s.seats, s.auto_renew,
       s.lapse_announced_for, s.expiry_announced_for,
       COALESCE(c.today, $1) AS today, a.order_id AS auto_order_id, o.status AS auto_order_status
FROM subscriptions AS s
LEFT JOIN test_clocks AS c ON c.csn = s.csn
LEFT JOIN auto_renewals AS a
       ON a.subscription_id = s.subscription_id AND a.renewal_date = s.renewal_date
LEFT JOIN orders AS o ON o.order_id = a.order_id
WHERE s.renewal_date <= COALESCE(c.today, $1)
  AND s.expiry_announced_for IS DISTINCT FROM s.renewal_date
  AND CASE WHEN s.next_check_for = s.renewal_date THEN s.next_check_on ELSE s.renewal_date END
      <= COALESCE(c.today, $1)
ORDER BY s.renewal_date
LIMIT $2
FOR UPDATE OF s SKIP LOCKED
"""


def auto_order_id(subscription_id: str, renewal_date: date) -> str:
    return str(uuid.uuid5(AUTO_ORDER_NAMESPACE, f"{subscription_id}|{renewal_date.isoformat()}"))


class DueDateEngine:
    def __init__(
        self,
        pool: asyncpg.Pool,
        clock: Clock,
        policy: Policy,
        *,
        source: str,
        batch_size: int,
        interval_seconds: float,
    ) -> None:
        self.pool = pool
        self.clock = clock
        self.policy = policy
        self.source = source
        self.batch_size = batch_size
        self.interval_seconds = interval_seconds

    async def run(self) -> None:
        while True:
            try:
                worked = await self.run_once()
            except INFRASTRUCTURE_ERRORS as error:
                log.warning("due-date engine failed, retrying", extra={"error": repr(error)})
                worked = 0
            except Exception:
                log.exception("due-date engine failed, retrying")
                worked = 0
            if worked < self.batch_size:
                await asyncio.sleep(self.interval_seconds)

    async def run_once(self) -> int:
        """One claim: up to `batch_size` due subscriptions, handled in one transaction."""
        async with self.pool.acquire() as connection, connection.transaction():
            rows = await connection.fetch(DUE, self.clock.today(), self.batch_size)
            if not rows:
                return 0
            step = EngineStep(self, [(from_row(row), row) for row in rows])
            await step.decide(connection)
            await step.save(connection)
            return len(rows)


class EngineStep:
    """What one claim does: orders to ask for, lapses and expiries to announce."""

    def __init__(self, engine: DueDateEngine, due: list[tuple[Subscription, Any]]) -> None:
        self.engine = engine
        self.due = due
        self.outbox = Outbox()
        self.now = engine.clock.now()
        self.auto_orders: list[tuple[str, date, str, Any]] = []
        self.orders: list[tuple[str, None, str, list[str]]] = []
        self.checks: list[tuple[str, date | None, date | None, date, date]] = []
        self.history: list[tuple[Any, ...]] = []

    async def decide(self, connection: DbConnection) -> None:
        products = {s.snapshot.product_code for s, _ in self.due}
        prices = [Price(**vars(p)) for p in await load_prices(connection, products)]
        for subscription, row in self.due:
            self._decide_one(subscription, row["today"], row, prices)

    def _decide_one(
        self, subscription: Subscription, today: date, row: Any, prices: list[Price]
    ) -> None:
        policy = self.engine.policy
        domain = to_domain(subscription)
        renewal_date = subscription.renewal_date
        if row["auto_order_status"] == "requested":
            return  # its automatic renewal is being charged: billing's answer decides
        if (
            row["auto_order_id"] is None
            and today <= grace_ends(domain, policy)
            and renews_automatically(domain, policy)  # AUTO-1
            and self._order_renewal(subscription, prices)
        ):
            return
        lapse_for = subscription.lapse_announced_for
        expiry_for = subscription.expiry_announced_for
        next_check = renewal_date
        if lapse_for != renewal_date:  # LIFE-2: not renewed by its renewal date
            lapse_for = renewal_date
            self._announce(
                SubscriptionLapsed(
                    subscription_id=subscription.subscription_id,
                    renewal_date=renewal_date,
                    grace_ends=grace_ends(domain, policy),
                ),
                subscription,
                "lapsed",
            )
            next_check = expires_on(domain, policy)
        if today >= expires_on(domain, policy):  # LIFE-3: the day after grace ends
            expiry_for = renewal_date
            self._announce(
                SubscriptionExpired(
                    subscription_id=subscription.subscription_id,
                    renewal_date=renewal_date,
                    expired_on=expires_on(domain, policy),
                ),
                subscription,
                "expired",
            )
        else:
            next_check = expires_on(domain, policy)
        self.checks.append(
            (subscription.subscription_id, lapse_for, expiry_for, next_check, renewal_date)
        )

    def _order_renewal(self, subscription: Subscription, prices: list[Price]) -> bool:
        snapshot = subscription.snapshot
        price = find_price(prices, snapshot.product_code, subscription.term, snapshot.currency)
        if price is None:
            log.warning(
                "no price for an automatic renewal: it will lapse",
                extra={"subscription_id": subscription.subscription_id},
            )
            return False
        unit = renewal_unit_price(price, self.engine.policy)
        amount = round_money(unit * subscription.seats, snapshot.currency)
        order_id = auto_order_id(subscription.subscription_id, subscription.renewal_date)
        line = OrderLine(
            subscription_id=subscription.subscription_id,
            product_code=snapshot.product_code,
            product_name=snapshot.product_name,
            term=subscription.term,
            seats=subscription.seats,
            unit_price=round_money(unit, snapshot.currency),
            amount=amount,
        )
        order = PlaceOrder(
            request_id=None,
            order_id=order_id,
            csn=snapshot.csn,
            currency=snapshot.currency,
            purchase_method=snapshot.purchase_method,
            payment_method=snapshot.payment_method,
            lines=[line],
            total=amount,
        )
        self.outbox.add(BILLING_COMMANDS, self._event(order, snapshot.csn))
        self.auto_orders.append(
            (subscription.subscription_id, subscription.renewal_date, order_id, self.now)
        )
        self.orders.append((order_id, None, snapshot.csn, [subscription.subscription_id]))
        self.history.append(
            (
                subscription.subscription_id,
                self.now,
                "auto_renewal_ordered",
                {"order_id": order_id, "renewal_date": subscription.renewal_date, "total": amount},
                None,
                None,
                None,
            )
        )
        return True

    def _announce(self, event: EventData, subscription: Subscription, change: str) -> None:
        self.outbox.add(RENEWAL_EVENTS, self._event(event, subscription.csn))
        self.history.append(
            (
                subscription.subscription_id,
                self.now,
                change,
                {"renewal_date": subscription.renewal_date},
                None,
                None,
                None,
            )
        )

    def _event(self, data: EventData, csn: str) -> Any:
        return new_event(data, subject=csn, source=self.engine.source, time=self.now)

    async def save(self, connection: DbConnection) -> None:
        if self.auto_orders:
            await connection.copy_records_to_table(
                "auto_renewals",
                records=self.auto_orders,
                columns=["subscription_id", "renewal_date", "order_id", "created_at"],
            )
            await connection.copy_records_to_table(
                "orders",
                records=self.orders,
                columns=["order_id", "request_id", "csn", "subscription_ids"],
            )
        if self.checks:
            await connection.execute(
                """UPDATE subscriptions AS s SET lapse_announced_for = u.lapse_for,
                       expiry_announced_for = u.expiry_for, next_check_on = u.next_check,
                       next_check_for = u.renewal_date, updated_at = now()
                   FROM unnest($1::text[], $2::date[], $3::date[], $4::date[], $5::date[])
                       AS u(subscription_id, lapse_for, expiry_for, next_check, renewal_date)
                   WHERE s.subscription_id = u.subscription_id""",
                *(list(column) for column in zip(*self.checks, strict=True)),
            )
        await record_history(connection, self.history)
        await self.outbox.flush(connection)
