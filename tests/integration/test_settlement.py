"""Renewal's settlement of billing's answers, its handlers called directly on a real database
(issue 17 item 5): every order is placed the way the service places it (a renewal request and
the bulk worker, a quote's order, a seats or alignment command), then billing's answer is
handed to `billing_events_handler` as the consumer would, and the test reads what it saved and
announced. Renewal paid (LIFE-4, MAN-3), payment failed, a paid quote of each kind (QUO-3,
QUO-8; each answered to the quote service once, issue 19 item 3), seats (SEAT-1), alignment
(ALIGN-1), money that arrives after the order was released (issue 14), and a batch settled
set-based (issue 19 item 4).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from prometheus_client import REGISTRY

from deploy.local.samples import renewal_request, subscription, unique_csn
from services.renewal.abandoned import AbandonedOrders
from services.renewal.bulk_worker import BulkWorker
from services.renewal.changes import ChangeHandlers
from services.renewal.due_date_engine import DueDateEngine
from services.renewal.new_purchases import new_subscription_id
from services.renewal.open_quotes import quote_events_handler
from services.renewal.quote_orders import quote_order_handler
from services.renewal.renewal_requests import record_renewal_request
from services.renewal.settlement import billing_events_handler
from services.renewal.state import announced, snapshot_handler
from shared.clock import FixedClock
from shared.contracts import billing_events
from shared.contracts.billing_events import (
    OrderLine,
    PaymentAwaitingManual,
    PaymentFailed,
    PaymentSucceeded,
)
from shared.contracts.common import Actor
from shared.contracts.quote_events import QuotePaid
from shared.contracts.quote_orders import QuoteOrderRequested, TermStart
from shared.contracts.renewal_commands import AddSeats, AlignRenewalDates
from shared.contracts.subscription_events import PaymentMethod
from shared.db.pool import create_pool
from shared.db.settings import DatabaseSettings
from shared.eligibility import Policy
from shared.messaging.consumer import Delivery, UnitOfWork
from tests.integration.helpers import (
    CountingConnection,
    connection_to,
    consumed_as_a_batch,
    delivered,
    handle_in_transaction,
    migrated_schema,
    read_from_a_record,
    renewal_quote_sent,
    taken_outbox,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TODAY = NOW.date()
CLOCK = FixedClock(NOW)
POLICY = Policy()
SOURCE = "/it/renewal"
settle = billing_events_handler(CLOCK, SOURCE, POLICY)
follow_quotes = announced(quote_events_handler(CLOCK, SOURCE), POLICY, SOURCE, CLOCK)  # as wired


@pytest.fixture
async def renewal_db(admin_db: asyncpg.Connection) -> AsyncIterator[DatabaseSettings]:
    async with migrated_schema(admin_db, "renewal") as settings:
        async with connection_to(settings) as connection:
            await connection.execute(
                "INSERT INTO prices VALUES ('ACDLT', 'annual', 'USD', 466, 420),"
                " ('ACDLT', 'three_year', 'USD', 1310, 1179)"
            )
        yield settings


async def _given(
    settings: DatabaseSettings, renewal_date: date, *, csn: str | None = None, **fields: Any
) -> tuple[str, str]:
    """A subscription renewal holds, as the subscription system's snapshot makes it."""
    csn = csn or unique_csn("SETTLE")
    sid = f"S-{csn}-{fields.pop('suffix', 1)}"
    snapshot = subscription(sid, csn, renewal_date=renewal_date, **fields)
    await handle_in_transaction(
        settings, snapshot_handler(POLICY, SOURCE, CLOCK), [delivered(snapshot, csn, time=NOW)]
    )
    return csn, sid


async def _requested_renewal(settings: DatabaseSettings, csn: str, sids: list[str]) -> str:
    """A manual renewal request worked (MAN-1), making one order: its id."""
    _, orders = await _worked_request(settings, csn, sids)
    [order_id] = set(orders.values())
    return order_id


async def _worked_request(
    settings: DatabaseSettings, csn: str, sids: list[str]
) -> tuple[str, dict[str, str]]:
    """A manual renewal request worked: by renewal's intake for one subscription, by the bulk
    worker for more. Its request id, and its orders by their first subscription (MAN-2: one
    order a payment method)."""
    request = renewal_request(csn, sids)
    intake = record_renewal_request(CLOCK, SOURCE, POLICY)
    await handle_in_transaction(settings, intake, [delivered(request, csn, time=NOW)])
    pool = await create_pool(settings)
    try:
        worker = BulkWorker(pool, CLOCK, POLICY, source=SOURCE, per_claim=10, poll_seconds=1)
        assert await worker.work_pending() == (1 if len(sids) > 1 else 0)
    finally:
        await pool.close()
    orders = {
        e["data"]["lines"][0]["subscription_id"]: str(e["data"]["order_id"])
        for e in await taken_outbox(settings)
        if e["type"] == "order.requested"
    }
    return request.request_id, orders


