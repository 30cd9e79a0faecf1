"""Renewal's orders, what settling them saves, and the open quotes it follows: the SQL, and the
typed rows it returns.

An order is what renewal asked billing to charge: a renewal (manual, bulk or automatic), an
accepted quote's order (purpose `quote`, of a kind: QUO-3), seats added (SEAT-1) or dates
aligned (ALIGN-1). What a quote's or a change's order buys is kept with it (`detail`, JSON): the
lines, the quote's kind and number, the alignment's target, the seats added, the total. Every
statement here is set-based: one per batch, whatever its size (issue 19 item 4).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from services.renewal.subscriptions import Subscription
from shared.contracts.common import PriceLine, Term
from shared.contracts.quote_commands import QuoteKind
from shared.db.types import DbConnection

Purpose = Literal["renewal", "quote", "seats", "alignment"]
Status = Literal["requested", "paid", "failed"]


@dataclass(frozen=True)
class OrderLine:
    """What an order buys for one subscription; a change's line also says what it cost (the
    answer to an alignment repeats it)."""

    subscription_id: str
    term: Term
    seats: int
    priced: PriceLine | None = None


@dataclass(frozen=True)
class Order:
    order_id: str
    request_id: str | None  # None: the due-date engine's automatic renewal
    csn: str
    subscription_ids: tuple[str, ...]
    purpose: Purpose = "renewal"
    status: Status = "requested"
    lines: tuple[OrderLine, ...] = ()
    kind: QuoteKind = "renewal"  # what a quote's order does when paid (QUO-3)
    quote_number: str | None = None
    target_date: date | None = None  # an alignment's, or an alignment quote's
    seats_added: int | None = None
    total: Decimal | None = None  # a change's order (seats, alignment)

    @property
    def automatic(self) -> bool:
        return self.request_id is None


def _detail(order: Order) -> str:
    """The `detail` column as it has always been written (abandoned.py and the operator's
    lookup read `quote_number` from it): a renewal's keeps nothing (the due-date engine writes
    thousands a second: no JSON encoding for them)."""
    if order.purpose == "renewal":
        return "{}"
    detail: dict[str, Any] = {}
    if order.purpose == "quote":
        detail = {"quote_number": order.quote_number, "kind": order.kind}
    if order.seats_added is not None:
        detail["seats_added"] = order.seats_added
    if order.target_date is not None or order.purpose == "quote":
        detail["target_date"] = order.target_date.isoformat() if order.target_date else None
    detail["lines"] = [
        line.priced.model_dump(mode="json")
        if line.priced is not None
        else {"subscription_id": line.subscription_id, "term": line.term, "seats": line.seats}
        for line in order.lines
    ]
    if order.total is not None:
        detail["total"] = str(order.total)
    return json.dumps(detail)


def _order(row: Mapping[str, Any]) -> Order:
    detail = json.loads(row["detail"]) if row["detail"] else {}
    target = detail.get("target_date")
    total = detail.get("total")
    return Order(
        order_id=row["order_id"],
        request_id=row["request_id"],
        csn=row["csn"],
        subscription_ids=tuple(row["subscription_ids"]),
        purpose=row["purpose"],
        status=row["status"],
        lines=tuple(_line(line) for line in detail.get("lines", ())),
        kind=detail.get("kind", "renewal"),
        quote_number=detail.get("quote_number"),
        target_date=date.fromisoformat(target) if target else None,
        seats_added=detail.get("seats_added"),
        total=Decimal(total) if total is not None else None,
    )


def _line(line: Mapping[str, Any]) -> OrderLine:
    priced = PriceLine.model_validate(line) if "amount" in line else None
    return OrderLine(line["subscription_id"], line["term"], line["seats"], priced)


COLUMNS = "order_id, request_id, csn, subscription_ids, purpose, status, detail::text AS detail"


async def save_orders(connection: DbConnection, orders: Sequence[Order]) -> None:
    """Record new orders, waiting for billing's answer: one COPY for them all (the due-date
    engine saves thousands a second through here)."""
    if orders:
        await connection.copy_records_to_table(
            "orders",
            records=[
                (
                    o.order_id,
                    o.request_id,
                    o.csn,
                    list(o.subscription_ids),
                    o.purpose,
                    _detail(o),
                )
                for o in orders
            ],
            columns=["order_id", "request_id", "csn", "subscription_ids", "purpose", "detail"],
        )


@dataclass(frozen=True)
class AutoRenewalTry:
    """One try of the due-date engine to renew a subscription for its renewal date (AUTO-1),
    numbered: a failed charge is tried again under the next number."""

    subscription_id: str
    renewal_date: date
    attempt: int
    order_id: str


async def save_auto_renewal_tries(
    connection: DbConnection, tries: Sequence[AutoRenewalTry], now: datetime
) -> None:
    """Record the engine's tries with their orders. The same try twice (subscription, renewal
    date, attempt) fails the whole transaction: a term is never charged twice."""
    if tries:
        await connection.copy_records_to_table(
            "auto_renewals",
            records=[
                (t.subscription_id, t.renewal_date, t.attempt, t.order_id, now) for t in tries
            ],
            columns=["subscription_id", "renewal_date", "attempt", "order_id", "created_at"],
        )


async def order_exists(connection: DbConnection, order_id: str) -> bool:
    return bool(await connection.fetchval("SELECT true FROM orders WHERE order_id = $1", order_id))


async def claim_answered(connection: DbConnection, paid: Mapping[str, bool]) -> list[Order]:
    """Billing answered these orders (order id → paid or not): those still waiting for an
    answer take it, and are returned in the order given; any other (answered before, or not
    renewal's) changes nothing."""
    rows = await connection.fetch(
        """UPDATE orders AS o SET status = u.status
            FROM unnest($1::text[], $2::text[]) AS u(order_id, status)
            WHERE o.order_id = u.order_id AND o.status = 'requested'
            RETURNING o.order_id, o.request_id, o.csn, o.subscription_ids, o.purpose, o.status,
                      o.detail::text AS detail""",
        list(paid),
        ["paid" if is_paid else "failed" for is_paid in paid.values()],
    )
    by_id = {row["order_id"]: _order(row) for row in rows}
    return [by_id[order_id] for order_id in paid if order_id in by_id]


async def waiting_orders(connection: DbConnection, order_ids: Collection[str]) -> list[Order]:
    """Those of these orders that still wait for billing."""
    rows = await connection.fetch(
        f"SELECT {COLUMNS} FROM orders WHERE order_id = ANY($1::text[]) AND status = 'requested'",
        list(order_ids),
    )
    return [_order(row) for row in rows]


async def save_renewal_terms(
    connection: DbConnection, subscriptions: Collection[Subscription]
) -> None:
    """What settling changed of each subscription: its renewal date, term and seats, and what
    the next renewal buys."""
    if subscriptions:
        await connection.execute(
            """UPDATE subscriptions AS s SET renewal_date = u.renewal_date, term = u.term,
                   seats = u.seats, next_term = u.next_term, next_seats = u.next_seats,
                   updated_at = now()
               FROM unnest($1::text[], $2::date[], $3::text[], $4::int[], $5::text[],
                           $6::int[])
                   AS u(subscription_id, renewal_date, term, seats, next_term, next_seats)
               WHERE s.subscription_id = u.subscription_id""",
            *_columns(
                subscriptions,
                "subscription_id",
                "renewal_date",
                "term",
                "seats",
                "next_term",
                "next_seats",
            ),
        )


def _columns(rows: Collection[Any], *names: str) -> list[list[Any]]:
    """The rows as one list per attribute named: the arrays an `unnest` reads."""
    return [[getattr(row, name) for row in rows] for name in names]


async def look_again(connection: DbConnection, subscription_ids: Collection[str]) -> None:
    """The due-date engine's next look at these subscriptions back to their renewal date."""
    if subscription_ids:
        await connection.execute(
            "UPDATE subscriptions SET next_check_for = NULL WHERE subscription_id = ANY($1)",
            list(subscription_ids),
        )


@dataclass(frozen=True)
class NextLook:
    """What the due-date engine settled of a subscription for its renewal date: the renewal
    date its lapse and expiry were announced for (once each), and the day it looks again."""

    subscription_id: str
    renewal_date: date
    next_check_on: date
    lapse_announced_for: date | None
    expiry_announced_for: date | None


async def save_next_looks(connection: DbConnection, looks: Sequence[NextLook]) -> None:
    """The engine's next look at each subscription, for the renewal date it looked at (a
    renewal moves the date, and the look no longer applies: see due_date_engine.NEXT_CHECK)."""
    if looks:
        await connection.execute(
            """UPDATE subscriptions AS s SET lapse_announced_for = u.lapse_for,
                   expiry_announced_for = u.expiry_for, next_check_on = u.next_check,
                   next_check_for = u.renewal_date, updated_at = now()
               FROM unnest($1::text[], $2::date[], $3::date[], $4::date[], $5::date[])
                   AS u(subscription_id, lapse_for, expiry_for, next_check, renewal_date)
               WHERE s.subscription_id = u.subscription_id""",
            *_columns(
                looks,
                "subscription_id",
                "lapse_announced_for",
                "expiry_announced_for",
                "next_check_on",
                "renewal_date",
            ),
        )


@dataclass
class KeptQuote:
    """A renewal quote renewal keeps (AUTO-5): its status (sent while open, then paid or
    closed) and the subscriptions whose auto-renew it switched off."""

    quote_number: str
    csn: str
    lines: list[dict[str, Any]]
    status: Literal["sent", "paid", "closed"]
    auto_renew_suspended: list[str]


async def kept_quotes(
    connection: DbConnection, quote_numbers: Iterable[str]
) -> dict[str, KeptQuote]:
    """The quotes kept of `quote_numbers`, locked (in number order) until the transaction ends;
    their lines are not read (empty): only a new quote is written whole (`keep_quotes`)."""
    rows = await connection.fetch(
        "SELECT quote_number, csn, status, auto_renew_suspended FROM quotes"
        " WHERE quote_number = ANY($1::text[]) ORDER BY quote_number FOR UPDATE",
        sorted(set(quote_numbers)),
    )
    return {
        row["quote_number"]: KeptQuote(
            row["quote_number"], row["csn"], [], row["status"], list(row["auto_renew_suspended"])
        )
        for row in rows
    }


async def keep_quotes(
    connection: DbConnection, new: Sequence[KeptQuote], moved: Sequence[KeptQuote]
) -> None:
    """Store the `new` quotes and the status of the `moved` ones: a statement each. A new one
    stored meanwhile by another transaction fails this one (its batch is then handled event by
    event), rather than leave an auto-renew switched off that no quote would switch back on."""
    if new:
        stored = await connection.fetchval(
            """WITH stored AS (
                   INSERT INTO quotes (quote_number, csn, lines, status, auto_renew_suspended)
                   SELECT q.quote_number, q.csn, q.lines, q.status, q.auto_renew_suspended
                   FROM jsonb_to_recordset($1::jsonb) AS q(quote_number text, csn text,
                       lines jsonb, status text, auto_renew_suspended text[])
                   ON CONFLICT (quote_number) DO NOTHING RETURNING 1)
               SELECT count(*) FROM stored""",
            # In number order, as the quotes' rows are locked everywhere.
            json.dumps([asdict(q) for q in sorted(new, key=lambda q: q.quote_number)]),
        )
        if stored != len(new):
            raise RuntimeError("a quote was stored by another transaction meanwhile")
    if moved:
        await connection.execute(
            "UPDATE quotes AS q SET status = u.status"
            " FROM unnest($1::text[], $2::text[]) AS u(quote_number, status)"
            " WHERE q.quote_number = u.quote_number",
            [quote.quote_number for quote in moved],
            [quote.status for quote in moved],
        )
