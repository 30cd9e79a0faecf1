"""Term reservations: what an open order holds (services/renewal/migrations/007), read and
written set-based, one statement per batch. The rules about them are in shared/eligibility/terms.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime

from shared.db.types import DbConnection
from shared.eligibility import Reservation


async def open_reservations(
    connection: DbConnection, subscription_ids: Iterable[str]
) -> dict[str, Reservation]:
    rows = await connection.fetch(
        "SELECT subscription_id, order_id, term_start FROM term_reservations"
        " WHERE subscription_id = ANY($1::text[])",
        list(set(subscription_ids)),
    )
    return {
        row["subscription_id"]: Reservation(
            subscription_id=row["subscription_id"],
            order_id=row["order_id"],
            term_start=row["term_start"],
        )
        for row in rows
    }


async def reserve(
    connection: DbConnection, reservations: Sequence[Reservation], now: datetime
) -> None:
    """Hold each subscription for its order. A subscription held already (by a concurrent
    transaction the row locks did not serialize) fails the whole transaction: nothing is asked."""
    if reservations:
        await connection.copy_records_to_table(
            "term_reservations",
            records=[(r.subscription_id, r.order_id, r.term_start, now) for r in reservations],
            columns=["subscription_id", "order_id", "term_start", "reserved_at"],
        )


async def take_reservations(
    connection: DbConnection, order_ids: Sequence[str]
) -> dict[tuple[str, str], date]:
    """Release the reservations of orders billing answered: (order id, subscription id) → the
    term start each held. A subscription absent was released before (abandoned, expired)."""
    if not order_ids:
        return {}
    rows = await connection.fetch(
        "DELETE FROM term_reservations WHERE order_id = ANY($1::text[])"
        " RETURNING order_id, subscription_id, term_start",
        list(order_ids),
    )
    return {(row["order_id"], row["subscription_id"]): row["term_start"] for row in rows}


async def release_subscriptions(
    connection: DbConnection, subscription_ids: Sequence[str]
) -> list[tuple[str, str]]:
    """Let go of what orders hold for these subscriptions (they expired): (subscription, order)."""
    if not subscription_ids:
        return []
    rows = await connection.fetch(
        "DELETE FROM term_reservations WHERE subscription_id = ANY($1::text[])"
        " RETURNING subscription_id, order_id",
        list(subscription_ids),
    )
    return [(row["subscription_id"], row["order_id"]) for row in rows]


async def orders_holding(connection: DbConnection, order_ids: Iterable[str]) -> set[str]:
    """Those of these orders that still hold a reservation."""
    rows = await connection.fetch(
        "SELECT DISTINCT order_id FROM term_reservations WHERE order_id = ANY($1::text[])",
        list(set(order_ids)),
    )
    return {row["order_id"] for row in rows}


async def note_pay_by(connection: DbConnection, pay_by: dict[str, date]) -> None:
    """Billing said these orders wait for a manual payment until `pay_by`."""
    if pay_by:
        await connection.execute(
            """UPDATE term_reservations AS r SET pay_by = u.pay_by
               FROM unnest($1::text[], $2::date[]) AS u(order_id, pay_by)
               WHERE r.order_id = u.order_id""",
            list(pay_by),
            list(pay_by.values()),
        )
