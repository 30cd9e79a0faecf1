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
from typing import Any

import asyncpg
import pytest

from deploy.local.samples import subscription, unique_csn
from services.quote import store
from services.quote.quotes import QuoteHandlers
from services.renewal.abandoned import AbandonedOrders
from services.renewal.quote_orders import quote_order_handler
from services.renewal.settlement import billing_events_handler
from services.renewal.state import snapshot_handler
from shared.clock import FixedClock
from shared.contracts import billing_events, quote_orders
from shared.contracts.billing_events import (
    OrderLine,
    PaymentAwaitingManual,
    PaymentFailed,
    PaymentSucceeded,
)
from shared.contracts.envelope import EventData, new_event
from shared.contracts.quote_orders import QuoteOrderRequested, TermStart
from shared.contracts.subscription_events import PaymentMethod
from shared.db.pool import create_pool
from shared.db.settings import DatabaseSettings
from shared.eligibility import Policy
from shared.messaging.consumer import Delivery, UnitOfWork, dispatch_by_type, dispatch_some
from tests.integration.helpers import (
    CountingConnection,
    delivered,
    handle_in_transaction,
    insert_quote,
    migrated,
    migrated_schema,
    taken_outbox,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
POLICY = Policy()
QUOTES = QuoteHandlers(FixedClock(NOW), POLICY, "/it/quote")


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


# A quote's order from acceptance to a late payment, renewal and quote on their own schemas -----

RENEWAL_CLOCK = FixedClock(NOW)


@pytest.fixture
async def renewal_db(admin_db: asyncpg.Connection) -> AsyncIterator[DatabaseSettings]:
    async with migrated_schema(admin_db, "renewal") as settings:
        yield settings


async def _renewal_orders_the_quote(
    settings: DatabaseSettings, csn: str, quote_number: str, order_id: str
) -> str:
    """Renewal holds the quoted subscription (paid by bank transfer), reserves its term and
    orders it (QUO-8, issue 14): the subscription's id."""
    sid = f"S-{csn}"
    renewal_date = NOW.date() + timedelta(days=20)
    snapshot = subscription(sid, csn, renewal_date=renewal_date, payment_type="bank_transfer")
    follow = snapshot_handler(POLICY, "/it/renewal", RENEWAL_CLOCK)
    await handle_in_transaction(settings, follow, [delivered(snapshot, csn, time=NOW)])
    command = QuoteOrderRequested(
        request_id=f"r-{order_id}",
        quote_number=quote_number,
        kind="renewal",
        order_id=order_id,
        csn=csn,
        currency="USD",
        purchase_method="direct_online",
        payment_method=PaymentMethod(type="bank_transfer", recurring=False, valid=True),
        lines=[
            OrderLine(
                subscription_id=sid,
                product_code="ACDLT",
                term="annual",
                seats=1,
                unit_price=Decimal("10.00"),
                amount=Decimal("10.00"),
            )
        ],
        total=Decimal("10.00"),
        term_starts=[TermStart(subscription_id=sid, term_start=renewal_date)],
    )
    place = quote_order_handler(RENEWAL_CLOCK, POLICY, "/it/renewal")
    await handle_in_transaction(settings, place, delivered(command, csn, time=NOW))
    return sid


async def test_issue_14_a_payment_after_the_quote_order_was_released_leaves_the_quote_open(
    quote_pool: asyncpg.Pool, renewal_db: DatabaseSettings
) -> None:
    """A quote's order not paid by its pay-by date is released (the quote opens again); money
    that still comes goes back, and the quote stays open, not paid: no `quote.paid`."""
    order_id = "ORD-IT-LATE01"
    quote_number, csn = await accepted_quote(quote_pool, order_id)
    await _renewal_orders_the_quote(renewal_db, csn, quote_number, order_id)
    settle = billing_events_handler(RENEWAL_CLOCK, "/it/renewal", POLICY)
    waiting = PaymentAwaitingManual(
        order_id=order_id,
        amount=Decimal("10.00"),
        currency="USD",
        payment_reference="P-late",
        pay_by=NOW.date() - timedelta(days=1),
    )
    await handle_in_transaction(renewal_db, settle, [delivered(waiting, csn, time=NOW)])
    pool = await create_pool(renewal_db)
    try:
        abandoned = AbandonedOrders(
            pool, RENEWAL_CLOCK, source="/it/renewal", batch_size=10, poll_seconds=1
        )
        assert await abandoned.step() == 1
    finally:
        await pool.close()
    late = succeeded(order_id)
    await handle_in_transaction(renewal_db, settle, [late])

    renewal_wrote = await taken_outbox(renewal_db)
    assert [e["type"] for e in renewal_wrote if e["type"] == "payment.refund_requested"] == [
        "payment.refund_requested"
    ]
    await quote_hears(quote_pool, renewal_wrote, [late])

    rows = await quote_pool.fetch("SELECT status, order_id FROM quotes")
    assert [(row["status"], row["order_id"]) for row in rows] == [("sent", None)]
    announced = await quote_pool.fetch("SELECT value FROM outbox")
    assert [json.loads(row["value"])["type"] for row in announced] == []


async def quote_hears(
    pool: asyncpg.Pool, renewal_wrote: list[dict[str, Any]], billing: list[Delivery]
) -> None:
    """What quote consumes of it, each topic's batch handled as the app wires it: renewal's
    answers on `quote.order_answers`, and billing's payment outcomes."""
    registry = quote_orders.ANSWERS_REGISTRY
    answers = [
        Delivery(registry.parse(json.dumps(e).encode()), None)
        for e in renewal_wrote
        if e["type"] in registry.models
    ]
    for handle, batch in (
        (dispatch_by_type(QUOTES.order_answers()), answers),
        (dispatch_some(billing_events.REGISTRY, QUOTES.billing()), billing),
    ):
        async with pool.acquire() as connection, connection.transaction():
            unit = UnitOfWork(connection)
            await handle(unit, batch)
            await unit.outbox.flush(connection)
