"""Issue 17 item 1: the quote service's store on PostgreSQL: a quote saved is loaded as the same
typed row, only by its own CSN (issue 16), and an order's answer reopens only its own quote."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import asyncpg
import pytest

from deploy.local.samples import unique_csn
from services.quote import store
from services.quote.store import StoredQuote
from shared.contracts.common import PriceLine
from tests.integration.helpers import insert_quote, migrated

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
async def quote_pool(admin_db: asyncpg.Connection) -> AsyncIterator[asyncpg.Pool]:
    async with migrated(admin_db, "quote") as pool:
        yield pool


def alignment_quote(quote_number: str, csn: str) -> StoredQuote:
    line = PriceLine(
        subscription_id="SUB-A",
        product_code="PROD-1",
        term="annual",
        seats=3,
        unit_price=Decimal("1179.00"),
        discount=Decimal("353.70"),
        amount=Decimal("3183.30"),
    )
    return StoredQuote(
        quote_number=quote_number,
        request_id="REQ-1",
        csn=csn,
        partner_csn="CSN-PARTNER",
        channel="partner",
        kind="alignment",
        subscription_ids=("SUB-A", "SUB-B"),
        recipients=("buyer@example.com", "finance@example.com"),
        currency="EUR",
        total=Decimal("6366.60"),
        lines=(line, line.model_copy(update={"subscription_id": "SUB-B"})),
        expires_on=date(2026, 7, 1),
        created_at=NOW,
        term_starts={"SUB-A": date(2026, 8, 1), "SUB-B": date(2026, 9, 15)},
        target_date=date(2026, 9, 15),
    )


async def test_a_saved_quote_loads_as_the_same_typed_row_and_only_for_its_csn(
    quote_pool: asyncpg.Pool,
) -> None:
    csn = unique_csn()
    async with quote_pool.acquire() as connection, connection.transaction():
        quote_number = await store.next_quote_number(connection, NOW.date())
        saved = alignment_quote(quote_number, csn)
        await store.save_quote(connection, saved)

    async with quote_pool.acquire() as connection, connection.transaction():
        assert quote_number.startswith("Q-2026-")
        assert await store.locked_quote(connection, quote_number, csn) == saved
        # Issue 16: another CSN's command finds nothing, as an unknown number does.
        assert await store.locked_quote(connection, quote_number, unique_csn()) is None
        await store.mark_accepted(connection, quote_number, "ORD-1")
        accepted = await store.locked_quote(connection, quote_number, csn)
    assert accepted == replace(saved, status="accepted", order_id="ORD-1")
    assert accepted.accepted and not accepted.closed


async def test_an_order_answer_reopens_only_the_quote_it_names(quote_pool: asyncpg.Pool) -> None:
    csn = unique_csn()
    await insert_quote(quote_pool, "Q-2026-900001", csn, NOW.date() + timedelta(days=30))
    async with quote_pool.acquire() as connection, connection.transaction():
        await store.mark_accepted(connection, "Q-2026-900001", "ORD-9")
        # The order of another quote: nothing opens again.
        assert await store.reopen(connection, ["ORD-9"], quote_number="Q-2026-900002") == []
        assert await store.reopen(connection, ["ORD-9"], quote_number="Q-2026-900001") == [csn]
        # Answered once already: the quote is no longer accepted with that order.
        assert await store.reopen(connection, ["ORD-9"]) == []
        reopened = await store.locked_quote(connection, "Q-2026-900001", csn)
    assert reopened is not None
    assert (reopened.status, reopened.order_id) == ("sent", None)
    assert reopened.term_starts == {}  # a quote priced before its term starts were kept
