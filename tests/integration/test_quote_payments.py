"""Issue 19 items 3 and 4: quote follows its orders' payment outcomes, answered by renewal,
set-based, on PostgreSQL.

Quote reads no `billing.events` (most payments are of renewal's orders, and quote ran a no-op
UPDATE for each): renewal, which settles every order, answers a quote's order's first payment
outcome on `quote.order_answers` (`quote_order.paid`, `quote_order.payment_failed`). Quote
handles a batch of them with one statement per outcome, and gives the effects billing's events
gave: paid makes an accepted quote paid (`quote.paid`), failed opens it again, the first outcome
of an order decides, and money for an order released meanwhile leaves its quote open.
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
from services.renewal.due_date_engine import DueDateEngine
from services.renewal.quote_orders import quote_order_handler
from services.renewal.settlement import billing_events_handler
from services.renewal.state import snapshot_handler
from shared.clock import FixedClock
from shared.contracts import quote_orders
from shared.contracts.billing_events import (
    OrderLine,
    PaymentAwaitingManual,
    PaymentFailed,
    PaymentSucceeded,
)
from shared.contracts.envelope import EventData, new_event
from shared.contracts.quote_orders import (
    QuoteOrderPaid,
    QuoteOrderPaymentFailed,
    QuoteOrderRequested,
    TermStart,
)
from shared.contracts.subscription_events import PaymentMethod
from shared.db.pool import create_pool
from shared.db.settings import DatabaseSettings
from shared.eligibility import Policy
from shared.messaging.consumer import Delivery, UnitOfWork, dispatch_by_type
from tests.integration.helpers import (
    CountingConnection,
    delivered,
    handle_in_transaction,
    insert_quote,
    migrated,
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


def answer(data: EventData) -> Delivery:
    return Delivery(new_event(data, subject="CSN-X", source="/it/renewal", time=NOW), None)


def paid(order_id: str, quote_number: str) -> Delivery:
    return answer(QuoteOrderPaid(quote_number=quote_number, order_id=order_id))


def failed(order_id: str, quote_number: str) -> Delivery:
    return answer(QuoteOrderPaymentFailed(quote_number=quote_number, order_id=order_id))


async def test_a_batch_of_payment_answers_takes_one_statement_per_outcome_and_the_first_decides(
    quote_pool: asyncpg.Pool,
) -> None:
    paid_order, failed_order, failed_then_paid, paid_then_failed = (
        f"ORD-IT-{n:06d}" for n in range(1, 5)
    )
    quotes = {
        order: await accepted_quote(quote_pool, order)
        for order in (paid_order, failed_order, failed_then_paid, paid_then_failed)
    }
    # Orders whose quotes are no longer accepted with them (released, or accepted again with
    # another order): their answers change nothing.
    released = [f"ORD-RELEASED-{n}" for n in range(50)]
    batch = [
        *(paid(order, f"Q-2026-R{n:05d}") for n, order in enumerate(released)),
        paid(paid_order, quotes[paid_order][0]),
        failed(failed_order, quotes[failed_order][0]),
        failed(failed_then_paid, quotes[failed_then_paid][0]),
        paid(failed_then_paid, quotes[failed_then_paid][0]),
        paid(paid_then_failed, quotes[paid_then_failed][0]),
        failed(paid_then_failed, quotes[paid_then_failed][0]),
    ]
    handle = dispatch_by_type(QUOTES.order_answers())

    async with quote_pool.acquire() as connection, connection.transaction():
        counting = CountingConnection(connection)
        unit = UnitOfWork(counting)  # type: ignore[arg-type]
        await handle(unit, batch)
        await unit.outbox.flush(connection)

    assert len(counting.statements) == 2  # one per outcome, for 56 answers
    rows = await quote_pool.fetch("SELECT quote_number, status, order_id FROM quotes")
    state = {row["quote_number"]: (row["status"], row["order_id"]) for row in rows}
    assert state == {
        quotes[paid_order][0]: ("paid", paid_order),
        quotes[failed_order][0]: ("sent", None),
        quotes[failed_then_paid][0]: ("sent", None),  # failed first: open again, not paid
        quotes[paid_then_failed][0]: ("paid", paid_then_failed),
    }
    announced = await quote_pool.fetch("SELECT key, value, headers FROM outbox ORDER BY id")
    quote_paid = [json.loads(row["value"]) for row in announced]
    assert [(e["type"], e["data"]["order_id"], e["subject"]) for e in quote_paid] == [
        ("quote.paid", paid_order, quotes[paid_order][1]),
        ("quote.paid", paid_then_failed, quotes[paid_then_failed][1]),
    ]
    # Each quote.paid continues the trace of the answer that caused it (renewal's answer
    # continues the payment's).
    causes: dict[str, str] = {}
    for one in batch:  # the first outcome of each order: the one that decided
        causes.setdefault(one.data.order_id, one.event.traceparent or "")
    for event in quote_paid:
        assert event["traceparent"].split("-")[1] == causes[event["data"]["order_id"]].split("-")[1]


# A quote's order from acceptance to a late payment, renewal and quote on their own schemas -----

RENEWAL_CLOCK = FixedClock(NOW)
QUOTED_RENEWAL_DATE = NOW.date() + timedelta(days=20)
# The day after the quoted subscription's grace ended (LIFE-3): it is expired.
AFTER_GRACE = FixedClock(
    datetime.combine(
        QUOTED_RENEWAL_DATE + timedelta(days=POLICY.grace_days_quote_or_manual + 1), NOW.timetz()
    )
)


async def _renewal_orders_the_quote(
    settings: DatabaseSettings, csn: str, quote_number: str, order_id: str
) -> str:
    """Renewal holds the quoted subscription (paid by bank transfer), reserves its term and
    orders it (QUO-8, issue 14): the subscription's id."""
    sid = f"S-{csn}"
    renewal_date = QUOTED_RENEWAL_DATE
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


