"""Renewal's `quote.events` a batch at a time (`open_quotes.py`, #19): a batch in a fixed number
of statements whatever its size, with the effects of its events one by one in order (AUTO-5):
a quote that switches auto-renew off is what the next quote of the batch sees, a quote closed
switches it back on, a quote seen again or closed twice does nothing — the same history,
`auto_renew.changed` events, quotes and `subscription.state` as the consumer's event-by-event
path gives the same events."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from deploy.local.samples import subscription, unique_csn
from services.renewal.open_quotes import quote_events_handler
from services.renewal.state import announced, snapshot_handler
from shared.clock import FixedClock
from shared.contracts.common import PriceLine
from shared.contracts.envelope import EventData
from shared.contracts.quote_events import QuoteCancelled, QuoteExpired, QuotePaid, QuoteSent
from shared.db.settings import DatabaseSettings
from shared.eligibility import Policy
from shared.messaging.consumer import Delivery, UnitOfWork
from tests.integration.helpers import (
    CountingConnection,
    connection_to,
    delivered,
    handle_in_transaction,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CLOCK = FixedClock(NOW)
POLICY = Policy()
HANDLER = announced(quote_events_handler(CLOCK, "/t"), POLICY, "/t", CLOCK)  # as wired


async def customer(settings: DatabaseSettings) -> str:
    """A CSN with three one-seat subscriptions `<csn>-0..2`, auto-renew on for 0 and 1."""
    csn = unique_csn("QUOTES")
    snapshots = [
        delivered(
            subscription(
                f"{csn}-{n}", csn, renewal_date=date(2026, 4, 1), auto_renew=n < 2, seats=1
            ),
            csn,
            time=NOW,
        )
        for n in range(3)
    ]
    await handle_in_transaction(settings, snapshot_handler(POLICY, "/t", CLOCK), snapshots)
    async with connection_to(settings) as connection:
        await connection.execute("DELETE FROM outbox")
    return csn


def quote(csn: str, number: int, *subscriptions: int, kind: str = "renewal") -> QuoteSent:
    """Quote `Q-<csn>-<number>` for five seats of each subscription: AUTO-5 where it was on."""
    lines = [
        PriceLine(
            subscription_id=f"{csn}-{n}",
            product_code="ACDLT",
            term="annual",
            seats=5,
            unit_price=Decimal("420.00"),
            discount=Decimal("0"),
            amount=Decimal("2100.00"),
        )
        for n in subscriptions
    ]
    return QuoteSent(
        request_id=None,
        quote_number=f"Q-{csn}-{number}",
        kind=kind,
        subscription_ids=[line.subscription_id for line in lines],
        expires_on=date(2026, 3, 31),
        currency="USD",
        total=Decimal("2100.00") * len(lines),
        lines=lines,
        recipients=[],
        promotions=[],
    )


def events(csn: str) -> list[EventData]:
    q = lambda n: f"Q-{csn}-{n}"  # noqa: E731
    return [
        quote(csn, 1, 0),  # 0 off
        quote(csn, 2, 0, 1),  # 0 is off already: only 1 off
        QuoteExpired(quote_number=q(1)),  # 0 on
        quote(csn, 1, 0),  # quote 1 seen again, closed: nothing
        quote(csn, 3, 2, kind="alignment"),  # holds nothing
        QuotePaid(quote_number=q(2), order_id="O-1"),  # 1 on
        QuoteCancelled(request_id="R-1", quote_number=q(9)),  # never open: nothing
        QuoteExpired(quote_number=q(1)),  # closed twice: nothing
        quote(csn, 4, 0),  # 0 on again: off
    ]


async def outcome(settings: DatabaseSettings, csn: str) -> dict[str, Any]:
    """What the batch left, with `csn` taken out of names: auto-renew, quotes, history, the
    outbox's events in order, and the last state announced of each subscription."""
    plain = lambda text: text.replace(csn, "C")  # noqa: E731
    async with connection_to(settings) as connection:
        subscriptions = await connection.fetch(
            "SELECT subscription_id, auto_renew FROM subscriptions WHERE csn = $1 ORDER BY 1", csn
        )
        quotes = await connection.fetch(
            "SELECT quote_number, status, auto_renew_suspended FROM quotes WHERE csn = $1"
            " ORDER BY 1",
            csn,
        )
        history = await connection.fetch(
            "SELECT h.subscription_id, h.change, h.detail::text AS detail"
            " FROM subscription_history AS h JOIN subscriptions USING (subscription_id)"
            " WHERE csn = $1 AND h.change LIKE 'auto_renew%' ORDER BY h.id",
            csn,
        )
        outbox = await connection.fetch(
            "SELECT topic, value FROM outbox WHERE convert_from(value, 'UTF8')::jsonb ->> 'subject' = $1"
            " ORDER BY id",
            csn,
        )
    announced: list[tuple[str, str, bool]] = []
    states: dict[str, Any] = {}
    for row in outbox:
        event = json.loads(row["value"])
        data = event["data"]
        if row["topic"] == "subscription.state":
            states[plain(data["subscription_id"])] = (
                data["auto_renew"],
                data["open_quote"] and plain(data["open_quote"]),
            )
        else:
            announced.append((event["type"], plain(data["subscription_id"]), data["enabled"]))
    return {
        "auto_renew": [(plain(r["subscription_id"]), r["auto_renew"]) for r in subscriptions],
        "quotes": [
            (plain(r["quote_number"]), r["status"], [plain(s) for s in r["auto_renew_suspended"]])
            for r in quotes
        ],
        "history": [
            (plain(r["subscription_id"]), r["change"], json.loads(r["detail"])) for r in history
        ],
        "events": announced,
        "states": states,
    }


