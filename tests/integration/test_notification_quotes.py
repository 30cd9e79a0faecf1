"""Notification's `quote.events` a batch at a time (`quotes.py`, #19): a busy day's hundreds of
`quote.sent` cost a few statements, not three round trips each, and give what handling them one
by one in order gives: each quote's email (QUO-8, QUO-2) in the trace of its own event, the
quote open until it is paid, expired or cancelled (NOTE-1) — even within one batch."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal

import asyncpg

from deploy.local.samples import subscription, unique_csn
from services.notification import store
from services.notification.directory import save_snapshots
from services.notification.quotes import quote_events_handler
from services.notification.settings import NotificationSettings
from services.notification.store import Email
from shared.clock import FixedClock
from shared.contracts.quote_events import QuoteCancelled, QuotePaid
from shared.db.settings import DatabaseSettings
from shared.messaging import tracing
from shared.messaging.consumer import Delivery, UnitOfWork
from shared.test_clocks import CsnClock
from tests.integration.helpers import (
    CountingConnection,
    connection_to,
    delivered,
    renewal_quote_sent,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
RENEWAL_DATE = date(2026, 4, 1)


async def known(connection: asyncpg.Connection, csn: str, count: int) -> list[str]:
    """`count` subscriptions of `csn` in the directory, named `Product <n>`."""
    sids = [f"S-{csn}-{n}" for n in range(count)]
    snapshots = [
        delivered(
            subscription(sid, csn, renewal_date=RENEWAL_DATE, product_name=f"Product {n}"),
            csn,
            time=NOW,
        )
        for n, sid in enumerate(sids)
    ]
    await save_snapshots(CsnClock(FixedClock(NOW)).today_for)(UnitOfWork(connection), snapshots)
    return sids


def sent(csn: str, number: str, sid: str, *, recipients: list[str] | None = None) -> Delivery:
    data = renewal_quote_sent(
        sid,
        number,
        term="annual",
        seats=2,
        unit_price=Decimal("420.00"),
        expires_on=date(2026, 3, 31),
    )
    return delivered(data.model_copy(update={"recipients": recipients or []}), csn, time=NOW)


def trace_id(traceparent: str | None) -> str:
    span = tracing.parse(traceparent)
    assert span is not None, traceparent
    return span.trace_id


async def handled_as_one_batch(
    connection: asyncpg.Connection, deliveries: list[Delivery]
) -> list[str]:
    """The deliveries handled as the consumer hands them over, in one call: the statements."""
    counting = CountingConnection(connection)
    handler = quote_events_handler(FixedClock(NOW), NotificationSettings())
    await handler(UnitOfWork(counting), deliveries)  # type: ignore[arg-type]
    return counting.statements


async def test_quo_8_a_busy_days_quotes_are_queued_in_three_statements_each_in_its_own_trace(
    notification_db: DatabaseSettings,
) -> None:
    csn = unique_csn()
    async with connection_to(notification_db) as connection, connection.transaction():
        sids = await known(connection, csn, 40)
        batch = [sent(csn, f"Q-{csn}-{n}", sid) for n, sid in enumerate(sids)]
        batch.append(sent(csn, f"Q-{csn}-0", sids[0]))  # the same quote.sent again: one email
        statements = await handled_as_one_batch(connection, batch)
        emails = await connection.fetch(
            "SELECT notification_key, kind, recipients, subscription_ids, quote_number,"
            " traceparent, context::text AS context FROM emails WHERE csn = $1"
            " ORDER BY notification_key",
            csn,
        )
        opened = await connection.fetchval(
            "SELECT count(*) FROM open_quotes WHERE quote_number LIKE $1", f"Q-{csn}-%"
        )

    # Opened, contacts read, queued (nothing to close): whatever the batch's size.
    assert len(statements) == 3
    assert len(emails) == 40 and opened == 40
    first = next(e for e in emails if e["notification_key"] == f"quote:Q-{csn}-0")
    assert (first["kind"], first["quote_number"]) == ("quote", f"Q-{csn}-0")
    assert first["recipients"] == [f"buyer@{csn.lower()}.example.com"]  # ROLE-3: the buyer
    assert first["subscription_ids"] == [sids[0]]
    context = json.loads(first["context"])
    assert context["product_name"] == "Product 0"
    assert context["total"] == "840.00" and context["currency"] == "USD"
    assert [line["product_name"] for line in context["lines"]] == ["Product 0"]
    assert context["accept_link"] == f"https://account.example.com/quotes/Q-{csn}-0"
    # Each email continues the trace of the quote.sent it was made from, not the batch's.
    traces: dict[str, str] = {}
    for delivery in batch:  # the first quote.sent of each quote: the one that queued its email
        traces.setdefault(delivery.data.quote_number, trace_id(delivery.event.traceparent))
    assert len(set(traces.values())) == 40
    for email in emails:
        assert trace_id(email["traceparent"]) == traces[email["quote_number"]]


async def test_quo_2_note_1_a_quote_sent_and_closed_in_one_batch_ends_closed_with_its_email(
    notification_db: DatabaseSettings,
) -> None:
    """In order: sent then paid closes it (its subscription looked at again by the reminder
    claim), cancelled then sent is open; the others of the batch are unaffected."""
    csn = unique_csn()
    quote = lambda n: f"Q-{csn}-{n}"  # noqa: E731
    async with connection_to(notification_db) as connection, connection.transaction():
        sids = await known(connection, csn, 4)
        before = [sent(csn, quote(2), sids[2]), sent(csn, quote(3), sids[3])]
        await handled_as_one_batch(connection, before)
        await connection.execute(
            "UPDATE subscriptions SET next_reminder_for = $1 WHERE subscription_id = ANY($2)",
            RENEWAL_DATE,
            sids,
        )
        batch = [
            sent(csn, quote(0), sids[0], recipients=["it@example.com"]),
            delivered(QuotePaid(quote_number=quote(0), order_id="O-1"), csn, time=NOW),
            delivered(QuoteCancelled(request_id="R-1", quote_number=quote(2)), csn, time=NOW),
            sent(csn, quote(1), sids[1]),
            sent(csn, quote(2), sids[2]),  # after its cancellation: open again
        ]
        statements = await handled_as_one_batch(connection, batch)
        opened = await connection.fetch(
            "SELECT quote_number FROM open_quotes WHERE quote_number LIKE $1 ORDER BY 1",
            f"Q-{csn}-%",
        )
        looked_again = await connection.fetch(
            "SELECT subscription_id FROM subscriptions"
            " WHERE subscription_id = ANY($1) AND next_reminder_for IS NULL ORDER BY 1",
            sids,
        )
        emails = await connection.fetch(
            "SELECT notification_key, recipients FROM emails WHERE csn = $1 ORDER BY 1", csn
        )

    # Three rounds, cut where quote 0 and then quote 2 change course: 3 + (3 + 1 to close) + 3.
    assert len(statements) == 10
    assert [row["quote_number"] for row in opened] == [quote(1), quote(2), quote(3)]
    # Closed: quote 0's subscription (paid) and quote 2's (cancelled, then opened again).
    assert [row["subscription_id"] for row in looked_again] == [sids[0], sids[2]]
    assert [(e["notification_key"], e["recipients"]) for e in emails] == [
        (f"quote:{quote(0)}", ["it@example.com"]),  # QUO-2: the quote's recipients
        (f"quote:{quote(1)}", [f"buyer@{csn.lower()}.example.com"]),
        (f"quote:{quote(2)}", [f"buyer@{csn.lower()}.example.com"]),
        (f"quote:{quote(3)}", [f"buyer@{csn.lower()}.example.com"]),
    ]


async def test_emails_are_queued_in_one_statement_the_first_of_one_key_kept(
    notification_db: DatabaseSettings,
) -> None:
    """`store.queue`, which every email but the confirmation goes through (a claim of
    reminders, a batch of quotes): one statement however many, and of two with one key in it
    the first, as one INSERT after the other kept it."""
    csn = unique_csn()
    async with connection_to(notification_db) as connection, connection.transaction():
        [sid] = await known(connection, csn, 1)
        contact = (await store.contacts(connection, [sid]))[sid]
        emails = [
            Email(f"k:{csn}:{n % 3}", "lapsed", contact, {"n": n}, traceparent=None)
            for n in range(6)
        ]
        counting = CountingConnection(connection)
        await store.queue(counting, emails, NOW)  # type: ignore[arg-type]
        rows = await connection.fetch(
            "SELECT notification_key, context ->> 'n' AS n FROM emails WHERE csn = $1 ORDER BY 1",
            csn,
        )
    assert len(counting.statements) == 1
    assert [(row["notification_key"], row["n"]) for row in rows] == [
        (f"k:{csn}:0", "0"),
        (f"k:{csn}:1", "1"),
        (f"k:{csn}:2", "2"),
    ]
