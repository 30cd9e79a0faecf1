"""What each service knows of one subscription or one customer (CSN), read with each service's
own database role — the same rights the service has, no more — and the audit trail."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from shared.db.pool import connect
from shared.db.settings import DatabaseSettings

HISTORY_LIMIT = 200


@asynccontextmanager
async def database_of(service: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await connect(DatabaseSettings.for_service(service))
    try:
        yield connection
    finally:
        await connection.close()


def _rows(records: list[asyncpg.Record]) -> list[dict[str, Any]]:
    return [_row(r) for r in records]


def _row(record: asyncpg.Record) -> dict[str, Any]:
    row = dict(record)
    for name, value in row.items():
        if isinstance(value, str) and name in {"detail", "actor", "lines", "snapshot"}:
            row[name] = json.loads(value)
    return row


async def history(subscription_id: str) -> tuple[asyncpg.Record | None, list[asyncpg.Record]]:
    """A subscription's renewal state, and every change to it in order (`renewals history`)."""
    async with database_of("renewal") as db:
        state = await db.fetchrow(
            "SELECT subscription_id, csn, renewal_date, term, seats, auto_renew,"
            " lapse_announced_for, expiry_announced_for FROM subscriptions"
            " WHERE subscription_id = $1",
            subscription_id,
        )
        changes = await db.fetch(
            "SELECT at, change, detail::text AS detail, actor::text AS actor, request_id,"
            " event_id FROM subscription_history WHERE subscription_id = $1 ORDER BY id",
            subscription_id,
        )
    return state, changes


async def _renewal_of_subscriptions(where: str, argument: Any) -> dict[str, Any]:
    async with database_of("renewal") as db:
        subscriptions = await db.fetch(
            "SELECT subscription_id, csn, revision, renewal_date, term, seats, auto_renew,"
            " lapse_announced_for, expiry_announced_for, snapshot::text AS snapshot,"
            f" updated_at FROM subscriptions WHERE {where} ORDER BY subscription_id",
            argument,
        )
        ids = [s["subscription_id"] for s in subscriptions]
        history = await db.fetch(
            "SELECT subscription_id, at, change, detail::text AS detail, actor::text AS actor,"
            " request_id, event_id FROM subscription_history"
            " WHERE subscription_id = ANY($1::text[]) ORDER BY id DESC LIMIT $2",
            ids,
            HISTORY_LIMIT,
        )
        orders = await db.fetch(
            "SELECT order_id, request_id, csn, subscription_ids, status, created_at FROM orders"
            " WHERE subscription_ids && $1::text[] ORDER BY created_at",
            ids,
        )
        csns = sorted({s["csn"] for s in subscriptions})
        clocks = await db.fetch(
            "SELECT csn, today FROM test_clocks WHERE csn = ANY($1::text[])", csns
        )
    return {
        "subscriptions": [{**_row(s), "state": _state(s)} for s in subscriptions],
        "history": list(reversed(_rows(history))),
        "renewal_orders": _rows(orders),
        "test_clocks": _rows(clocks),
    }


def _state(subscription: asyncpg.Record) -> str:
    if subscription["expiry_announced_for"] == subscription["renewal_date"]:
        return "expired"
    if subscription["lapse_announced_for"] == subscription["renewal_date"]:
        return "lapsed (in grace)"
    return "active"


async def _billing(order_ids: list[str], csn: str | None) -> dict[str, Any]:
    async with database_of("billing") as db:
        orders = await db.fetch(
            "SELECT order_id, request_id, quote_number, csn, currency, purchase_method,"
            " lines::text AS lines, total, status, created_at FROM orders"
            " WHERE order_id = ANY($1::text[]) OR csn = $2 ORDER BY created_at",
            order_ids,
            csn,
        )
        payments = await db.fetch(
            "SELECT order_id, amount, currency, outcome, payment_reference, reason, at"
            " FROM payments WHERE order_id = ANY($1::text[]) ORDER BY at",
            [o["order_id"] for o in orders],
        )
    return {"orders": _rows(orders), "payments": _rows(payments)}