async def _money_after_grace_goes_back(
    quote_pool: asyncpg.Pool, renewal_db: DatabaseSettings, csn: str, order_id: str
) -> None:
    """The bank transfer for the quote's order comes after the subscription expired: renewal
    refunds it and answers quote `quote_order.refunded`, which quote hears."""
    settle = billing_events_handler(AFTER_GRACE, "/it/renewal", POLICY)
    await handle_in_transaction(renewal_db, settle, [billing_said(order_id, csn, "succeeded")])
    renewal_wrote = await taken_outbox(renewal_db)
    assert [e["type"] for e in renewal_wrote if e["type"] != "subscription.state"] == [
        "payment.refund_requested",
        "quote_order.refunded",
    ]
    await quote_hears(quote_pool, renewal_wrote)


async def test_issue_14_19_a_released_quote_order_answers_the_acceptance_once_late_money_goes_back(
    quote_pool: asyncpg.Pool, renewal_db: DatabaseSettings
) -> None:
    """A quote's order not paid by its pay-by date is released: the quote opens again and the
    acceptance is answered then, `quote.rejected` PAYMENT_METHOD_INVALID (issue 19: it waited
    for ever). Money that still comes goes back, and the quote stays open, not paid: no
    `quote.paid`, and no second answer (the quote is no longer accepted with that order)."""
    order_id = "ORD-IT-LATE01"
    quote_number, csn = await accepted_quote(quote_pool, order_id)
    await _renewal_orders_the_quote(renewal_db, csn, quote_number, order_id)
    await taken_outbox(renewal_db)
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
    await handle_in_transaction(renewal_db, settle, [billing_said(order_id, csn, "succeeded")])

    renewal_wrote = await taken_outbox(renewal_db)
    assert [e["type"] for e in renewal_wrote if e["type"] != "subscription.state"] == [
        "quote_order.refused",
        "payment.refund_requested",
        "quote_order.refunded",
    ]
    await quote_hears(quote_pool, renewal_wrote)

    rows = await quote_pool.fetch("SELECT status, order_id FROM quotes")
    assert [(row["status"], row["order_id"]) for row in rows] == [("sent", None)]
    announced = [
        json.loads(row["value"]) for row in await quote_pool.fetch("SELECT value FROM outbox")
    ]
    assert [(e["type"], e["data"]["reasons"]) for e in announced] == [
        ("quote.rejected", ["PAYMENT_METHOD_INVALID"])
    ]


