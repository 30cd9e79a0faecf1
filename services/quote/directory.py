"""The subscriptions the quote service decides and prices quotes for: the subscription system's
snapshots, with the renewal dates, terms and seats that renewals move (`subscription.renewed`)."""

from __future__ import annotations

import json
from collections.abc import Iterable

from shared import eligibility
from shared.contracts.renewal_events import SubscriptionRenewed
from shared.contracts.subscription_events import SubscriptionUpserted
from shared.db.types import DbConnection
from shared.messaging.consumer import Delivery, UnitOfWork
from shared.test_clocks import save_time_zones


async def save_snapshot(unit: UnitOfWork, delivery: Delivery) -> None:
    data: SubscriptionUpserted = delivery.data
    await save_time_zones(unit.connection, [data])
    await unit.connection.execute(
        """INSERT INTO subscriptions (subscription_id, revision, csn, snapshot, renewal_date,
                                      term, seats)
           VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7)
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


async def follow_renewal(unit: UnitOfWork, delivery: Delivery) -> None:
    renewed: SubscriptionRenewed = delivery.data
    await unit.connection.execute(
        "UPDATE subscriptions SET renewal_date = $2, term = $3, seats = $4"
        " WHERE subscription_id = $1 AND renewal_date < $2",
        renewed.subscription_id,
        renewed.renewal_date,
        renewed.term,
        renewed.seats,
    )


async def subscriptions(
    connection: DbConnection, subscription_ids: Iterable[str]
) -> dict[str, tuple[SubscriptionUpserted, eligibility.Subscription]]:
    """The snapshot and the eligibility package's view of each subscription found."""
    rows = await connection.fetch(
        "SELECT snapshot::text AS snapshot, renewal_date, term, seats FROM subscriptions"
        " WHERE subscription_id = ANY($1::text[])",
        sorted(set(subscription_ids)),
    )
    found = {}
    for row in rows:
        snapshot = SubscriptionUpserted.model_validate_json(row["snapshot"])
        fields = json.loads(snapshot.model_dump_json())
        fields.update(
            renewal_date=row["renewal_date"].isoformat(), term=row["term"], seats=row["seats"]
        )
        found[snapshot.subscription_id] = (snapshot, eligibility.subscription_from_dict(fields))
    return found