def _paid(order_id: str, amount: str = "420.00") -> PaymentSucceeded:
    return PaymentSucceeded(
        order_id=order_id, amount=Decimal(amount), currency="USD", payment_reference=f"P-{order_id}"
    )


async def _settled(settings: DatabaseSettings, csn: str, *answers: Any) -> list[dict[str, Any]]:
    """Billing's answers settled in one batch: the events renewal wrote, but the states."""
    await handle_in_transaction(settings, settle, [delivered(a, csn, time=NOW) for a in answers])
    return [e for e in await taken_outbox(settings) if e["type"] != "subscription.state"]


async def _subscription(settings: DatabaseSettings, sid: str) -> dict[str, Any]:
    async with connection_to(settings) as connection:
        row = await connection.fetchrow(
            "SELECT renewal_date, term, seats, next_term, next_seats, next_check_for"
            " FROM subscriptions WHERE subscription_id = $1",
            sid,
        )
    assert row is not None
    return dict(row)


async def _history(settings: DatabaseSettings, sid: str) -> list[str]:
    async with connection_to(settings) as connection:
        rows = await connection.fetch(
            "SELECT change FROM subscription_history WHERE subscription_id = $1 ORDER BY id", sid
        )
    return [row["change"] for row in rows]


async def _reserved(settings: DatabaseSettings) -> list[str]:
    async with connection_to(settings) as connection:
        rows = await connection.fetch("SELECT subscription_id FROM term_reservations")
    return [row["subscription_id"] for row in rows]


async def test_life_4_man_3_a_paid_renewal_renews_from_the_renewal_date_once(
    renewal_db: DatabaseSettings,
) -> None:
    """The term starts on the renewal date (LIFE-4); the event carries what the order's one
    confirmation shows (MAN-3: total, currency, how many it renewed); seen twice, once."""
    renewal_date = TODAY + timedelta(days=20)
    csn, sid = await _given(renewal_db, renewal_date)
    order_id = await _requested_renewal(renewal_db, csn, [sid])

    events = await _settled(renewal_db, csn, _paid(order_id), _paid(order_id))

    assert [(e["type"], e["subject"]) for e in events] == [("subscription.renewed", csn)]
    renewed = events[0]["data"]
    assert renewed["order_id"] == order_id and renewed["subscription_id"] == sid
    assert (renewed["previous_renewal_date"], renewed["renewal_date"]) == (
        renewal_date.isoformat(),
        date(2027, 3, 21).isoformat(),
    )
    assert (renewed["term"], renewed["seats"]) == ("annual", 1)
    assert (renewed["order_total"], renewed["currency"], renewed["renewed_in_order"]) == (
        "420.00",
        "USD",
        1,
    )
    assert (await _subscription(renewal_db, sid))["renewal_date"] == date(2027, 3, 21)
    assert await _history(renewal_db, sid) == ["renewed"]
    assert await _reserved(renewal_db) == []
    async with connection_to(renewal_db) as connection:
        item = await connection.fetchrow("SELECT status, reasons FROM renewal_batch_items")
    assert item is not None and (item["status"], list(item["reasons"])) == ("renewed", [])
    assert await _settled(renewal_db, csn, _paid(order_id)) == []  # again later: nothing


async def test_a_bulk_request_completes_once_its_order_is_settled(
    renewal_db: DatabaseSettings,
) -> None:
    """Of two subscriptions asked together, one past grace is refused at once (LIFE-5) and the
    other ordered; its payment renews it and completes the request: `bulk.completed` with
    every subscription's outcome."""
    csn, renewable = await _given(renewal_db, TODAY + timedelta(days=20))
    _, expired = await _given(renewal_db, TODAY - timedelta(days=60), csn=csn, suffix=2)
    order_id = await _requested_renewal(renewal_db, csn, [renewable, expired])

    events = await _settled(renewal_db, csn, _paid(order_id))

    assert [e["type"] for e in events] == ["subscription.renewed", "bulk.completed"]
    completed = events[1]["data"]
    assert (completed["succeeded"], completed["rejected"]) == (1, 1)
    assert [(o["subscription_id"], o["status"], o["order_id"]) for o in completed["outcomes"]] == [
        (renewable, "succeeded", order_id),
        (expired, "rejected", None),
    ]


async def test_a_failed_payment_rejects_the_request_and_releases_the_term(
    renewal_db: DatabaseSettings,
) -> None:
    renewal_date = TODAY + timedelta(days=20)
    csn, sid = await _given(renewal_db, renewal_date)
    order_id = await _requested_renewal(renewal_db, csn, [sid])

    failed = PaymentFailed(order_id=order_id, reason="card declined", next_retry_on=None)
    events = await _settled(renewal_db, csn, failed)

    assert [(e["type"], e["data"]["subscription_id"], e["data"]["reasons"]) for e in events] == [
        ("renewal.rejected", sid, ["PAYMENT_METHOD_INVALID"])
    ]
    assert (await _subscription(renewal_db, sid))["renewal_date"] == renewal_date
    assert await _reserved(renewal_db) == []
    async with connection_to(renewal_db) as connection:
        item = await connection.fetchrow("SELECT status, reasons FROM renewal_batch_items")
    assert item is not None
    assert (item["status"], list(item["reasons"])) == ("rejected", ["PAYMENT_METHOD_INVALID"])


