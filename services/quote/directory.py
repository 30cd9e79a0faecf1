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
from shared.newest import newest_per_subscription
from shared.state_following import FOLLOW as FOLLOW_STATES
from shared.state_following import followed_subscription, newest_states, state_from_column
from shared.test_clocks import save_time_zones

Held = dict[str, tuple[SubscriptionUpserted, eligibility.Subscription]]
"""The subscriptions found, by id: each one's snapshot and the eligibility package's view."""


async def _save_snapshots(
    unit: UnitOfWork, deliveries: list[Delivery[SubscriptionUpserted]]
) -> None:
    """The newest snapshot of each subscription of the batch, in two statements whatever its
    size (issue 19 item 4): the CSNs' zones first (the subscriptions take theirs on insert)."""
    # Every snapshot, in order: the last to name a CSN gives its zone, as one by one.
    await save_time_zones(unit.connection, [delivery.data for delivery in deliveries])
    newest = newest_per_subscription((d.data for d in deliveries), lambda s: s.revision)
    snapshots = [newest[sid] for sid in sorted(newest)]  # locked in id order, as states are
    # A state renewal published before the snapshot came keeps its date, term and seats. The
    # snapshot is kept apart (migration 012), written only where the subscription's row took
    # the newer revision: each row is locked before its snapshot, in id order.
    await unit.connection.execute(
        """WITH u AS (
               SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[],
                                    $5::date[], $6::text[], $7::int[])
                   WITH ORDINALITY AS u(subscription_id, revision, csn, snapshot,
                                        renewal_date, term, seats, n)),
           saved AS (
               INSERT INTO subscriptions (subscription_id, revision, csn, renewal_date, term,
                                          seats)
               SELECT u.subscription_id, u.revision, u.csn,
                      COALESCE((f.state ->> 'renewal_date')::date, u.renewal_date),
                      COALESCE(f.state ->> 'term', u.term),
                      COALESCE((f.state ->> 'seats')::int, u.seats)
               FROM u LEFT JOIN subscription_states AS f USING (subscription_id)
               ORDER BY u.n
               ON CONFLICT (subscription_id) DO UPDATE SET revision = EXCLUDED.revision,
                   csn = EXCLUDED.csn
               WHERE subscriptions.revision < EXCLUDED.revision
               RETURNING subscription_id)
           INSERT INTO subscription_snapshots AS k (subscription_id, snapshot)
           SELECT u.subscription_id, u.snapshot::jsonb FROM u JOIN saved USING (subscription_id)
           ORDER BY u.n
           ON CONFLICT (subscription_id) DO UPDATE SET snapshot = EXCLUDED.snapshot""",
        [s.subscription_id for s in snapshots],
        [s.revision for s in snapshots],
        [s.csn for s in snapshots],
        [s.model_dump_json() for s in snapshots],
        [s.renewal_date for s in snapshots],
        [s.term for s in snapshots],
        [s.seats for s in snapshots],
    )


save_snapshot: BatchEventHandler = handles_batch(_save_snapshots)
"""`subscription.upserted`: the newest snapshot of each subscription of the batch kept."""


# The newest version of each subscription kept where it changes what quote reads, by
# shared/state_following.py's FOLLOW (issue 19 item 3: `read_by_followers`, why a version passed
# by is never needed); then, in the same statement, the claim's columns, where they moved.
FOLLOW = f"""
WITH kept AS ({FOLLOW_STATES})
UPDATE subscriptions AS s SET renewal_date = k.renewal_date, term = k.term, seats = k.seats
FROM kept AS k
WHERE s.subscription_id = k.subscription_id
  AND (s.renewal_date, s.term, s.seats) IS DISTINCT FROM (k.renewal_date, k.term, k.seats)
"""


async def _follow(unit: UnitOfWork, deliveries: list[Delivery[SubscriptionState]]) -> None:
    await unit.connection.execute(FOLLOW, newest_states(deliveries))


follow_state: BatchEventHandler = handles_batch(_follow)
"""`subscription.state`: the newest state of each subscription kept where quote reads a change,
its columns moved where they changed: one statement a batch."""


async def subscriptions(connection: DbConnection, subscription_ids: Iterable[str]) -> Held:
    """The snapshot and the eligibility package's view of each subscription found."""
    rows = await connection.fetch(
        "SELECT k.snapshot::text AS snapshot, s.renewal_date, s.term, s.seats,"
        " f.state::text AS state FROM subscriptions AS s"
        " JOIN subscription_snapshots AS k USING (subscription_id)"
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
