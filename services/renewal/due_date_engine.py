"""The due-date engine: on each CSN's clock, what happens when a renewal date comes.

Every few seconds it claims, in batches (`FOR UPDATE SKIP LOCKED`: replicas share the work,
never do it twice), the subscriptions whose renewal date has come on their CSN's clock:
- auto-renew on with a valid recurring payment method (AUTO-1) → one order to billing for the
  term, at the renewal price (PRICE-1); `auto_renewals` records each try per subscription and
  renewal date, one at a time, so a term is never charged twice; billing's `payment.succeeded`
  then renews it (services/renewal/settlement.py); a failed charge is tried again on the policy's
  schedule (`payment_retry_days_after`, inside grace);
- not renewed by its renewal date → `subscription.lapsed` (LIFE-2), once;
- still not renewed the day after grace ends (WIN-2) → `subscription.expired` (LIFE-3), once.
After downtime it simply catches up: every step is recorded against the renewal date it was for.
A claim reads only what is due: the subscriptions whose next look (`NEXT_CHECK`) came, on an
index of the instant it comes (`DUE_AT`), on each CSN's clock (shared/db/due_claims.py); the open quotes of AUTO-5 only for
the subscriptions claimed (issue 19 item 2).
It runs as a `WorkLoop`, woken by the NOTIFY of whatever makes a subscription due (a CSN's clock
moved, a subscription stored already due: migration 018) and polling as a fallback; a subscription whose decision raises (a price that breaks rounding) is
worked alone and parked (`parked_items`, loop `due_date_engine`), and the others go on.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

from services.renewal import released_orders
from services.renewal.background import RenewalLoop
from services.renewal.billing_orders import place_order
from services.renewal.reservations import release_subscriptions, reserve
from services.renewal.state import StateAnnouncer
from services.renewal.store import (
    AutoRenewalTry,
    NextLook,
    Order,
    save_auto_renewal_tries,
    save_next_looks,
    save_orders,
)
from services.renewal.subscriptions import (
    SUBSCRIPTION_COLUMNS,
    Subscription,
    from_row,
    record_history,
    to_domain,
)
from shared.catalog.store import load_prices
from shared.contracts.billing_commands import TOPIC as BILLING_COMMANDS
from shared.contracts.envelope import EventData, new_event
from shared.contracts.renewal_events import TOPIC as RENEWAL_EVENTS
from shared.contracts.renewal_events import SubscriptionExpired, SubscriptionLapsed
from shared.db.due_claims import claim_on_each_clock
from shared.db.types import DbConnection
from shared.eligibility import (
    AutomaticOrder,
    Price,
    Reservation,
    decide_due_date,
    expires_on,
    grace_ends,
)
from shared.messaging import tracing
from shared.messaging.loops import WorkLoop
from shared.messaging.outbox import Outbox
from shared.messaging.parking import IsolatingClaims, not_parked
from shared.plumbing.faults import ENGINE_AFTER_COMMIT, ENGINE_BEFORE_COMMIT
from shared.plumbing.metrics import DUE_DATE_ENGINE

log = logging.getLogger(__name__)

AUTO_ORDER_NAMESPACE = uuid.UUID("0b7e3f51-9c2d-4e8a-a6f4-5d1c2b3a4e90")
LOOP = "due_date_engine"

# When the engine looks at a subscription next: its renewal date, or the day it chose when it
# last looked for that renewal date (a renewal moves the date, and the pair no longer matches).
# The claim's index key (migration 009): a claim reads what is due, not the table.
NEXT_CHECK = (
    "CASE WHEN s.next_check_for = s.renewal_date THEN s.next_check_on ELSE s.renewal_date END"
)
# The instant that day comes in the CSN's time zone (the subscription's copy of it): the key of
# the claim's index for the CSNs on the system's clock (migration 014), read up to now.
DUE_AT = f"local_midnight({NEXT_CHECK}, s.time_zone)"
# The latest automatic renewal try for the subscription's renewal date, and its order's status.
LAST_TRY = """LEFT JOIN LATERAL (
    SELECT a.attempt, o.status FROM auto_renewals AS a JOIN orders AS o USING (order_id)
    WHERE a.subscription_id = s.subscription_id AND a.renewal_date = s.renewal_date
    ORDER BY a.attempt DESC LIMIT 1
) AS last ON true"""


def _due(rows: str, today: str) -> str:
    return f"""SELECT s.subscription_id, {SUBSCRIPTION_COLUMNS}, {today} AS today,
           last.attempt AS last_attempt,
           last.status AS last_status, r.order_id AS reserved_by, r.term_start AS reserved_from
    FROM {rows}
    LEFT JOIN term_reservations AS r ON r.subscription_id = s.subscription_id
    {LAST_TRY}
    -- (every next look the engine picks is after the renewal date: that date has come too)
    WHERE {NEXT_CHECK} <= {today}
      AND s.expiry_announced_for IS DISTINCT FROM s.renewal_date
      -- a charge in flight: billing's answer decides, and the claim stays free for the others
      AND last.status IS DISTINCT FROM 'requested'
      AND {not_parked(LOOP, "s.subscription_id")}
      AND ($3::text IS NULL OR s.subscription_id = $3)  -- one subscription alone (isolating)"""


# $1 the clock's now (each CSN's today is the date there in its time zone), $2 how many, $3 one
# subscription alone (or NULL).
DUE = claim_on_each_clock(
    _due,
    key=NEXT_CHECK,
    limit="$2",
    zoned_bound=f"{NEXT_CHECK} <=",
    due_at=DUE_AT,
    csn_collation="C",  # the probe of each test clock on subscriptions_csn_next_check (014)
    # AUTO-5: the open quotes' lines for each claimed subscription (eligibility decides if they
    # hold the automatic renewal back: only one that changes what the renewal buys does). The
    # containment test finds its quotes on the index of sent quotes' lines (migration 009).
    then="""SELECT claimed.*,
       (SELECT jsonb_agg(jsonb_build_array(l ->> 'term', (l ->> 'seats')::int))::text
        FROM quotes AS q CROSS JOIN jsonb_array_elements(q.lines) AS l
        WHERE q.status = 'sent'
          AND q.lines @> jsonb_build_array(
              jsonb_build_object('subscription_id', claimed.subscription_id))
          AND l ->> 'subscription_id' = claimed.subscription_id) AS quoted