async def test_an_automatic_renewals_failed_payment_hands_it_back_to_the_engine(
    renewal_db: DatabaseSettings,
) -> None:
    """The due-date engine put off its next look while the charge was in flight: it looks
    again (next_check_for cleared), and nothing is answered (no request)."""
    csn, sid = await _given(renewal_db, TODAY)
    async with connection_to(renewal_db) as connection:
        await connection.execute(
            "UPDATE subscriptions SET next_check_for = $2 WHERE subscription_id = $1",
            sid,
            TODAY + timedelta(days=3),
        )
        await connection.execute(
            "INSERT INTO orders (order_id, request_id, csn, subscription_ids)"
            " VALUES ('O-auto', NULL, $1, $2)",
            csn,
            [sid],
        )
    failed = PaymentFailed(order_id="O-auto", reason="card declined", next_retry_on=None)

    assert await _settled(renewal_db, csn, failed) == []
    assert (await _subscription(renewal_db, sid))["next_check_for"] is None


async def _quote_order(
    settings: DatabaseSettings,
    csn: str,
    sid: str,
    term_start: date,
    *,
    kind: str,
    term: str = "annual",
    seats: int = 1,
    target_date: date | None = None,
    more: dict[str, date] | None = None,
) -> str:
    """The quote service's accepted quote, reserved and ordered by renewal (QUO-8); `more`
    quoted subscriptions, each with its term start, are lines of it too."""
    order_id = f"O-Q-{kind}-{csn}"
    starts = {sid: term_start, **(more or {})}
    command = QuoteOrderRequested(
        request_id=f"r-{order_id}",
        quote_number="Q-2026-000001",
        kind=kind,  # type: ignore[arg-type]
        order_id=order_id,
        csn=csn,
        currency="USD",
        purchase_method="direct_online",
        payment_method=PaymentMethod(type="card", recurring=True, valid=True),
        lines=[
            OrderLine(
                subscription_id=quoted,
                product_code="ACDLT",
                term=term,  # type: ignore[arg-type]
                seats=seats,
                unit_price=Decimal("100.00"),
                amount=Decimal("100.00") * seats,
            )
            for quoted in starts
        ],
        total=Decimal("100.00") * seats * len(starts),
        term_starts=[TermStart(subscription_id=q, term_start=d) for q, d in starts.items()],
        target_date=target_date,
    )
    handle = quote_order_handler(CLOCK, POLICY, SOURCE)
    await handle_in_transaction(settings, handle, delivered(command, csn, time=NOW))
    placed = [e for e in await taken_outbox(settings) if e["type"] == "order.requested"]
    assert [e["data"]["order_id"] for e in placed] == [order_id]
    return order_id


async def _quote_event(settings: DatabaseSettings, csn: str, event: Any) -> list[tuple]:
    """The quote service's `quote.events`, followed by renewal: the auto-renew switches."""
    await handle_in_transaction(settings, follow_quotes, [delivered(event, csn, time=NOW)])
    switched = await taken_outbox(settings, "renewal.events")
    return [(e["data"]["enabled"], e["data"]["reason"]) for e in switched]


async def test_quo_8_auto_5_a_paid_renewal_quote_renews_for_its_term_and_seats(
    renewal_db: DatabaseSettings,
) -> None:
    """Auto-renew is off while the quote that changes the term and seats is open (AUTO-5);
    its payment renews for them, and once the quote is paid auto-renew is on again."""
    renewal_date = TODAY + timedelta(days=20)
    csn, sid = await _given(renewal_db, renewal_date, auto_renew=True)
    sent = renewal_quote_sent(
        sid,
        "Q-2026-000001",
        term="three_year",
        seats=3,
        unit_price=Decimal("100.00"),
        expires_on=TODAY + timedelta(days=29),
    )
    assert await _quote_event(renewal_db, csn, sent) == [(False, "AUTO-5")]
    order_id = await _quote_order(
        renewal_db, csn, sid, renewal_date, kind="renewal", term="three_year", seats=3
    )

    events = await _settled(renewal_db, csn, _paid(order_id, "300.00"))

    assert [e["type"] for e in events] == ["subscription.renewed", "quote_order.paid"]
    assert events[1]["data"] == {"quote_number": "Q-2026-000001", "order_id": order_id}
    renewed = events[0]["data"]
    assert (renewed["term"], renewed["seats"], renewed["renewal_date"]) == (
        "three_year",
        3,
        date(2029, 3, 21).isoformat(),
    )
    held = await _subscription(renewal_db, sid)
    assert (held["renewal_date"], held["term"], held["seats"]) == (
        date(2029, 3, 21),
        "three_year",
        3,
    )
    assert (held["next_term"], held["next_seats"]) == (None, None)
    paid = QuotePaid(quote_number="Q-2026-000001", order_id=order_id)
    assert await _quote_event(renewal_db, csn, paid) == [(True, "AUTO-5")]
    assert await _quote_event(renewal_db, csn, paid) == []  # paid already: nothing more


