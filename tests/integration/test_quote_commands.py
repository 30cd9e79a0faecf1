"""The quote service's handlers called directly on a real database (issue 17 item 5): a quote
requested is priced, numbered and sent (QUO-1, QUO-2); accepted, it asks renewal for its order
(QUO-8, issue 14) once; renewal's refusal or release opens it again; sales cancels it, never once
accepted (QUO-5). Billing's payment outcomes are in test_quote_payments.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from deploy.local.samples import price, subscription, unique_csn
from services.quote.directory import save_snapshot
from services.quote.quotes import QuoteHandlers
from shared.catalog.store import save_price
from shared.clock import FixedClock
from shared.contracts.common import Actor
from shared.contracts.quote_commands import AcceptQuote, CancelQuote, QuoteChanges, RequestQuote
from shared.contracts.quote_orders import QuoteOrderRefused, QuoteOrderReleased
from shared.db.settings import DatabaseSettings
from shared.eligibility import Policy
from tests.integration.helpers import (
    connection_to,
    delivered,
    handle_in_transaction,
    migrated_schema,
    taken_outbox,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TODAY = NOW.date()
handlers = QuoteHandlers(FixedClock(NOW), Policy(), "/it/quote")
commands = handlers.commands()
answers = handlers.order_answers()


@pytest.fixture
async def quote_db(admin_db: asyncpg.Connection) -> AsyncIterator[DatabaseSettings]:
    async with migrated_schema(admin_db, "quote") as settings:
        for published in (
            price(),
            price(term="three_year", list_price="1310.00", renewal_price="1179.00"),
        ):
            await handle_in_transaction(settings, save_price, delivered(published, "-", time=NOW))
        yield settings


async def _customer(settings: DatabaseSettings, subscriptions: int = 1) -> tuple[str, list[str]]:
    """A customer's subscriptions, as the quote service follows them."""
    csn = unique_csn("QUOTE")
    ids = [f"S-{csn}-{n}" for n in range(subscriptions)]
    for sid in ids:
        snapshot = subscription(sid, csn, renewal_date=TODAY + timedelta(days=30))
        await handle_in_transaction(settings, save_snapshot, [delivered(snapshot, csn, time=NOW)])
    return csn, ids


async def _command(
    settings: DatabaseSettings, command: Any, csn: str, signer: str
) -> list[dict[str, Any]]:
    """A command of the sender `signer` (its proven principal), handled; the events written."""
    handle = commands[type(command)]
    await handle_in_transaction(settings, handle, delivered(command, csn, time=NOW, signer=signer))
    return await taken_outbox(settings)


async def _quote_row(settings: DatabaseSettings, quote_number: str) -> dict[str, Any]:
    async with connection_to(settings) as connection:
        row = await connection.fetchrow(
            "SELECT status, order_id, total FROM quotes WHERE quote_number = $1", quote_number
        )
    assert row is not None
    return dict(row)


def _buyer(csn: str) -> Actor:
    return Actor(user_id=f"{csn}-buyer", csn=csn)


async def _requested(
    settings: DatabaseSettings, **fields: Any
) -> tuple[str, list[str], dict[str, Any]]:
    """Sales asks a renewal quote for a new customer's subscription; the `quote.sent`."""
    csn, ids = await _customer(settings)
    request = RequestQuote(
        request_id=f"r-{csn}",
        actor=Actor(user_id="sales-rep", csn=csn),
        channel="sales",
        kind="renewal",
        subscription_ids=ids,
        **{"recipients": [], **fields},
    )
    [sent] = await _command(settings, request, csn, "sales")
    assert sent["type"] == "quote.sent"
    return csn, ids, sent


async def _sent_quote(settings: DatabaseSettings) -> tuple[str, str, list[str]]:
    csn, ids, sent = await _requested(settings)
    return csn, sent["data"]["quote_number"], ids


async def test_quo_1_a_requested_quote_is_priced_numbered_and_sent(
    quote_db: DatabaseSettings,
) -> None:
    """The quote buys what it changes (three years, two seats) at the renewal price (PRICE-1)."""
    _, ids, sent = await _requested(quote_db, changes=QuoteChanges(term="three_year", seats=2))

    quote = sent["data"]
    assert quote["quote_number"].startswith(f"Q-{TODAY.year}-")
    [line] = quote["lines"]
    assert (line["subscription_id"], line["term"], line["seats"]) == (ids[0], "three_year", 2)
    assert (line["unit_price"], line["amount"], quote["total"]) == ("1179.00", "2358.00", "2358.00")
    row = await _quote_row(quote_db, quote["quote_number"])
    assert (row["status"], row["order_id"], str(row["total"])) == ("sent", None, quote["total"])


