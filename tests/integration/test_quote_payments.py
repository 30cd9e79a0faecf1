"""Issue 19 items 3 and 4: quote follows billing's payment outcomes set-based, on PostgreSQL.

Most payments are of renewal's orders, not a quote's: quote finds the few that are with one
statement per outcome and batch (it ran an UPDATE per `payment.succeeded`, a no-op for nearly
all), and gives the effects the one-by-one handling gave: `payment.succeeded` makes an accepted
quote paid (`quote.paid`), `payment.failed` opens it again, and the first outcome of an order
decides.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
import pytest

from deploy.local.samples import unique_csn
from services.quote import store
from services.quote.quotes import QuoteHandlers
from shared.clock import FixedClock
from shared.contracts import billing_events
from shared.contracts.billing_events import PaymentFailed, PaymentSucceeded
from shared.contracts.envelope import EventData, new_event
from shared.eligibility import Policy
from shared.messaging.consumer import Delivery, UnitOfWork, dispatch_some
from tests.integration.helpers import CountingConnection, insert_quote, migrated

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
async def quote_pool(admin_db: asyncpg.Connection) -> AsyncIterator[asyncpg.Pool]:
    async with migrated(admin_db, "quote") as pool:
        yield pool


async def accepted_quote(pool: asyncpg.Pool, order_id: str) -> tuple[str, str]:
    quote_number, csn = f"Q-2026-{order_id[-6:]}", unique_csn()
    await insert_quote(pool, quote_number, csn, NOW.date() + timedelta(days=30))
    async with pool.acquire() as connection:
        await store.mark_accepted(connection, quote_number, order_id)
    return quote_number, csn


def delivery(data: EventData) -> Delivery:
    return Delivery(new_event(data, subject="CSN-X", source="/it/billing", time=NOW), None)


def succeeded(order_id: str) -> Delivery:
    return delivery(
        PaymentSucceeded(
            order_id=order_id,
            amount=Decimal("10.00"),
            currency="USD",
            payment_reference=f"PAY-{order_id}",
        )
    )


def failed(order_id: str) -> Delivery:
    return delivery(PaymentFailed(order_id=order_id, reason="card declined", next_retry_on=None))


async def test_a_batch_of_payment_outcomes_takes_one_statement_per_outcome_and_the_first_decides(
    quote_pool: asyncpg.Pool,
) -> None:
    paid_order, failed_order, failed_then_paid, paid_then_failed = (
        f"ORD-IT-{n:06d}" for n in range(1, 5)
    )
    quotes = {
        order: await accepted_quote(quote_pool, order)
        for order in (paid_order, failed_order, failed_then_paid, paid_then_failed)
    }
    renewal_orders = [f"ORD-RENEWAL-{n}" for n in range(50)]  # not a quote's: change nothing
    batch = [
        *(succeeded(order) for order in renewal_orders),
        succeeded(paid_order),
        failed(failed_order),
        failed(failed_then_paid),
        succeeded(failed_then_paid),
        succeeded(paid_then_failed),
        failed(paid_then_failed),
    ]
    handle = dispatch_some(
        billing_events.REGISTRY,
        QuoteHandlers(FixedClock(NOW), Policy(), "/it/quote").billing(),
    )

    async with quote_pool.acquire() as connection, connection.transaction():
        counting = CountingConnection(connection)
        unit = UnitOfWork(counting)  # type: ignore[arg-type]
        await handle(unit, batch)
        await unit.outbox.flush(connection)

    assert len(counting.statements) == 2  # one per outcome, for 56 payments
    rows = await quote_pool.fetch("SELECT quote_number, status, order_id FROM quotes")
    state = {row["quote_number"]: (row["status"], row["order_id"]) for row in rows}
    assert state == {
        quotes[paid_order][0]: ("paid", paid_order),
        quotes[failed_order][0]: ("sent", None),
        quotes[failed_then_paid][0]: ("sent", None),  # failed first: open again, not paid
        quotes[paid_then_failed][0]: ("paid", paid_then_failed),
    }
    announced = await quote_pool.fetch("SELECT key, value, headers FROM outbox ORDER BY id")
    paid = [json.loads(row["value"]) for row in announced]
    assert [(e["type"], e["data"]["order_id"], e["subject"]) for e in paid] == [
        ("quote.paid", paid_order, quotes[paid_order][1]),
        ("quote.paid", paid_then_failed, quotes[paid_then_failed][1]),
    ]
    # Each quote.paid continues the trace of the payment that caused it.
    causes: dict[str, str] = {}
    for payment in batch:  # the first outcome of each order: the one that decided
        causes.setdefault(payment.data.order_id, payment.event.traceparent or "")
    for event in paid:
        assert event["traceparent"].split("-")[1] == causes[event["data"]["order_id"]].split("-")[1]