async def _notification(
    subscription_ids: list[str], order_ids: list[str], csn: str | None
) -> list[dict[str, Any]]:
    async with database_of("notification") as db:
        return _rows(
            await db.fetch(
                "SELECT notification_key, kind, csn, recipients, locale, subject, status,"
                " attempts, last_error, subscription_ids, order_id, quote_number, created_at,"
                " sent_at FROM emails WHERE subscription_ids && $1::text[]"
                " OR order_id = ANY($2::text[]) OR csn = $3 ORDER BY created_at",
                subscription_ids,
                order_ids,
                csn,
            )
        )


async def _quotes(subscription_ids: list[str], csn: str | None) -> dict[str, Any]:
    """The customer's active quotes (QUO-8), with their state, total and expiry."""
    async with database_of("quote") as db:
        if await db.fetchval("SELECT to_regclass('quotes')") is None:
            return {"available": False, "note": "the quote service has not started yet", "open": []}
        rows = await db.fetch(
            "SELECT quote_number, status, currency, total, expires_on, subscription_ids, channel"
            " FROM quotes WHERE status IN ('sent', 'accepted')"
            " AND (subscription_ids && $1::text[] OR csn = $2) ORDER BY created_at",
            subscription_ids,
            csn,
        )
    return {"available": True, "open": [dict(row) for row in rows]}


async def subscription(subscription_id: str) -> dict[str, Any] | None:
    renewal = await _renewal_of_subscriptions("subscription_id = $1", subscription_id)
    if not renewal["subscriptions"]:
        return None
    order_ids = [o["order_id"] for o in renewal["renewal_orders"]]
    billing = await _billing(order_ids, None)
    return {
        "subscription_id": subscription_id,
        "renewal": renewal,
        "billing": billing,
        "emails": await _notification([subscription_id], order_ids, None),
        "quotes": await _quotes([subscription_id], None),
    }


async def customer(csn: str) -> dict[str, Any]:
    renewal = await _renewal_of_subscriptions("csn = $1", csn)
    async with database_of("renewal") as db:
        renewal["batches"] = _rows(
            await db.fetch(
                # The client's request id (the batch's key is scoped to its sender: issue 16).
                "SELECT COALESCE(client_request_id, request_id) AS request_id, signer, status,"
                " total_items, received_at, worked_at"
                " FROM renewal_batches WHERE csn = $1 ORDER BY received_at",
                csn,
            )
        )
    subscription_ids = [s["subscription_id"] for s in renewal["subscriptions"]]
    order_ids = [o["order_id"] for o in renewal["renewal_orders"]]
    billing = await _billing(order_ids, csn)
    return {
        "csn": csn,
        "renewal": renewal,
        "billing": billing,
        "emails": await _notification(subscription_ids, order_ids, csn),
        "quotes": await _quotes(subscription_ids, csn),
    }


async def batches(*, include_finished: bool = False, limit: int = 50) -> list[dict[str, Any]]:
    """Bulk renewal batches, newest first, with items done, renewed and refused."""
    async with database_of("renewal") as db:
        return _rows(
            await db.fetch(
                """SELECT COALESCE(b.client_request_id, b.request_id) AS request_id, b.signer,
                          b.csn, b.status, b.total_items, b.received_at,
                          count(*) FILTER (WHERE i.status IN ('renewed', 'rejected')) AS done,
                          count(*) FILTER (WHERE i.status = 'renewed') AS renewed,
                          count(*) FILTER (WHERE i.status = 'rejected') AS rejected
                   FROM renewal_batches AS b
                   LEFT JOIN renewal_batch_items AS i USING (request_id)
                   WHERE $1 OR b.status NOT IN ('completed')
                   GROUP BY b.request_id ORDER BY b.received_at DESC LIMIT $2""",
                include_finished,
                limit,
            )
        )