async def test_quo_3_a_paid_alignment_quote_moves_the_renewal_date_to_its_target(
    renewal_db: DatabaseSettings,
) -> None:
    renewal_date = TODAY + timedelta(days=20)
    target = TODAY + timedelta(days=80)
    csn, sid = await _given(renewal_db, renewal_date)
    order_id = await _quote_order(
        renewal_db, csn, sid, renewal_date, kind="alignment", target_date=target
    )

    # The quote service is answered (it announces `quote.paid`): no event of renewal's own.
    events = await _settled(renewal_db, csn, _paid(order_id, "100.00"))
    assert [(e["type"], e["data"]["order_id"]) for e in events] == [("quote_order.paid", order_id)]

    assert (await _subscription(renewal_db, sid))["renewal_date"] == target
    assert await _history(renewal_db, sid) == ["renewal_date_aligned"]


async def test_quo_3_life_3_a_paid_new_purchase_quote_starts_a_new_subscription_today(
    renewal_db: DatabaseSettings,
) -> None:
    """The quoted subscription (expired here) stays as it is; the new one starts on the payment
    day for the quoted term and seats, with an id derived from the order: once if seen twice."""
    expired_on = TODAY - timedelta(days=90)
    csn, sid = await _given(renewal_db, expired_on)
    order_id = await _quote_order(
        renewal_db, csn, sid, expired_on, kind="new", term="three_year", seats=2
    )

    events = await _settled(renewal_db, csn, _paid(order_id, "200.00"), _paid(order_id, "200.00"))
    assert [(e["type"], e["data"]["order_id"]) for e in events] == [("quote_order.paid", order_id)]

    new_id = new_subscription_id(order_id, sid)
    started = await _subscription(renewal_db, new_id)
    assert (started["renewal_date"], started["term"], started["seats"]) == (
        date(2029, 3, 1),
        "three_year",
        2,
    )
    assert (await _subscription(renewal_db, sid))["renewal_date"] == expired_on
    assert await _history(renewal_db, new_id) == ["new_purchase"]


async def test_issue_19_a_quote_orders_failed_payment_is_answered_to_the_quote_service_once(
    renewal_db: DatabaseSettings,
) -> None:
    """The term is released and the quote service hears it (it opens the quote again): no
    `renewal.rejected`, as no renewal request asked; the same failure again answers nothing."""
    renewal_date = TODAY + timedelta(days=20)
    csn, sid = await _given(renewal_db, renewal_date)
    order_id = await _quote_order(renewal_db, csn, sid, renewal_date, kind="renewal")
    failed = PaymentFailed(order_id=order_id, reason="card declined", next_retry_on=None)

    events = await _settled(renewal_db, csn, failed, failed)

    assert [(e["type"], e["subject"], e["data"]) for e in events] == [
        (
            "quote_order.payment_failed",
            csn,
            {"quote_number": "Q-2026-000001", "order_id": order_id},
        )
    ]
    assert await _reserved(renewal_db) == []
    assert await _settled(renewal_db, csn, failed) == []


async def test_seat_1_paid_seats_are_added_and_answered(renewal_db: DatabaseSettings) -> None:
    csn, sid = await _given(renewal_db, TODAY + timedelta(days=200), seats=2)
    command = AddSeats(
        request_id="r-seats",
        actor=Actor(user_id=f"{csn}-buyer", csn=csn),
        subscription_id=sid,
        seats=3,
    )
    add_seats = ChangeHandlers(CLOCK, POLICY, SOURCE).handlers()[AddSeats]
    await handle_in_transaction(
        renewal_db, add_seats, delivered(command, csn, time=NOW, signer="portal")
    )
    [order] = [e for e in await taken_outbox(renewal_db) if e["type"] == "order.requested"]
    prorated = order["data"]["total"]

    events = await _settled(renewal_db, csn, _paid(order["data"]["order_id"], prorated))

    assert [e["type"] for e in events] == ["seats.updated"]
    updated = events[0]["data"]
    assert (updated["request_id"], updated["seats"], updated["seats_added"]) == ("r-seats", 5, 3)
    assert (updated["prorated_total"], updated["currency"]) == (prorated, "USD")
    assert (await _subscription(renewal_db, sid))["seats"] == 5


async def test_align_1_a_paid_alignment_moves_every_date_and_is_answered(
    renewal_db: DatabaseSettings,
) -> None:
    csn, first = await _given(renewal_db, TODAY + timedelta(days=30))
    _, second = await _given(renewal_db, TODAY + timedelta(days=60), csn=csn, suffix=2)
    target = TODAY + timedelta(days=90)
    command = AlignRenewalDates(
        request_id="r-align",
        actor=Actor(user_id=f"{csn}-buyer", csn=csn),
        subscription_ids=[first, second],
        target_date=target,
    )
    align = ChangeHandlers(CLOCK, POLICY, SOURCE).handlers()[AlignRenewalDates]
    await handle_in_transaction(
        renewal_db, align, delivered(command, csn, time=NOW, signer="portal")
    )
    [order] = [e for e in await taken_outbox(renewal_db) if e["type"] == "order.requested"]

    events = await _settled(
        renewal_db, csn, _paid(order["data"]["order_id"], order["data"]["total"])
    )

    assert [e["type"] for e in events] == ["renewal_dates.updated"]
    assert events[0]["data"]["request_id"] == "r-align"
    for sid in (first, second):
        assert (await _subscription(renewal_db, sid))["renewal_date"] == target
        assert await _history(renewal_db, sid) == ["renewal_date_aligned"]


