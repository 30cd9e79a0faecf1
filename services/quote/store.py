"""The quote service's quotes: their numbers, saving and loading them, and every change of their
status (accepted, paid, open again, cancelled, expired): the SQL, and the typed rows it returns.

A quote is sent (QUO-1), accepted by its buyer with one order (QUO-4), paid, or open again when
its order was refused, released or failed; a partner or sales cancels it (QUO-5), the expiry
closes it (QUO-8). The statements that follow payment outcomes or the expiry are set-based:
one per batch, whatever its size (issue 19 item 4).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from shared.contracts.common import PriceLine
from shared.contracts.quote_commands import QuoteKind
from shared.db.types import DbConnection

Status = Literal["sent", "accepted", "paid", "expired", "cancelled"]


@dataclass(frozen=True, kw_only=True)
class StoredQuote:
    quote_number: str
    request_id: str | None  # None: an automatic quote (QUO-7)
    csn: str
    partner_csn: str | None
    channel: str
    kind: QuoteKind
    subscription_ids: tuple[str, ...]
    recipients: tuple[str, ...]
    currency: str  # one currency per quote (QUO-3)
    total: Decimal
    lines: tuple[PriceLine, ...]
    expires_on: date
    created_at: datetime
    # Where the term each line buys starts (LIFE-4), fixed when it was priced; empty for the
    # quotes sent before it was kept (migration 004).
    term_starts: Mapping[str, date] = field(default_factory=dict)
    target_date: date | None = None  # an alignment's (QUO-3)
    status: Status = "sent"
    order_id: str | None = None  # while accepted, and once paid

    @property
    def accepted(self) -> bool:
        """Its order is placed or paid: one order, one charge."""
        return self.status in ("accepted", "paid")

    @property
    def closed(self) -> bool:
        return self.status in ("expired", "cancelled")


@dataclass(frozen=True)
class PaidQuote:
    quote_number: str
    csn: str
    order_id: str


async def next_quote_number(connection: DbConnection, today: date) -> str:
    """`Q-<year>-<sequence>`: unique for ever, the year of the day it is sent on."""
    sequence = await connection.fetchval("SELECT nextval('quote_number_seq')")
    return f"Q-{today.year}-{sequence:06d}"


async def save_quote(connection: DbConnection, quote: StoredQuote) -> None:
    """Record a quote just sent."""
    await connection.execute(
        """INSERT INTO quotes (quote_number, request_id, csn, partner_csn, channel, kind,
                               subscription_ids, recipients, currency, total, lines,
                               expires_on, created_at, term_starts, target_date)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb, $12, $13,
                   $14::jsonb, $15)""",
        quote.quote_number,
        quote.request_id,
        quote.csn,
        quote.partner_csn,
        quote.channel,
        quote.kind,
        list(quote.subscription_ids),
        list(quote.recipients),
        quote.currency,
        quote.total,
        json.dumps([line.model_dump(mode="json") for line in quote.lines]),
        quote.expires_on,
        quote.created_at,
        json.dumps({sid: start.isoformat() for sid, start in quote.term_starts.items()}),
        quote.target_date,
    )


async def locked_quote(connection: DbConnection, quote_number: str, csn: str) -> StoredQuote | None:
    """The quote, locked, when it is of this CSN; None otherwise (issue 16: another customer's
    quote is never locked, and is refused as an unknown one is)."""
    row = await connection.fetchrow(
        "SELECT quote_number, request_id, csn, partner_csn, channel, kind, subscription_ids,"
        " recipients, currency, total, lines::text AS lines, expires_on, created_at,"
        " term_starts::text AS term_starts, target_date, status, order_id FROM quotes"
        " WHERE quote_number = $1 AND csn = $2 FOR UPDATE",
        quote_number,
        csn,
    )
    return _quote(row) if row is not None else None


def _quote(row: Mapping[str, Any]) -> StoredQuote:
    starts = json.loads(row["term_starts"]) if row["term_starts"] else {}
    return StoredQuote(
        quote_number=row["quote_number"],
        request_id=row["request_id"],
        csn=row["csn"],
        partner_csn=row["partner_csn"],
        channel=row["channel"],
        kind=row["kind"],
        subscription_ids=tuple(row["subscription_ids"]),
        recipients=tuple(row["recipients"]),
        currency=row["currency"],
        total=row["total"],
        lines=tuple(PriceLine.model_validate(line) for line in json.loads(row["lines"])),
        expires_on=row["expires_on"],
        created_at=row["created_at"],
        term_starts={sid: date.fromisoformat(start) for sid, start in starts.items()},
        target_date=row["target_date"],
        status=row["status"],
        order_id=row["order_id"],
    )


async def mark_accepted(connection: DbConnection, quote_number: str, order_id: str) -> None:
    await connection.execute(
        "UPDATE quotes SET status = 'accepted', order_id = $2 WHERE quote_number = $1",
        quote_number,
        order_id,
    )


async def mark_paid(connection: DbConnection, order_ids: Collection[str]) -> list[PaidQuote]:
    """The quotes accepted with these orders are paid; an order of no quote's (renewal's, most
    of them), or of a quote no longer waiting for it, changes nothing."""
    rows = await connection.fetch(
        "UPDATE quotes SET status = 'paid' WHERE order_id = ANY($1::text[])"
        " AND status = 'accepted' RETURNING quote_number, csn, order_id",
        list(order_ids),
    )
    return [PaidQuote(row["quote_number"], row["csn"], row["order_id"]) for row in rows]


async def reopen(
    connection: DbConnection, order_ids: Collection[str], *, quote_number: str | None = None
) -> list[str]:
    """The quotes accepted with these orders (and of `quote_number`, when the answer names it)
    open again, without the order, to be accepted again until they expire: the CSN of each."""
    rows = await connection.fetch(
        "UPDATE quotes SET status = 'sent', order_id = NULL WHERE order_id = ANY($1::text[])"
        " AND ($2::text IS NULL OR quote_number = $2) AND status = 'accepted' RETURNING csn",
        list(order_ids),
        quote_number,
    )
    return [row["csn"] for row in rows]


async def close(
    connection: DbConnection,
    quote_numbers: Collection[str],
    status: Literal["cancelled", "expired"],
) -> None:
    """Cancelled (QUO-5) or expired (QUO-8): neither accepted nor cancelled any more."""
    await connection.execute(
        "UPDATE quotes SET status = $2 WHERE quote_number = ANY($1::text[])",
        list(quote_numbers),
        status,
    )