async def test_life_3_issue_19_a_quote_paid_after_its_subscription_expired_is_open_again(
    quote_pool: asyncpg.Pool, renewal_db: DatabaseSettings
) -> None:
    """The bank transfer for an accepted quote arrives after the subscription's grace ended
    (LIFE-3, LIFE-5): renewal renews nothing and gives the money back; quote does not say
    `quote.paid` but answers the acceptance `quote.rejected` EXPIRED, and the quote is open
    again, not paid (it expires or is cancelled as any open quote; auto-renew follows)."""
    order_id = "ORD-IT-EXPI01"
    quote_number, csn = await accepted_quote(quote_pool, order_id)
    await _renewal_orders_the_quote(renewal_db, csn, quote_number, order_id)
    await taken_outbox(renewal_db)

    await _money_after_grace_goes_back(quote_pool, renewal_db, csn, order_id)

    rows = await quote_pool.fetch("SELECT status, order_id FROM quotes")
    assert [(row["status"], row["order_id"]) for row in rows] == [("sent", None)]
    announced = [
        json.loads(row["value"]) for row in await quote_pool.fetch("SELECT value FROM outbox")
    ]
    assert [(e["type"], e["subject"], e["data"]) for e in announced] == [
        (
            "quote.rejected",
            csn,
            {
                "request_id": f"r-{order_id}",
                "reasons": ["EXPIRED"],
                "quote_number": quote_number,
                "subscription_ids": [],
            },
        )
    ]


async def test_life_3_issue_19_a_quote_order_whose_subscription_expires_unpaid_reopens_its_quote(
    quote_pool: asyncpg.Pool, renewal_db: DatabaseSettings
) -> None:
    """The subscription of an accepted quote expires (LIFE-3) while its order waits for the
    bank transfer, its pay-by date still ahead: the expiry lets the order's term go, and quote
    hears it then, as it would from the money coming late (EXPIRED) — the acceptance is
    answered `quote.rejected` EXPIRED and the quote is open again, no longer held `accepted`
    for ever (it expires or is cancelled as any open quote). The money that still comes goes
    back, and the acceptance, answered, hears nothing more."""
    order_id = "ORD-IT-EXPR01"
    quote_number, csn = await accepted_quote(quote_pool, order_id)
    await _renewal_orders_the_quote(renewal_db, csn, quote_number, order_id)
    await taken_outbox(renewal_db)
    pool = await create_pool(renewal_db)
    try:
        engine = DueDateEngine(
            pool, AFTER_GRACE, POLICY, source="/it/renewal", batch_size=10, interval_seconds=1
        )
        assert await engine.run_once() == 1
    finally:
        await pool.close()

    at_expiry = await taken_outbox(renewal_db)
    assert [e["type"] for e in at_expiry if e["type"] != "subscription.state"] == [
        "subscription.lapsed",  # the engine's first look at it, past grace: both, once each
        "subscription.expired",
        "quote_order.refused",
    ]
    [refused] = [e["data"] for e in at_expiry if e["type"] == "quote_order.refused"]
    assert (refused["request_id"], refused["order_id"], refused["reasons"]) == (
        f"r-{order_id}",
        order_id,
        ["EXPIRED"],
    )
    await quote_hears(quote_pool, at_expiry)
    rows = await quote_pool.fetch("SELECT status, order_id FROM quotes")
    assert [(row["status"], row["order_id"]) for row in rows] == [("sent", None)]

    await _money_after_grace_goes_back(quote_pool, renewal_db, csn, order_id)
    announced = [
        json.loads(row["value"]) for row in await quote_pool.fetch("SELECT value FROM outbox")
    ]
    assert [(e["type"], e["data"]["request_id"], e["data"]["reasons"]) for e in announced] == [
        ("quote.rejected", f"r-{order_id}", ["EXPIRED"])
    ]


