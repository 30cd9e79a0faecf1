"""A paid new-purchase quote starts a new subscription (QUO-3, LIFE-3): its id, and its row.

The contract leaves the new subscription's id open (the subscription system mints ids, and says
nothing of a purchase the product took): renewal derives it deterministically from the order and
the quoted subscription (`new_subscription_id`), so an answer seen twice starts it once. It is a
copy of the quoted subscription's snapshot (customer, product, buyer, payment method), active from
the payment day for the quoted term and seats, at revision 0: the subscription system's own
snapshot of it, whatever its revision, replaces the copy (services/renewal/subscriptions.py).
The quoted subscription is left as it is: a trial stays a trial, an expired one stays expired.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date

from services.renewal.subscriptions import Subscription
from shared.contracts.common import Term
from shared.db.types import DbConnection

NEW_PURCHASE_NAMESPACE = uuid.UUID("b7d0c3e2-5f14-4a9b-8c6d-1e2f3a4b5c6d")


def new_subscription_id(order_id: str, quoted_subscription_id: str) -> str:
    """`N-` and a UUID5 of the order and the quoted subscription: one per line of one order."""
    return f"N-{uuid.uuid5(NEW_PURCHASE_NAMESPACE, f'{order_id}|{quoted_subscription_id}')}"


@dataclass(frozen=True)
class NewPurchase:
    subscription_id: str
    quoted: Subscription
    start_date: date
    renewal_date: date
    term: Term
    seats: int


async def start_subscriptions(connection: DbConnection, purchases: list[NewPurchase]) -> None:
    """Insert the new subscriptions, in one statement; one already there (the same answer
    again) is kept."""
    if not purchases:
        return
    snapshots = [
        purchase.quoted.snapshot.model_copy(
            update={
                "subscription_id": purchase.subscription_id,
                "revision": 0,
                "status": "active",
                "start_date": purchase.start_date,
                "renewal_date": purchase.renewal_date,
                "term": purchase.term,
                "seats": purchase.seats,
            }
        )
        for purchase in purchases
    ]
    await connection.execute(
        """INSERT INTO subscriptions (subscription_id, revision, csn, snapshot, renewal_date,
                                      term, seats, auto_renew)
           SELECT u.subscription_id, 0, u.csn, u.snapshot::jsonb, u.renewal_date, u.term,
                  u.seats, u.auto_renew
           FROM unnest($1::text[], $2::text[], $3::text[], $4::date[], $5::text[], $6::int[],
                       $7::bool[])
               AS u(subscription_id, csn, snapshot, renewal_date, term, seats, auto_renew)
           ON CONFLICT (subscription_id) DO NOTHING""",
        [s.subscription_id for s in snapshots],
        [s.csn for s in snapshots],
        [s.model_dump_json() for s in snapshots],
        [s.renewal_date for s in snapshots],
        [s.term for s in snapshots],
        [s.seats for s in snapshots],
        [s.auto_renew for s in snapshots],
    )