def _delivered(csn: str) -> list[Delivery]:
    return [delivered(data, csn, time=NOW) for data in events(csn)]


async def test_auto_5_a_batch_of_quote_events_is_decided_in_order_as_one_by_one(
    renewal_db: DatabaseSettings,
) -> None:
    as_batch, one_by_one = await customer(renewal_db), await customer(renewal_db)
    async with connection_to(renewal_db) as connection, connection.transaction():
        counting = CountingConnection(connection)
        unit = UnitOfWork(counting)  # type: ignore[arg-type]
        await HANDLER(unit, _delivered(as_batch))
        await unit.outbox.flush(connection)
    for delivery in _delivered(one_by_one):  # the consumer's path when a batch fails
        await handle_in_transaction(renewal_db, HANDLER, [delivery])

    batch = await outcome(renewal_db, as_batch)
    assert batch == await outcome(renewal_db, one_by_one)
    assert batch["auto_renew"] == [("C-0", False), ("C-1", True), ("C-2", False)]
    assert batch["quotes"] == [
        ("Q-C-1", "closed", ["C-0"]),
        ("Q-C-2", "paid", ["C-1"]),
        ("Q-C-4", "sent", ["C-0"]),
    ]
    assert [(sid, enabled) for _, sid, enabled in batch["events"]] == [
        ("C-0", False),
        ("C-1", False),
        ("C-0", True),
        ("C-1", True),
        ("C-0", False),
    ]
    assert [(sid, change) for sid, change, _ in batch["history"]] == [
        ("C-0", "auto_renew_off"),
        ("C-1", "auto_renew_off"),
        ("C-0", "auto_renew_on"),
        ("C-1", "auto_renew_on"),
        ("C-0", "auto_renew_off"),
    ]
    assert batch["states"] == {"C-0": (False, "Q-C-4"), "C-1": (True, None)}
    # Subscriptions and quotes read (2), the new quotes stored with their last status (1),
    # auto-renew switched (1; the history is a COPY), states announced (1): nine events, five
    # statements (the same events one by one in one transaction, as before #19: 18).
    assert len(counting.statements) == 5


class StoresTheQuoteAfterTheRead:
    """The handler's connection, on which quote `number` is stored right after the handler read
    the kept quotes: as by a transaction that committed in between."""

    def __init__(self, connection: Any, number: str, csn: str) -> None:
        self.connection, self.number, self.csn = connection, number, csn

    def __getattr__(self, name: str) -> Any:
        return getattr(self.connection, name)

    async def fetch(self, query: str, *args: Any) -> Any:
        rows = await self.connection.fetch(query, *args)
        if "FROM quotes" in query and "FOR UPDATE" in query:
            await self.connection.execute(
                "INSERT INTO quotes (quote_number, csn, lines) VALUES ($1, $2, '[]')",
                self.number,
                self.csn,
            )
        return rows


async def test_auto_5_a_quote_stored_meanwhile_fails_the_batch_rather_than_lose_a_switch(
    renewal_db: DatabaseSettings,
) -> None:
    """Its auto-renew switched off by a quote whose row another transaction stored first (with
    no subscription to switch back on): the batch fails, to be handled event by event."""
    csn = await customer(renewal_db)
    async with connection_to(renewal_db) as connection:
        transaction = connection.transaction()
        await transaction.start()
        unit = UnitOfWork(StoresTheQuoteAfterTheRead(connection, f"Q-{csn}-1", csn))  # type: ignore[arg-type]
        with pytest.raises(RuntimeError, match="stored by another transaction"):
            await HANDLER(unit, [delivered(quote(csn, 1, 0), csn, time=NOW)])
        await transaction.rollback()