def billing_said(order_id: str, csn: str, outcome: str) -> Delivery:
    """Billing's payment outcome of an order, as renewal's consumer hands it over."""
    if outcome == "failed":
        data: EventData = PaymentFailed(
            order_id=order_id, reason="card declined", next_retry_on=None
        )
    else:
        data = PaymentSucceeded(
            order_id=order_id,
            amount=Decimal("10.00"),
            currency="USD",
            payment_reference=f"PAY-{order_id}",
        )
    return delivered(data, csn, time=NOW)


async def quote_hears(pool: asyncpg.Pool, renewal_wrote: list[dict[str, Any]]) -> None:
    """What quote consumes of what renewal wrote, as the app wires it: the answers on
    `quote.order_answers`, in one batch."""
    registry = quote_orders.ANSWERS_REGISTRY
    answers = [
        Delivery(registry.parse(json.dumps(e).encode()), None)
        for e in renewal_wrote
        if e["type"] in registry.models
    ]
    async with pool.acquire() as connection, connection.transaction():
        unit = UnitOfWork(connection)
        await dispatch_by_type(QUOTES.order_answers())(unit, answers)
        await unit.outbox.flush(connection)


@pytest.mark.parametrize(
    ("outcomes", "status", "announced"),
    [
        (["succeeded", "succeeded"], "paid", ["quote.paid"]),
        (["failed", "succeeded"], "sent", []),
        (["succeeded", "failed"], "paid", ["quote.paid"]),
    ],
    ids=["paid twice", "failed then paid", "paid then failed"],
)
async def test_issue_19_billing_outcomes_of_a_quote_order_are_answered_once_the_first_deciding(
    quote_pool: asyncpg.Pool,
    renewal_db: DatabaseSettings,
    outcomes: list[str],
    status: str,
    announced: list[str],
) -> None:
    """Renewal settles billing's outcomes of a quote's order, each in a batch of its own, and
    answers the first only (its claim of the order); quote makes of it what it made of
    billing's events: `quote.paid` once, or the quote open again."""
    order_id = f"ORD-IT-{outcomes[0][:4]}{outcomes[1][:4]}"
    quote_number, csn = await accepted_quote(quote_pool, order_id)
    await _renewal_orders_the_quote(renewal_db, csn, quote_number, order_id)
    await taken_outbox(renewal_db)
    settle = billing_events_handler(RENEWAL_CLOCK, "/it/renewal", POLICY)
    for outcome in outcomes:
        await handle_in_transaction(renewal_db, settle, [billing_said(order_id, csn, outcome)])

    renewal_wrote = await taken_outbox(renewal_db, quote_orders.ANSWERS_TOPIC.name)
    first = "quote_order.paid" if outcomes[0] == "succeeded" else "quote_order.payment_failed"
    assert [(e["type"], e["subject"], e["data"]) for e in renewal_wrote] == [
        (first, csn, {"quote_number": quote_number, "order_id": order_id})
    ]
    await quote_hears(quote_pool, renewal_wrote)

    row = await quote_pool.fetchrow(
        "SELECT status FROM quotes WHERE quote_number = $1", quote_number
    )
    assert row is not None and row["status"] == status
    written = await quote_pool.fetch("SELECT value FROM outbox")
    assert [json.loads(row["value"])["type"] for row in written] == announced