async def test_quo_1_recipients_are_the_buyer_and_those_named(quote_db: DatabaseSettings) -> None:
    csn, ids, sent = await _requested(quote_db, recipients=["finance@example.com"])
    assert sent["data"]["recipients"] == [f"buyer@{csn.lower()}.example.com", "finance@example.com"]
    assert sent["data"]["subscription_ids"] == ids and sent["subject"] == csn


async def _accepted_quote(settings: DatabaseSettings) -> tuple[str, str, str]:
    """A sent quote the buyer accepted: its CSN, number and the order renewal was asked for."""
    csn, quote_number, _ = await _sent_quote(settings)
    accept = AcceptQuote(request_id="r-accept", actor=_buyer(csn), quote_number=quote_number)
    [asked] = await _command(settings, accept, csn, "portal")
    return csn, quote_number, asked["data"]["order_id"]


async def test_quo_8_an_accepted_quote_asks_renewal_for_its_order_once(
    quote_db: DatabaseSettings,
) -> None:
    csn, quote_number, [sid] = await _sent_quote(quote_db)
    accept = AcceptQuote(request_id="r-accept", actor=_buyer(csn), quote_number=quote_number)

    [asked] = await _command(quote_db, accept, csn, "portal")

    assert asked["type"] == "quote_order.requested"
    order = asked["data"]
    assert (order["quote_number"], order["kind"], order["csn"]) == (quote_number, "renewal", csn)
    assert order["term_starts"] == [
        {"subscription_id": sid, "term_start": (TODAY + timedelta(days=30)).isoformat()}
    ]
    row = await _quote_row(quote_db, quote_number)
    assert (row["status"], row["order_id"]) == ("accepted", order["order_id"])
    again = AcceptQuote(request_id="r-accept-2", actor=_buyer(csn), quote_number=quote_number)
    assert await _command(quote_db, again, csn, "portal") == []  # one order, one charge


async def test_role_1_anyone_but_the_buyer_is_refused_an_accepted_quote_too(
    quote_db: DatabaseSettings,
) -> None:
    """Accepted or not, a quote tells no one but its buyer anything (ROLE-1): another user of
    the CSN is refused NOT_AUTHORIZED, where the buyer accepting again hears nothing."""
    csn, quote_number, _ = await _accepted_quote(quote_db)
    other = AcceptQuote(
        request_id="r-accept-other",
        actor=Actor(user_id=f"{csn}-colleague", csn=csn),
        quote_number=quote_number,
    )

    [refused] = await _command(quote_db, other, csn, "portal")

    assert refused["type"] == "quote.rejected"
    assert refused["data"]["reasons"] == ["NOT_AUTHORIZED"]
    assert (await _quote_row(quote_db, quote_number))["status"] == "accepted"


@pytest.mark.parametrize("refused", [True, False], ids=["refused", "released unpaid"])
async def test_issue_14_renewals_refusal_or_release_opens_the_quote_again(
    quote_db: DatabaseSettings, refused: bool
) -> None:
    """Renewal placed no order (the buyer hears why), or released it unpaid: open again."""
    csn, quote_number, order_id = await _accepted_quote(quote_db)
    answer = (
        QuoteOrderRefused(
            request_id="r-accept",
            quote_number=quote_number,
            order_id=order_id,
            reasons=["RENEWAL_IN_PROGRESS"],
        )
        if refused
        else QuoteOrderReleased(quote_number=quote_number, order_id=order_id)
    )

    await handle_in_transaction(quote_db, answers[type(answer)], delivered(answer, csn, time=NOW))

    told = [(e["type"], e["data"]["reasons"]) for e in await taken_outbox(quote_db)]
    assert told == ([("quote.rejected", ["RENEWAL_IN_PROGRESS"])] if refused else [])
    row = await _quote_row(quote_db, quote_number)
    assert (row["status"], row["order_id"]) == ("sent", None)


def _cancel_by_sales(csn: str, quote_number: str) -> CancelQuote:
    return CancelQuote(
        request_id=f"r-cancel-{quote_number}",
        actor=Actor(user_id="sales-rep", csn=csn),
        channel="sales",
        quote_number=quote_number,
    )


async def test_quo_5_sales_cancels_an_open_quote_never_an_accepted_one(
    quote_db: DatabaseSettings,
) -> None:
    csn, open_quote, _ = await _sent_quote(quote_db)
    [cancelled] = await _command(quote_db, _cancel_by_sales(csn, open_quote), csn, "sales")
    assert (cancelled["type"], cancelled["data"]["quote_number"]) == ("quote.cancelled", open_quote)
    assert (await _quote_row(quote_db, open_quote))["status"] == "cancelled"

    csn, accepted, _ = await _accepted_quote(quote_db)
    [refused] = await _command(quote_db, _cancel_by_sales(csn, accepted), csn, "sales")
    assert (refused["type"], refused["data"]["reasons"]) == (
        "quote.rejected",
        ["QUOTE_ALREADY_ACCEPTED"],
    )
    assert (await _quote_row(quote_db, accepted))["status"] == "accepted"