FROM claimed
ORDER BY claimed.renewal_date""",
)


def wake_channel(schema: str) -> str:
    """Where the transactions that make something due notify the engine (migration 018)."""
    return f"{schema}_due_date_engine"


def auto_order_id(subscription_id: str, renewal_date: date, attempt: int) -> str:
    key = f"{subscription_id}|{renewal_date.isoformat()}|{attempt}"
    return str(uuid.uuid5(AUTO_ORDER_NAMESPACE, key))


@dataclass(eq=False, kw_only=True)
class DueDateEngine(RenewalLoop):
    batch_size: int
    interval_seconds: float
    schema: str | None = None  # to LISTEN in (None: poll only)

    def __post_init__(self) -> None:
        self.claims = IsolatingClaims(self.pool, "renewal", LOOP, self.run_once)

    def work_loop(self) -> WorkLoop:
        return WorkLoop(
            LOOP,
            self.step,
            service="renewal",
            poll_seconds=self.interval_seconds,
            pool=self.pool,
            channel=wake_channel(self.schema) if self.schema else None,
        )

    async def step(self) -> int:
        """One claim, its failing subscriptions parked (shared/messaging/parking.py)."""
        return await self.claims.step()

    async def run_once(self, only: str | None = None) -> int:
        """One claim: up to `batch_size` due subscriptions (or `only` that one), handled in one
        transaction."""
        async with self.pool.acquire() as connection, connection.transaction():
            rows = await connection.fetch(DUE, self.clock.now(), self.batch_size, only)
            if not rows:
                return 0
            self.claims.took(row["subscription_id"] for row in rows)
            step = EngineStep(self, [(from_row(row), row) for row in rows])
            await step.decide(connection)
            await step.save(connection)
            self.faults.hit(ENGINE_BEFORE_COMMIT)
        self.faults.hit(ENGINE_AFTER_COMMIT)
        step.count()  # once committed
        return len(rows)


class EngineStep:
    """What one claim does: orders to ask for, lapses and expiries to announce."""

    def __init__(self, engine: DueDateEngine, due: list[tuple[Subscription, Any]]) -> None:
        self.engine = engine
        self.due = due
        self.outbox = Outbox()
        self.now = engine.clock.now()
        self.tries: list[AutoRenewalTry] = []
        self.orders: list[Order] = []
        self.looks: list[NextLook] = []
        self.history: list[tuple[Any, ...]] = []
        self.reserved: list[Reservation] = []
        self.expired: list[str] = []

    async def decide(self, connection: DbConnection) -> None:
        products = {s.snapshot.product_code for s, _ in self.due}
        prices = await load_prices(connection, products)
        for subscription, row in self.due:
            # One trace per decision: its order, lapse or expiry and what they cause share it.
            with tracing.decision():
                self._decide_one(subscription, row["today"], row, prices)

    def _decide_one(
        self, subscription: Subscription, today: date, row: Any, prices: list[Price]
    ) -> None:
        policy = self.engine.policy
        domain = to_domain(subscription)
        renewal_date = subscription.renewal_date
        held = (
            Reservation(
                subscription_id=subscription.subscription_id,
                order_id=row["reserved_by"],
                term_start=row["reserved_from"],
            )
            if row["reserved_by"] is not None
            else None
        )
        decision = decide_due_date(
            domain,
            today,
            policy,
            last_attempt=row["last_attempt"] or 0,
            reservation=held,
            quoted=json.loads(row["quoted"] or "[]"),
            prices=prices,
            lapse_announced=subscription.lapse_announced_for == renewal_date,
        )
        if decision.unpriced:
            log.warning(
                "no price for an automatic renewal: it will lapse",
                extra={"subscription_id": subscription.subscription_id},
            )
        if decision.order is not None:
            self._order_renewal(subscription, decision.order)
        lapse_for = subscription.lapse_announced_for
        expiry_for = subscription.expiry_announced_for
        if decision.announce_lapse:
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
        if decision.announce_expiry:
            expiry_for = renewal_date
            self.expired.append(subscription.subscription_id)  # LIFE-5: nothing revives it
            self._announce(
                SubscriptionExpired(
                    subscription_id=subscription.subscription_id,
                    renewal_date=renewal_date,
                    expired_on=expires_on(domain, policy),
                ),
                subscription,
                "expired",
            )
        self.looks.append(
            NextLook(
                subscription_id=subscription.subscription_id,
                renewal_date=renewal_date,
                next_check_on=decision.next_look,
                lapse_announced_for=lapse_for,
                expiry_announced_for=expiry_for,
            )
        )

    def _order_renewal(self, subscription: Subscription, order: AutomaticOrder) -> None:
        snapshot = subscription.snapshot
        renewal_date = subscription.renewal_date
        order_id = auto_order_id(subscription.subscription_id, renewal_date, order.attempt)
        placed = place_order(
            order_id=order_id,
            request_id=None,
            lines=[(order.line, subscription)],
            total=order.line.amount,
            next_retry_on=order.next_retry_on,
        )
        self.outbox.add(BILLING_COMMANDS, self._event(placed, snapshot.csn))
        self.tries.append(
            AutoRenewalTry(subscription.subscription_id, renewal_date, order.attempt, order_id)
        )
        self.orders.append(Order(order_id, None, snapshot.csn, (subscription.subscription_id,)))
        self.reserved.append(
            Reservation(
                subscription_id=subscription.subscription_id,
                order_id=order_id,
                term_start=renewal_date,
            )
        )
        self._record(
            subscription,
            "auto_renewal_ordered",
            order_id=order_id,
            attempt=order.attempt,
            total=order.line.amount,
        )

    def _announce(self, event: EventData, subscription: Subscription, change: str) -> None:
        self.outbox.add(RENEWAL_EVENTS, self._event(event, subscription.csn))
        self._record(subscription, change)

    def _record(self, subscription: Subscription, change: str, **detail: Any) -> None:
        """The audit trail's row: for the renewal date looked at; no actor, request or event
        caused it (the engine's clock did)."""
        detail = {"renewal_date": subscription.renewal_date, **detail}
        self.history.append(
            (subscription.subscription_id, self.now, change, detail, None, None, None)
        )

    def _event(self, data: EventData, csn: str) -> Any:
        return new_event(data, subject=csn, source=self.engine.source, time=self.now)

    def count(self) -> None:
        for change in ("auto_renewal_ordered", "lapsed", "expired"):
            done = sum(1 for row in self.history if row[2] == change)
            if done:
                DUE_DATE_ENGINE.labels("renewal", change).inc(done)

    async def save(self, connection: DbConnection) -> None:
        await save_auto_renewal_tries(connection, self.tries, self.now)
        await save_orders(connection, self.orders)
        await reserve(connection, self.reserved, self.now)
        # An order still open for an expired subscription can no longer take effect: its money,
        # should it arrive, goes back (services/renewal/settlement.py); whoever waits for it
        # is answered now (released_orders.py).
        released = await release_subscriptions(connection, self.expired)
        await released_orders.answer_expired(
            connection,
            self.outbox,
            released,
            clock=self.engine.clock,
            source=self.engine.source,
            now=self.now,
        )
        await save_next_looks(connection, self.looks)
        await record_history(connection, self.history)
        await StateAnnouncer(self.engine.policy, self.engine.source).announce_changes(
            connection, self.outbox, self.now
        )
        await self.outbox.flush(connection)
