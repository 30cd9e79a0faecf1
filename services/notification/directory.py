"""The notification service's directory: who the buyer of a subscription is and what it renews
on — kept from the events, in notification's own schema."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from shared import eligibility
from shared.contracts.common import Person
from shared.contracts.state_events import SubscriptionState
from shared.contracts.subscription_events import SubscriptionUpserted
from shared.db.types import DbConnection
from shared.messaging.consumer import BatchEventHandler, Delivery, UnitOfWork, handles_batch
from shared.state_following import follow_states
from shared.test_clocks import save_time_zones


@dataclass(frozen=True)
class Contact:
    subscription_id: str
    csn: str
    snapshot: SubscriptionUpserted
    renewal_date: date

    @property
    def recipient(self) -> Person:
        """Who the subscription's emails go to (ROLE-3), as eligibility decides."""
        return eligibility.email_recipient(self.snapshot)


class UnknownSubscriptionError(LookupError):
    """An event about a subscription the directory has not seen yet (its snapshot travels on
    another topic): retried, then dead-lettered for an operator to replay."""


def save_snapshots(today_of: Any) -> BatchEventHandler:
    async def save(unit: UnitOfWork, deliveries: list[Delivery]) -> None:
        latest: dict[str, SubscriptionUpserted] = {}
        for delivery in deliveries:
            data: SubscriptionUpserted = delivery.data
            held = latest.get(data.subscription_id)
            if held is None or held.revision < data.revision:
                latest[data.subscription_id] = data
        csns = {s.csn for s in latest.values()}
        await save_time_zones(unit.connection, latest.values())  # before today: it reads them
        today = await today_of(unit.connection, csns)
        await unit.connection.execute(
            """INSERT INTO subscriptions (subscription_id, revision, csn, snapshot, renewal_date,
                                          reminders_after)
               SELECT u.subscription_id, u.revision, u.csn, u.snapshot,
                      -- a state renewal published before the snapshot came keeps its date
                      COALESCE((f.state ->> 'renewal_date')::date, u.renewal_date),
                      u.reminders_after
               FROM jsonb_to_recordset($1::jsonb) AS u(subscription_id text, revision bigint,
                   csn text, snapshot jsonb, renewal_date date, reminders_after date)
               LEFT JOIN subscription_states AS f USING (subscription_id)
               ON CONFLICT (subscription_id) DO UPDATE SET revision = EXCLUDED.revision,
                   csn = EXCLUDED.csn, snapshot = EXCLUDED.snapshot, updated_at = now()
               WHERE subscriptions.revision < EXCLUDED.revision""",
            json.dumps(
                [
                    {
                        "subscription_id": s.subscription_id,
                        "revision": s.revision,
                        "csn": s.csn,
                        "snapshot": s.model_dump(mode="json"),
                        "renewal_date": s.renewal_date.isoformat(),
                        "reminders_after": today[s.csn].isoformat(),
                    }
                    for s in latest.values()
                ]
            ),
        )

    return handles_batch(save)


async def _follow(unit: UnitOfWork, deliveries: list[Delivery]) -> None:
    taken = await follow_states(unit.connection, deliveries)
    if taken:
        # The reminders count from the date renewal holds (a renewal, an alignment). A date
        # moved forward (renewed) is reminded of only after the old one: the reminders of the
        # term just paid for are not sent again for the next. The only writer of these
        # columns: `subscription.renewed` carries the same dates and is not followed twice.
        await unit.connection.execute(
            """UPDATE subscriptions AS s SET renewal_date = u.renewal_date,
                   reminders_after = CASE WHEN u.renewal_date > s.renewal_date
                       THEN GREATEST(s.reminders_after, s.renewal_date)
                       ELSE s.reminders_after END,
                   updated_at = now()
               FROM unnest($1::text[], $2::date[]) AS u(subscription_id, renewal_date)
               WHERE s.subscription_id = u.subscription_id
                 AND s.renewal_date IS DISTINCT FROM u.renewal_date""",
            [row["subscription_id"] for row in taken],
            [row["renewal_date"] for row in taken],
        )


follow_state: BatchEventHandler = handles_batch(_follow)
"""`subscription.state`: the newest state of each subscription kept, its renewal date moved."""


async def states(
    connection: DbConnection, subscription_ids: Iterable[str]
) -> dict[str, SubscriptionState]:
    """Renewal's newest state of each subscription that has one."""
    rows = await connection.fetch(
        "SELECT subscription_id, state::text AS state FROM subscription_states"
        " WHERE subscription_id = ANY($1::text[])",
        sorted(set(subscription_ids)),
    )
    return {
        row["subscription_id"]: SubscriptionState.model_validate_json(row["state"]) for row in rows
    }


async def contacts(connection: DbConnection, subscription_ids: Iterable[str]) -> dict[str, Contact]:
    wanted = sorted(set(subscription_ids))
    rows = await connection.fetch(
        "SELECT subscription_id, csn, snapshot::text AS snapshot, renewal_date FROM subscriptions"
        " WHERE subscription_id = ANY($1::text[])",
        wanted,
    )
    found = {
        row["subscription_id"]: Contact(
            row["subscription_id"],
            row["csn"],
            SubscriptionUpserted.model_validate_json(row["snapshot"]),
            row["renewal_date"],
        )
        for row in rows
    }
    missing = [sid for sid in wanted if sid not in found]
    if missing:
        raise UnknownSubscriptionError(f"no subscription.upserted seen yet for {missing}")
    return found