async def test_issue_14_money_for_an_order_released_meanwhile_goes_back(
    renewal_db: DatabaseSettings,
) -> None:
    """A manual payment not made by its pay-by date released the term, and the release
    answered the request: refused, in the release's transaction. The subscription has not
    expired: the refusal says the order's payment did not go through (PAYMENT_METHOD_INVALID,
    as a failed payment's), not EXPIRED (issue 19). The money that still comes is refunded
    (RESERVATION_RELEASED) and nothing renews; the request, answered, is not answered again."""
    renewal_date = TODAY + timedelta(days=20)
    csn, sid = await _given(renewal_db, renewal_date, payment_type="bank_transfer")
    order_id = await _requested_renewal(renewal_db, csn, [sid])

    released = await _abandon(renewal_db, csn, order_id)

    assert [(e["type"], e["data"]["subscription_id"], e["data"]["reasons"]) for e in released] == [
        ("renewal.rejected", sid, ["PAYMENT_METHOD_INVALID"])
    ]
    assert released[0]["data"]["request_id"] == await _request_of(renewal_db, order_id)

    events = await _settled(renewal_db, csn, _paid(order_id))

    assert [(e["type"], e["data"].get("reason")) for e in events] == [
        ("payment.refund_requested", "RESERVATION_RELEASED"),
    ]
    assert (await _subscription(renewal_db, sid))["renewal_date"] == renewal_date
    assert await _history(renewal_db, sid) == ["order_abandoned", "payment_refunded"]


async def _request_of(settings: DatabaseSettings, order_id: str) -> str:
    async with connection_to(settings) as connection:
        return str(
            await connection.fetchval("SELECT request_id FROM orders WHERE order_id = $1", order_id)
        )


async def _abandon(settings: DatabaseSettings, csn: str, order_id: str) -> list[dict[str, Any]]:
    """The order's manual payment was due yesterday: the abandoned-orders loop releases it;
    the events it wrote, but the states."""
    waiting = PaymentAwaitingManual(
        order_id=order_id,
        amount=Decimal("420.00"),
        currency="USD",
        payment_reference=f"P-manual-{order_id}",
        pay_by=TODAY - timedelta(days=1),
    )
    assert await _settled(settings, csn, waiting) == []
    pool = await create_pool(settings)
    try:
        abandoned = AbandonedOrders(pool, CLOCK, source=SOURCE, batch_size=10, poll_seconds=1)
        assert await abandoned.step() == 1
        assert await abandoned.step() == 0  # released once, answered once
    finally:
        await pool.close()
    return [e for e in await taken_outbox(settings) if e["type"] != "subscription.state"]


async def test_man_2_issue_19_a_bulk_request_completes_when_its_bank_transfer_is_abandoned(
    renewal_db: DatabaseSettings,
) -> None:
    """Two payment methods, two orders (MAN-2): the card's renews and the request waits for
    the bank transfer's, which is never paid by its pay-by date. Its release settles that item
    rejected (PAYMENT_METHOD_INVALID) and completes the request, with the card's outcome as it
    was; the money that comes after all only goes back."""
    csn, by_card = await _given(renewal_db, TODAY + timedelta(days=20))
    _, by_transfer = await _given(
        renewal_db, TODAY + timedelta(days=20), csn=csn, suffix=2, payment_type="bank_transfer"
    )
    request_id, orders = await _worked_request(renewal_db, csn, [by_card, by_transfer])
    assert [e["type"] for e in await _settled(renewal_db, csn, _paid(orders[by_card]))] == [
        "subscription.renewed"
    ]

    released = await _abandon(renewal_db, csn, orders[by_transfer])

    assert [e["type"] for e in released] == ["renewal.rejected", "bulk.completed"]
    assert released[0]["data"]["subscription_id"] == by_transfer
    completed = released[1]["data"]
    assert completed["request_id"] == request_id
    assert (completed["succeeded"], completed["rejected"]) == (1, 1)
    assert [
        (o["subscription_id"], o["status"], o["reasons"], o["order_id"])
        for o in completed["outcomes"]
    ] == [
        (by_card, "succeeded", [], orders[by_card]),
        (by_transfer, "rejected", ["PAYMENT_METHOD_INVALID"], orders[by_transfer]),
    ]
    late = await _settled(renewal_db, csn, _paid(orders[by_transfer]))
    assert [(e["type"], e["data"].get("reason")) for e in late] == [
        ("payment.refund_requested", "RESERVATION_RELEASED")
    ]
    async with connection_to(renewal_db) as connection:
        assert await connection.fetchval("SELECT status FROM renewal_batches") == "completed"


