"""The subscriptions the quote service decides and prices quotes for: the subscription system's
snapshots, with what renewal owns of them as its `subscription.state` says (dates, term, seats,
what the next renewal buys, auto-renew: shared/state_following.py)."""

from __future__ import annotations

from collections.abc import Iterable

from shared import eligibility
from shared.contracts.state_events import SubscriptionState
from shared.contracts.subscription_events import SubscriptionUpserted
from shared.db.types import DbConnection
from shared.messaging.consumer import BatchEventHandler, Delivery, UnitOfWork, handles_batch
from shared.state_following import follow_states, followed_subscription, state_from_column
from shared.test_clocks import save_time_zones

Held = dict[str, tuple[SubscriptionUpserted, eligibility.Subscription]]
"""The subscriptions found, by id: each one's snapshot and the eligibility package's view."""


async def save_snapshot(unit: UnitOfWork, delivery: Delivery[SubscriptionUpserted]) -> None:
    data = delivery.data
    await save_time_zones(unit.connection, [data])
    # A state renewal published before the snapshot came keeps its date, term and seats.
    await unit.connection.execute(
        """INSERT INTO subscriptions (subscription_id, revision, csn, snapshot, renewal_date,
                                      term, seats)
           SELECT $1, $2, $3, $4::jsonb, COALESCE((f.state ->> 'renewal_date')::date, $5),
                  COALESCE(f.state ->> 'term', $6), COALESCE((f.state ->> 'seats')::int, $7)
           FROM (SELECT 1) AS one
           LEFT JOIN subscription_states AS f ON f.subscription_id = $1
           ON CONFLICT (subscription_id) DO UPDATE SET revision = EXCLUDED.revision,
               csn = EXCLUDED.csn, snapshot = EXCLUDED.snapshot
           WHERE subscriptions.revision < EXCLUDED.revision""",
        data.subscription_id,
        data.revision,
        data.csn,
        data.model_dump_json(),
        data.renewal_date,
        data.term,
        data.seats,
    )


async def _follow(unit: UnitOfWork, deliveries: list[Delivery[SubscriptionState]]) -> None:
    taken = await follow_states(unit.connection, deliveries)
    if taken:
        await unit.connection.execute(
            """UPDATE subscriptions AS s SET renewal_date = u.renewal_date, term = u.term,
                   seats = u.seats
               FROM unnest($1::text[], $2::date[], $3::text[], $4::int[])
                   AS u(subscription_id, renewal_date, term, seats)
               WHERE s.subscription_id = u.subscription_id""",
            [row["subscription_id"] for row in taken],
            [row["renewal_date"] for row in taken],
            [row["term"] for row in taken],
            [row["seats"] for row in taken],
        )


follow_state: BatchEventHandler = handles_batch(_follow)
"""`subscription.state`: the newest state of each subscription kept, its columns moved."""


async def subscriptions(connection: DbConnection, subscription_ids: Iterable[str]) -> Held:
    """The snapshot and the eligibility package's view of each subscription found."""
    rows = await connection.fetch(
        "SELECT s.snapshot::text AS snapshot, s.renewal_date, s.term, s.seats,"
        " f.state::text AS state FROM subscriptions AS s"
        " LEFT JOIN subscription_states AS f USING (subscription_id)"
        " WHERE s.subscription_id = ANY($1::text[])",
        sorted(set(subscription_ids)),
    )
    found: Held = {}
    for row in rows:
        snapshot = SubscriptionUpserted.model_validate_json(row["snapshot"])
        stored = {}
        if row["state"] is None:  # before renewal's first state: the columns as stored
            stored = {
                "renewal_date": row["renewal_date"].isoformat(),
                "term": row["term"],
                "seats": row["seats"],
            }
        state = state_from_column(row["state"])
        found[snapshot.subscription_id] = (
            snapshot,
            followed_subscription(snapshot, state, **stored),
        )
    return found
