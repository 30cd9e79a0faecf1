"""`subscription.state`: the whole state of each subscription whose state changed, announced in
the transaction that changed it (issue 14 item 2).

Triggers note every change of what the state is made of — the subscription's row, the order
holding its next term, an open quote covering it — in `state_changes` (migration 013); a write
path calls `announce_changes` once after its writes: one statement takes the noted ids, locks
each subscription, reads its state and gives it the next number of `state_versions` (migration
016), and one outbox row per subscription follows, keyed by the subscription id. A change left
unannounced fails the transaction at commit.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from services.renewal.subscriptions import (
    SUBSCRIPTION_COLUMNS,
    Subscription,
    from_row,
    save_snapshots,
)
from shared.clock import Clock
from shared.contracts.envelope import new_event
from shared.contracts.state_events import TOPIC as SUBSCRIPTION_STATE
from shared.contracts.state_events import StateStatus, SubscriptionState
from shared.db.types import DbConnection
from shared.eligibility import Policy, grace_ends
from shared.messaging.consumer import BatchEventHandler, UnitOfWork, handles_batch
from shared.messaging.outbox import Outbox

Handled = TypeVar("Handled")

# Locks in id order (as every other writer does) before taking a version: a path that changed
# only a reservation or a quote has not locked the subscription yet, and the lock orders the
# versions of one subscription as its transactions commit (migration 016). A row this
# transaction already wrote (its `xmin` ours) is held until it commits — another writer waits on
# the version it replaced — so it is read, not locked again: a lock of a row version we made
# logs a WAL record of its own and dirties its page once more (issue 19: about 2 of renewal's
# 6 row-lock records a renewal, the due-date engine's and settlement's rows).
# The noted ids are one array (`= ANY(ARRAY(…))`), probed on the primary key: as a semi-join
# (`IN (SELECT …)`), the planner sized them from `state_changes`' statistics, thousands of rows
# taken while it held many transactions' notes, and on a table of some thousand subscriptions
# (the bench's) hashed them against a sequential scan of `subscriptions`, twice an announce
# (auto_explain: a third of the announces, 217 scans of 4,450 rows in a bench run).
CHANGED_STATES = f"""
WITH changed AS (
    DELETE FROM state_changes RETURNING subscription_id
), written AS MATERIALIZED (
    SELECT s.subscription_id, {SUBSCRIPTION_COLUMNS}
    FROM subscriptions AS s
    WHERE s.subscription_id = ANY(ARRAY(SELECT subscription_id FROM changed))
      AND s.xmin = pg_current_xact_id()::xid
), locked AS MATERIALIZED (
    SELECT s.subscription_id, {SUBSCRIPTION_COLUMNS}
    FROM subscriptions AS s
    WHERE s.subscription_id = ANY(ARRAY(SELECT subscription_id FROM changed))
      AND s.xmin <> pg_current_xact_id()::xid
    ORDER BY s.subscription_id FOR UPDATE
)
SELECT b.*, nextval('state_versions') AS state_version, r.order_id AS pending_order,
    q.quote_number AS open_quote
FROM (SELECT * FROM written UNION ALL SELECT * FROM locked) AS b
LEFT JOIN term_reservations AS r USING (subscription_id)
LEFT JOIN LATERAL (
    -- The newest open quote covering it, found on the sent quotes' lines (migration 009's
    -- index). Not `ORDER BY quote_number DESC LIMIT 1` (nor `max()`, which the planner turns
    -- into it): that walked the quotes' primary key backwards through every quote, 6.7 s for 50
    -- subscriptions among a million; an ordered aggregate is only ever computed on what matched.
    SELECT (array_agg(quote_number ORDER BY quote_number DESC))[1] AS quote_number FROM quotes
    WHERE status = 'sent'
      AND lines @> jsonb_build_array(jsonb_build_object('subscription_id', b.subscription_id))
) AS q ON true
ORDER BY b.subscription_id
"""


@dataclass(frozen=True)
class StateAnnouncer:
    """What every write path needs to announce: the policy (grace) and the event's source."""

    policy: Policy
    source: str

    async def announce_changes(
        self, connection: DbConnection, outbox: Outbox, now: datetime
    ) -> int:
        """Announce every subscription whose state changed in this transaction so far;
        returns how many. Call it after the last write of the unit of work."""
        rows = await connection.fetch(CHANGED_STATES)
        for row in rows:
            state = self.state_of(from_row(row), row)
            event = new_event(state, subject=state.csn, source=self.source, time=now)
            outbox.add(SUBSCRIPTION_STATE, event, key=state.subscription_id)
        return len(rows)

    def state_of(self, subscription: Subscription, row: Any) -> SubscriptionState:
        snapshot = subscription.snapshot
        return SubscriptionState(
            subscription_id=subscription.subscription_id,
            csn=subscription.csn,
            status=status_of(subscription),
            renewal_date=subscription.renewal_date,
            grace_ends=grace_ends(subscription, self.policy),
            term=subscription.term,
            seats=subscription.seats,
            next_term=subscription.next_term,
            next_seats=subscription.next_seats,
            auto_renew=subscription.auto_renew,
            payment_method=snapshot.payment_method,
            open_quote=row["open_quote"],
            pending_order=row["pending_order"],
            version=row["state_version"],
        )


def status_of(subscription: Subscription) -> StateStatus:
    """Trial or active upstream; lapsed or expired once the due-date engine announced it for
    the current renewal date (a renewal moves the date: no longer lapsed)."""
    if subscription.snapshot.status == "trial":
        return "trial"
    if subscription.expiry_announced_for == subscription.renewal_date:
        return "expired"
    if subscription.lapse_announced_for == subscription.renewal_date:
        return "lapsed"
    return "active"


def announced(
    handler: Callable[[UnitOfWork, Handled], Awaitable[None]],
    policy: Policy,
    source: str,
    clock: Clock,
) -> Callable[[UnitOfWork, Handled], Awaitable[None]]:
    """`handler` (of one delivery or a batch), then the states it changed, in its transaction."""
    announcer = StateAnnouncer(policy, source)

    async def handle(unit: UnitOfWork, handled: Handled) -> None:
        await handler(unit, handled)
        await announcer.announce_changes(unit.connection, unit.outbox, clock.now())

    return handle


def snapshot_handler(policy: Policy, source: str, clock: Clock) -> BatchEventHandler:
    """A batch of `subscription.upserted` stored (`save_snapshots`), and the states it changed
    announced: one statement each for the whole batch, however many snapshots it holds."""
    return handles_batch(announced(save_snapshots, policy, source, clock))