async def test_issue_19_a_batch_of_answers_is_settled_in_statements_that_do_not_grow_with_it(
    renewal_db: DatabaseSettings,
) -> None:
    """Ten paid renewals and ten failed ones of one batch take as many statements as two."""

    async def statements_for(orders: int) -> int:
        answers = []
        for n in range(orders):
            csn, sid = await _given(renewal_db, TODAY + timedelta(days=20))
            order_id = await _requested_renewal(renewal_db, csn, [sid])
            answers.append(
                _paid(order_id)
                if n % 2
                else PaymentFailed(order_id=order_id, reason="declined", next_retry_on=None)
            )
        async with connection_to(renewal_db) as connection, connection.transaction():
            counting = CountingConnection(connection)
            unit = UnitOfWork(counting)  # type: ignore[arg-type]
            await settle(unit, [delivered(a, "CSN-ANY", time=NOW) for a in answers])
            await unit.outbox.flush(connection)
        renewed = [e for e in await taken_outbox(renewal_db) if e["type"] == "subscription.renewed"]
        assert len(renewed) == orders // 2
        return len(counting.statements)

    assert await statements_for(20) == await statements_for(2)


async def test_issue_19_a_settled_request_completes_in_the_statement_that_settles_its_items(
    renewal_db: DatabaseSettings,
) -> None:
    """#19 plan item 7: billing's answers to a single-subscription request and to a bulk one
    settle their items and complete both batches in one statement (after one that locks their
    batches: test_batch_completion.py); only the bulk request's items are read again, for its
    `bulk.completed`."""
    csn, single = await _given(renewal_db, TODAY + timedelta(days=20))
    single_order = await _requested_renewal(renewal_db, csn, [single])
    bulk_csn, renewable = await _given(renewal_db, TODAY + timedelta(days=20))
    _, other = await _given(renewal_db, TODAY + timedelta(days=20), csn=bulk_csn, suffix=2)
    bulk_order = await _requested_renewal(renewal_db, bulk_csn, [renewable, other])
    answers = [_paid(single_order), _paid(bulk_order, "840.00")]

    async with connection_to(renewal_db) as connection, connection.transaction():
        counting = CountingConnection(connection)
        unit = UnitOfWork(counting)  # type: ignore[arg-type]
        await settle(unit, [delivered(a, "CSN-ANY", time=NOW) for a in answers])
        await unit.outbox.flush(connection)

    batch_statements = [s for s in counting.statements if "renewal_batch" in s]
    assert len(batch_statements) == 3, batch_statements
    assert "FOR UPDATE" in batch_statements[0]  # the batches locked, nothing written
    assert batch_statements[2].lstrip().startswith("SELECT")  # the bulk request's outcomes
    async with connection_to(renewal_db) as connection:
        statuses = await connection.fetch("SELECT status FROM renewal_batches")
    assert [row["status"] for row in statuses] == ["completed", "completed"]
    events = [e for e in await taken_outbox(renewal_db) if e["type"] != "subscription.state"]
    assert sorted(e["type"] for e in events) == [
        "bulk.completed",
        "subscription.renewed",
        "subscription.renewed",
        "subscription.renewed",
    ]
    [completed] = [e for e in events if e["type"] == "bulk.completed"]
    assert (completed["subject"], completed["data"]["succeeded"]) == (bulk_csn, 2)
    assert [(o["subscription_id"], o["order_id"]) for o in completed["data"]["outcomes"]] == [
        (renewable, bulk_order),
        (other, bulk_order),
    ]


async def test_man_2_a_bulk_request_of_two_orders_completes_with_the_second_answer_only(
    renewal_db: DatabaseSettings,
) -> None:
    """Two payment methods, two orders (MAN-2): the first answer settles its item and leaves
    the request waiting for the other; the second completes it, once (#19 plan item 7: the
    statement that settles the items also decides what still waits)."""
    csn, by_card = await _given(renewal_db, TODAY + timedelta(days=20))
    _, by_paypal = await _given(
        renewal_db, TODAY + timedelta(days=20), csn=csn, suffix=2, payment_type="paypal"
    )
    _, orders = await _worked_request(renewal_db, csn, [by_card, by_paypal])
    assert set(orders) == {by_card, by_paypal}

    first = await _settled(renewal_db, csn, _paid(orders[by_card]))
    second = await _settled(renewal_db, csn, _paid(orders[by_paypal]))

    assert [e["type"] for e in first] == ["subscription.renewed"]
    assert [e["type"] for e in second] == ["subscription.renewed", "bulk.completed"]
    assert [(o["subscription_id"], o["status"]) for o in second[1]["data"]["outcomes"]] == [
        (by_card, "succeeded"),
        (by_paypal, "succeeded"),
    ]
    async with connection_to(renewal_db) as connection:
        assert await connection.fetchval("SELECT status FROM renewal_batches") == "completed"


def _settle_on(day: date) -> Any:
    """Billing's answers settled when the CSN's today is `day` (its money arrived late)."""
    late = FixedClock(datetime.combine(day, NOW.timetz()))
    return billing_events_handler(late, SOURCE, POLICY)


async def test_life_3_money_after_a_real_expiry_is_still_refused_expired(
    renewal_db: DatabaseSettings,
) -> None:
    """The counterpart of the abandoned order above: a bank transfer paid, on time for its
    order, but after grace ended (LIFE-3, LIFE-5) goes back and the request hears EXPIRED."""
    renewal_date = TODAY + timedelta(days=20)
    csn, sid = await _given(renewal_db, renewal_date, payment_type="bank_transfer")
    order_id = await _requested_renewal(renewal_db, csn, [sid])
    after_grace = renewal_date + timedelta(days=POLICY.grace_days_quote_or_manual + 1)

    await handle_in_transaction(
        renewal_db, _settle_on(after_grace), [delivered(_paid(order_id), csn, time=NOW)]
    )

    events = [e for e in await taken_outbox(renewal_db) if e["type"] != "subscription.state"]
    assert [(e["type"], e["data"].get("reason"), e["data"].get("reasons")) for e in events] == [
        ("payment.refund_requested", "EXPIRED", None),
        ("renewal.rejected", None, ["EXPIRED"]),
    ]
    assert (await _subscription(renewal_db, sid))["renewal_date"] == renewal_date


async def test_life_3_issue_19_an_order_let_go_at_expiry_answers_its_request_then_not_again(
    renewal_db: DatabaseSettings,
) -> None:
    """A bank transfer not received by the end of grace: the expiry (LIFE-3) lets the order's
    term go and answers the request then, EXPIRED, in the engine's transaction, its batch item
    settled rejected — not only if the money comes. The money that comes after all goes
    back, and the request, answered, is not answered again."""
    renewal_date = TODAY + timedelta(days=20)
    csn, sid = await _given(renewal_db, renewal_date, payment_type="bank_transfer")
    order_id = await _requested_renewal(renewal_db, csn, [sid])
    after_grace = renewal_date + timedelta(days=POLICY.grace_days_quote_or_manual + 1)
    late = FixedClock(datetime.combine(after_grace, NOW.timetz()))
    pool = await create_pool(renewal_db)
    try:
        engine = DueDateEngine(pool, late, POLICY, source=SOURCE, batch_size=10, interval_seconds=1)
        assert await engine.run_once() == 1
    finally:
        await pool.close()

    at_expiry = [e for e in await taken_outbox(renewal_db) if e["type"] != "subscription.state"]
    assert [(e["type"], e["data"].get("reasons")) for e in at_expiry] == [
        ("subscription.lapsed", None),
        ("subscription.expired", None),
        ("renewal.rejected", ["EXPIRED"]),
    ]
    assert at_expiry[2]["data"]["request_id"] == await _request_of(renewal_db, order_id)
    async with connection_to(renewal_db) as connection:
        item = await connection.fetchrow("SELECT status, reasons FROM renewal_batch_items")
    assert item is not None and (item["status"], list(item["reasons"])) == ("rejected", ["EXPIRED"])

    await handle_in_transaction(
        renewal_db, _settle_on(after_grace), [delivered(_paid(order_id), csn, time=NOW)]
    )
    events = [e for e in await taken_outbox(renewal_db) if e["type"] != "subscription.state"]
    assert [(e["type"], e["data"].get("reason")) for e in events] == [
        ("payment.refund_requested", "EXPIRED")
    ]


async def test_life_3_quo_3_a_quote_whose_money_went_back_is_not_answered_paid(
    renewal_db: DatabaseSettings,
) -> None:
    """Issue 19: a renewal quote's order paid after the subscription expired renews nothing;
    its money goes back, and the quote service hears that (`quote_order.refunded`, with the
    acceptance's request id and why), not `quote_order.paid`."""
    renewal_date = TODAY + timedelta(days=20)
    csn, sid = await _given(renewal_db, renewal_date)
    order_id = await _quote_order(renewal_db, csn, sid, renewal_date, kind="renewal")
    after_grace = renewal_date + timedelta(days=POLICY.grace_days_quote_or_manual + 1)

    await handle_in_transaction(
        renewal_db,
        _settle_on(after_grace),
        [delivered(_paid(order_id, "100.00"), csn, time=NOW)],
    )

    events = [e for e in await taken_outbox(renewal_db) if e["type"] != "subscription.state"]
    assert [(e["type"], e["data"]) for e in events] == [
        (
            "payment.refund_requested",
            {"order_id": order_id, "csn": csn, "subscription_ids": [], "reason": "EXPIRED"},
        ),
        (
            "quote_order.refunded",
            {
                "request_id": f"r-{order_id}",
                "quote_number": "Q-2026-000001",
                "order_id": order_id,
                "reasons": ["EXPIRED"],
            },
        ),
    ]
    assert (await _subscription(renewal_db, sid))["renewal_date"] == renewal_date


async def test_quo_3_a_quote_with_one_line_renewed_and_one_refunded_is_paid(
    renewal_db: DatabaseSettings,
) -> None:
    """Two lines, one expired by the time the money came (LIFE-3): that line's money goes
    back (billing refunds that line only), the other renews, and the quote is paid — it
    bought a term, and accepting it again could buy nothing more."""
    csn, renewable = await _given(renewal_db, TODAY + timedelta(days=20))
    _, expiring = await _given(renewal_db, TODAY - timedelta(days=40), csn=csn, suffix=2)
    order_id = await _quote_order(
        renewal_db,
        csn,
        renewable,
        TODAY + timedelta(days=20),
        kind="renewal",
        more={expiring: TODAY - timedelta(days=40)},
    )

    # Paid ten days later: the second subscription's grace (45 days from its date) is over.
    await handle_in_transaction(
        renewal_db,
        _settle_on(TODAY + timedelta(days=10)),
        [delivered(_paid(order_id, "200.00"), csn, time=NOW)],
    )

    events = [e for e in await taken_outbox(renewal_db) if e["type"] != "subscription.state"]
    assert [(e["type"], e["data"].get("subscription_id")) for e in events] == [
        ("subscription.renewed", renewable),
        ("payment.refund_requested", None),
        ("quote_order.paid", None),
    ]
    assert events[1]["data"]["subscription_ids"] == [expiring]
    assert events[2]["data"] == {"quote_number": "Q-2026-000001", "order_id": order_id}


async def test_issue_19_an_order_naming_a_subscription_not_held_goes_back_and_the_batch_settles(
    renewal_db: DatabaseSettings,
) -> None:
    """One order of the batch names a subscription renewal does not hold (a renewal request's,
    and a seats command's): their money goes back (UNKNOWN_SUBSCRIPTION) and their requests
    hear it; the good order of the same batch renews as if alone, and nothing is raised."""
    csn, sid = await _given(renewal_db, TODAY + timedelta(days=20))
    good = await _requested_renewal(renewal_db, csn, [sid])
    async with connection_to(renewal_db) as connection:
        await connection.execute(
            "INSERT INTO orders (order_id, request_id, csn, subscription_ids, purpose, detail)"
            " VALUES ('O-gone', 'r-gone', $1, $2, 'renewal', '{}'),"
            " ('O-gone-seats', 'r-gone-seats', $1, $2, 'seats', $3)",
            csn,
            ["S-GONE"],
            '{"seats_added": 2, "total": "40.00",'
            ' "lines": [{"subscription_id": "S-GONE", "term": "annual", "seats": 2}]}',
        )

    events = await _settled(
        renewal_db, csn, _paid("O-gone"), _paid(good), _paid("O-gone-seats", "40.00")
    )

    assert [(e["type"], e["data"].get("order_id"), e["data"].get("reason")) for e in events] == [
        ("payment.refund_requested", "O-gone", "UNKNOWN_SUBSCRIPTION"),
        ("renewal.rejected", None, None),
        ("subscription.renewed", good, None),
        ("payment.refund_requested", "O-gone-seats", "UNKNOWN_SUBSCRIPTION"),
        ("renewal.rejected", None, None),
    ]
    assert [e["data"]["request_id"] for e in (events[1], events[4])] == ["r-gone", "r-gone-seats"]
    for rejected in (events[1], events[4]):
        assert rejected["data"]["subscription_id"] == "S-GONE"
        assert rejected["data"]["reasons"] == ["UNKNOWN_SUBSCRIPTION"]
    assert (await _subscription(renewal_db, sid))["renewal_date"] == date(2027, 3, 21)


def _renewed_by_command() -> float:
    labels = {"service": "renewal", "trigger": "command"}
    return REGISTRY.get_sample_value("renewals_subscriptions_renewed_total", labels) or 0.0


async def test_a_renewal_settled_in_a_batch_retried_one_by_one_counts_once(
    renewal_db: DatabaseSettings,
) -> None:
    """The consumer settles a batch of billing's answers in one transaction and, when it fails,
    each answer alone (shared/messaging/consumer.py): the renewal counted in the batch that
    rolled back must not be counted again when its answer commits alone."""
    csn, subscription_id = await _given(renewal_db, NOW.date() + timedelta(days=20))
    order_id = await _requested_renewal(renewal_db, csn, [subscription_id])
    good = delivered(_paid(order_id), csn, time=NOW)
    poison = read_from_a_record(delivered(_paid("O-poison"), csn, time=NOW))

    async def settle_then_fail(unit: UnitOfWork, deliveries: list[Delivery]) -> None:
        await settle(unit, [d for d in deliveries if d is not poison])
        if poison in deliveries:
            raise RuntimeError("this one fails, every time")

    before = _renewed_by_command()
    handled, [letter] = await consumed_as_a_batch(
        renewal_db, billing_events, settle_then_fail, [good, poison], service="renewal"
    )
    assert (handled, letter.record) == (1, poison.record)
    assert _renewed_by_command() - before == 1
