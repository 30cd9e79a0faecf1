"""The email sender on a real database and SMTP server: one email that can't be rendered must
not stop the others (a poison email fails alone, with `email.failed`); a lease covers its
claim's sending time and only its holder marks an email (issue 15 item 4); the claim walks one
index and nothing deadlocks with the queueing (issue 19 item 1).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import threading
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from aiosmtpd.controller import Controller
from prometheus_client import REGISTRY

from deploy.local.samples import buyer_of, unique_csn
from services.notification.leases import (
    CLAIM,
    LEASES_LOST,
    MARK_ONE,
    RENEW_CLAIM,
    RENEW_ONE,
    Claim,
    Leases,
    Mark,
)
from services.notification.queue import renewal_events_handler
from services.notification.sender import EmailSender
from services.notification.settings import NotificationSettings
from services.notification.templates import EmailRenderer
from shared.clock import SystemClock
from shared.contracts.envelope import new_event
from shared.contracts.renewal_events import SubscriptionRenewed
from shared.db.settings import DatabaseSettings
from shared.messaging.consumer import Delivery, UnitOfWork
from shared.plumbing.faults import AFTER_SMTP_ACCEPT, FaultPoints
from tests.integration.helpers import connection_to, eventually, pool_on
from tests.support.flaky_smtp import FlakySmtp
from tests.support.smtp import Mailbox, SmtpServer, free_port


def order_context(order_id: str) -> dict[str, Any]:
    item = {
        "subscription_id": "sub-1",
        "product_name": "AutoCAD LT",
        "term": "annual",
        "seats": 1,
        "renewal_date": "2026-03-01",
    }
    return {"order_id": order_id, "items": [item]}


async def queue(pool: asyncpg.Pool, key: str, context: dict[str, Any], due: datetime) -> None:
    await pool.execute(
        """INSERT INTO emails (notification_key, kind, csn, recipients, locale, context,
                               subscription_ids, order_id, next_attempt_at, created_at)
           VALUES ($1, 'order_confirmation', $2, $3, 'en-US', $4::jsonb, '{sub-1}', $5, $6, $6)""",
        key,
        unique_csn(),
        [f"buyer-{uuid.uuid4().hex[:6]}@example.com"],
        json.dumps(context),
        context.get("order_id", "ORD-?"),
        due,
    )


async def queue_due(pool: asyncpg.Pool, keys: list[str], due: datetime | None = None) -> None:
    """An order confirmation for each key, due at `due` (now if not given)."""
    for key in keys:
        await queue(pool, key, order_context(key), due or datetime.now(UTC))


@pytest.fixture
async def pool(notification_db: DatabaseSettings) -> AsyncIterator[asyncpg.Pool]:
    async with pool_on(notification_db) as pool:
        yield pool


def sender_on(pool: asyncpg.Pool, database: DatabaseSettings, **settings: Any) -> EmailSender:
    """A sender as the service builds one, on `pool`, with `settings` besides the database."""
    configured = NotificationSettings(database=database, **settings)
    return EmailSender(pool, SystemClock(), configured, EmailRenderer())


async def test_an_email_that_cannot_be_rendered_fails_alone(
    notification_db: DatabaseSettings, pool: asyncpg.Pool
) -> None:
    now = datetime.now(UTC)
    broken = order_context("ORD-BROKEN")
    del broken["order_id"]  # the template needs it: StrictUndefined refuses to render
    [good_key] = keys(1)
    with SmtpServer() as smtp:
        sender = sender_on(pool, notification_db, smtp_port=smtp.port, senders=1, poll_seconds=0.1)
        await queue(pool, "order_confirmation:BROKEN", broken, now - timedelta(minutes=1))
        await queue_due(pool, [good_key], now)
        async with sending(sender):
            # One claim takes both; the order they are delivered in is not fixed.
            wanted = {"order_confirmation:BROKEN": "failed", good_key: "sent"}
            await eventually(
                lambda: _statuses_are(pool, wanted), timeout=5, what="one sent, one failed"
            )
        assert len(smtp.mailbox.with_key(good_key)) == 1
    events = await outbox_events(pool)
    failed = [e for e in events if e["type"] == "email.failed"]
    assert [e["data"]["notification_id"] for e in failed] == ["order_confirmation:BROKEN"]
    assert "order_id" in failed[0]["data"]["reason"]
    assert [e["type"] for e in events if e is not failed[0]] == ["email.sent"]


# --- Issue 15 item 4 and issue 19 item 1: a lease that covers its claim, marks that check it ---


@dataclass
class SlowMailbox(Mailbox):
    """An SMTP server that takes `delay` seconds to accept each of its next `slow` messages."""

    delay: float = 0.0
    slow: int = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.slow > 0:
            self.slow -= 1
            await asyncio.sleep(self.delay)
        return await super().handle_DATA(server, session, envelope)


@contextlib.contextmanager
def smtp_server(mailbox: Mailbox) -> Iterator[int]:
    """The project's test SMTP server (aiosmtpd) around `mailbox`; yields its port."""
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


@contextlib.asynccontextmanager
async def sending(*senders: EmailSender) -> AsyncIterator[None]:
    """Each sender's loops running (as the service runs them), cancelled afterwards."""
    loops = [loop for sender in senders for loop in sender.loops()]
    tasks = [loop.start() for loop in loops]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for sender in senders:
            sender.close()
        dead = [loop.name for loop in loops if loop.last_error]
        assert not [t for t in tasks if not t.cancelled() and t.exception()], f"died: {dead}"


async def statuses(pool: asyncpg.Pool) -> dict[str, str]:
    rows = await pool.fetch("SELECT notification_key, status FROM emails")
    return {row["notification_key"]: row["status"] for row in rows}


async def outbox_events(pool: asyncpg.Pool) -> list[dict[str, Any]]:
    rows = await pool.fetch("SELECT value FROM outbox ORDER BY id")
    return [json.loads(row["value"]) for row in rows]


async def announced(pool: asyncpg.Pool, event_type: str) -> Counter[str]:
    events = await outbox_events(pool)
    return Counter(e["data"]["notification_id"] for e in events if e["type"] == event_type)


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def leases_lost() -> float:
    """Marks a sender did not apply: another sender had leased the email since."""
    return sample(LEASES_LOST, service="notification", stage="after_send")


def keys(count: int) -> list[str]:
    return [f"order_confirmation:ORD-{uuid.uuid4().hex[:8]}" for _ in range(count)]


async def test_issue_15_4_a_claim_slower_than_its_lease_is_renewed_and_each_email_goes_once(
    notification_db: DatabaseSettings, pool: asyncpg.Pool
) -> None:
    """Six emails at 0.3 s each take 1.8 s, the lease is 1 s: the holder renews it while it
    sends, so the other sender never re-leases them and nothing goes twice."""
    mailbox = SlowMailbox(delay=0.3, slow=1000)
    wanted = keys(6)
    with smtp_server(mailbox) as port:
        await queue_due(pool, wanted)
        one, other = (
            sender_on(
                pool,
                notification_db,
                smtp_port=port,
                senders=1,
                claim_size=6,
                lease_seconds=1.0,
                poll_seconds=0.05,
            )
            for _ in range(2)
        )
        async with sending(one, other):
            await eventually(lambda: _all_sent(pool, wanted), timeout=15, what="every email sent")
    copies = Counter(m["X-Notification-Key"] for m in mailbox.all())
    assert copies == dict.fromkeys(wanted, 1)
    assert await announced(pool, "email.sent") == dict.fromkeys(wanted, 1)


async def _all_sent(pool: asyncpg.Pool, wanted: list[str]) -> bool:
    return await _statuses_are(pool, dict.fromkeys(wanted, "sent"))


async def _statuses_are(pool: asyncpg.Pool, wanted: dict[str, str]) -> bool:
    return await statuses(pool) == wanted


async def test_issue_15_4_a_sender_whose_lease_lapsed_mid_send_does_not_mark_it_and_says_so(
    notification_db: DatabaseSettings, pool: asyncpg.Pool
) -> None:
    """An SMTP server that takes 1.5 s on a 0.4 s lease: the other sender re-leases and sends it
    too (SMTP cannot take an email back), but only the holder marks it sent and announces it;
    the first finds it no longer holds the lease, logs it and counts it."""
    mailbox = SlowMailbox(delay=1.5, slow=1)
    [key] = keys(1)
    lost_before = leases_lost()
    with smtp_server(mailbox) as port:
        await queue_due(pool, [key])
        sender = sender_on(
            pool, notification_db, smtp_port=port, senders=2, lease_seconds=0.4, poll_seconds=0.05
        )
        async with sending(sender):
            await eventually(
                lambda: leases_lost() > lost_before,
                timeout=10,
                what="the lapsed holder's mark refused",
            )
    assert await statuses(pool) == {key: "sent"}
    assert len(mailbox.with_key(key)) == 2
    assert await announced(pool, "email.sent") == {key: 1}


async def test_issue_15_4_a_database_error_while_marking_is_seen_by_the_loop_and_not_resent(
    notification_db: DatabaseSettings, pool: asyncpg.Pool
) -> None:
    """Marking sent fails twice (a trigger raises): the sender's loop sees the error, backs off,
    and marks it on a later step, without sending the email again."""
    await pool.execute(
        """CREATE SEQUENCE marks_tried;
           CREATE FUNCTION fail_twice() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN
               IF nextval('marks_tried') <= 2 THEN RAISE EXCEPTION 'marking failed'; END IF;
               RETURN NEW;
           END $$;
           CREATE TRIGGER fail_twice BEFORE UPDATE ON emails FOR EACH ROW
               WHEN (NEW.status = 'sent') EXECUTE FUNCTION fail_twice();"""
    )
    [key] = keys(1)
    errors = {"service": "notification", "loop": "email_sender_0", "error_type": "RaiseError"}
    errors_before = sample("renewals_loop_errors_total", **errors)
    with SmtpServer() as smtp:
        await queue_due(pool, [key])
        sender = sender_on(
            pool,
            notification_db,
            smtp_port=smtp.port,
            senders=1,
            lease_seconds=0.5,
            poll_seconds=0.05,
        )
        async with sending(sender):
            await eventually(lambda: _all_sent(pool, [key]), timeout=10, what="marked sent")
        assert len(smtp.mailbox.with_key(key)) == 1
    assert await announced(pool, "email.sent") == {key: 1}
    assert sample("renewals_loop_errors_total", **errors) == errors_before + 2


async def test_issue_19_1_marks_are_recorded_set_based_each_only_where_its_claim_holds_it(
    pool: asyncpg.Pool,
) -> None:
    """One statement records a claim's marks (sent, retry, failed) with their events; the mark
    of an email another claim has leased since is not applied, and is counted."""
    leases = Leases(pool, SystemClock(), lease_seconds=60, service="notification")
    lost_before = leases_lost()
    wanted = keys(4)
    claim = await claimed_then_one_taken(pool, leases, wanted)
    assert sorted(e.key for e in claim.emails) == sorted(wanted)
    sent, retry, failed, taken = wanted
    now = datetime.now(UTC)

    def mark(key: str, status: str, event: bool) -> Mark:
        rows = [("notification.events", key.encode(), b"{}", "{}")] if event else []
        return Mark(claim.token, key, "order_confirmation", status, now, outbox_rows=rows)

    marks = [
        mark(sent, "sent", True),
        mark(retry, "pending", False),
        mark(failed, "failed", True),
        mark(taken, "sent", True),
    ]
    recorded = await leases.record(marks)
    assert [m.key for m in recorded] == [sent, retry, failed]
    rows = await pool.fetch(
        "SELECT notification_key, status, attempts, lease_until FROM emails"
        " WHERE notification_key = ANY($1::text[])",
        wanted,
    )
    found = {r["notification_key"]: (r["status"], r["attempts"]) for r in rows}
    assert found == {
        sent: ("sent", 1),
        retry: ("pending", 1),
        failed: ("failed", 1),
        taken: ("pending", 0),
    }
    assert {r["notification_key"] for r in rows if r["lease_until"] is None} == {
        sent,
        retry,
        failed,
    }
    assert sorted(await outbox_keys(pool)) == sorted([sent, failed])
    assert leases_lost() == lost_before + 1


async def claimed_then_one_taken(pool: asyncpg.Pool, leases: Leases, wanted: list[str]) -> Claim:
    """The `wanted` emails queued and leased in one claim; since, the last one's lease expired
    and another sender took it (its token is no longer the claim's)."""
    await queue_due(pool, wanted)
    claim = await leases.claim(len(wanted))
    await pool.execute(
        "UPDATE emails SET lease_token = $2 WHERE notification_key = $1", wanted[-1], uuid.uuid4()
    )
    return claim


async def outbox_keys(pool: asyncpg.Pool) -> list[str]:
    """The keys of the events the marks wrote to the outbox."""
    rows = await pool.fetch("SELECT convert_from(key, 'UTF8') AS key FROM outbox ORDER BY id")
    return [row["key"] for row in rows]


async def test_issue_19_one_mark_alone_goes_by_its_key_and_only_where_its_claim_holds_it(
    pool: asyncpg.Pool,
) -> None:
    """The sender's usual mark — one email, right after SMTP accepted it — takes the one-row
    statement (MARK_ONE): applied with its event while the claim holds the email, not applied
    (and counted) once another claim has it, and a retry mark carries no event."""
    leases = Leases(pool, SystemClock(), lease_seconds=60, service="notification")
    lost_before = leases_lost()
    sent, retry, taken = wanted = keys(3)
    claim = await claimed_then_one_taken(pool, leases, wanted)
    now = datetime.now(UTC)
    event = [("notification.events", sent.encode(), b"{}", "{}")]
    one_sent = Mark(claim.token, sent, "order_confirmation", "sent", now, now, "Hi", None, event)
    one_retry = Mark(claim.token, retry, "order_confirmation", "pending", now, error="4xx")
    one_taken = Mark(claim.token, taken, "order_confirmation", "sent", now, outbox_rows=event)
    assert await leases.record([one_sent]) == [one_sent]
    assert await leases.record([one_retry]) == [one_retry]
    assert await leases.record([one_taken]) == []
    rows = await pool.fetch(
        "SELECT notification_key, status, attempts, subject, last_error, lease_until"
        " FROM emails WHERE notification_key = ANY($1::text[])",
        wanted,
    )
    found = {r["notification_key"]: tuple(r)[1:] for r in rows}
    assert found[sent] == ("sent", 1, "Hi", None, None)
    assert found[retry] == ("pending", 1, None, "4xx", None)
    assert found[taken][:2] == ("pending", 0)
    assert await outbox_keys(pool) == [sent]
    assert leases_lost() == lost_before + 1


async def one_leased_among_stale_statistics(pool: asyncpg.Pool) -> uuid.UUID:
    """10,000 sent emails, `emails` analyzed (its partial index of pending ones looks empty),
    then 10,000 pending: the statistics a moment old. `k15000` is leased; its token."""
    insert = """INSERT INTO emails (notification_key, kind, csn, recipients, locale, context,
                                    next_attempt_at, created_at, status)
                SELECT 'k' || n, 'order_confirmation', 'CSN', '{a@example.com}', 'en-US', '{}',
                       now(), now(), $1
                FROM generate_series($2::int, $3::int) AS n"""
    await pool.execute(insert, "sent", 1, 10_000)
    await pool.execute("ANALYZE emails")  # the partial index looks empty
    await pool.execute(insert, "pending", 10_001, 20_000)
    token = uuid.uuid4()
    await pool.execute(
        "UPDATE emails SET lease_token = $1 WHERE notification_key = 'k15000'", token
    )
    return token


async def emails_scanned_and_column(
    pool: asyncpg.Pool, plan_cache_mode: str, statement: str, arguments: list[Any], column: str
) -> tuple[list[dict[str, Any]], Any]:
    """`statement` run by EXPLAIN ANALYZE under `plan_cache_mode`, rolled back (ANALYZE runs it
    for real): its scans of `emails`, and `k15000`'s `column` as the statement left it."""
    async with pool.acquire() as connection:
        explaining = connection.transaction()
        await explaining.start()
        await connection.execute(f"SET LOCAL plan_cache_mode = {plan_cache_mode}")
        [plan] = json.loads(
            await connection.fetchval("EXPLAIN (ANALYZE, FORMAT JSON) " + statement, *arguments)
        )
        value = await connection.fetchval(
            f"SELECT {column} FROM emails WHERE notification_key = 'k15000'"
        )
        await explaining.rollback()
    nodes = _nodes(plan["Plan"])
    scans = [n for n in nodes if n.get("Relation Name") == "emails" and "Scan" in n["Node Type"]]
    return scans, value


@pytest.mark.parametrize("plan_cache_mode", ["force_generic_plan", "force_custom_plan"])
async def test_issue_19_one_mark_reads_its_email_by_its_key_alone(
    pool: asyncpg.Pool, plan_cache_mode: str
) -> None:
    """MARK_ONE, a plain UPDATE by key, token and status (s9 plan item 2b), reads its one email
    through the primary key, even when `emails_claimable`'s statistics are a moment old (taken
    with no email pending, 10,000 pending since): written `status = 'pending'`, the planner
    walked that whole partial index instead (4-7 ms a mark against 0.1), with either plan."""
    token = await one_leased_among_stale_statistics(pool)
    now = datetime.now(UTC)
    mark = Mark(token, "k15000", "order_confirmation", "sent", now, now, "Hi")
    event = [["notification.events"], [b"k15000"], [b"{}"], ["{}"]]
    scans, marked = await emails_scanned_and_column(
        pool, plan_cache_mode, MARK_ONE, [*mark.columns(), *event, "off"], "status"
    )
    assert [(n["Node Type"], n.get("Index Name")) for n in scans] == [("Index Scan", "emails_pkey")]
    assert marked == "sent"


@pytest.mark.parametrize("plan_cache_mode", ["force_generic_plan", "force_custom_plan"])
@pytest.mark.parametrize("renewal", ["RENEW_ONE", "RENEW_CLAIM"])
async def test_issue_19_a_lease_renewal_reads_its_emails_by_their_keys_alone(
    pool: asyncpg.Pool, plan_cache_mode: str, renewal: str
) -> None:
    """The lease renewals before a send (RENEW_ONE, RENEW_CLAIM) read their emails through the
    primary key, even when `emails_claimable`'s statistics are a moment old: the same trap as
    MARK_ONE's (`status = 'pending'` made the planner walk that whole partial index)."""
    token = await one_leased_among_stale_statistics(pool)
    until = datetime.now(UTC) + timedelta(minutes=1)
    statement, key = (RENEW_ONE, "k15000") if renewal == "RENEW_ONE" else (RENEW_CLAIM, ["k15000"])
    scans, renewed = await emails_scanned_and_column(
        pool, plan_cache_mode, statement, [key, token, until], "lease_until"
    )
    assert {n.get("Index Name") for n in scans} == {"emails_pkey"}, scans
    assert renewed == until


async def test_issue_19_1_the_claim_reads_only_claimable_emails_through_its_partial_index(
    pool: asyncpg.Pool,
) -> None:
    """Among 20,000 sent, 2,000 leased, 1,000 not yet due and 4,000 due emails, a claim of 20
    walks the `emails_claimable` index and stops after 20 entries: no sort, no scan of the
    pending emails; what a customer just did goes before reminders."""
    now = datetime.now(UTC)
    # 1-20,000 sent; 20,001-22,000 leased; 22,001-23,000 due in an hour; the rest due, half
    # of them reminders (as half of all the others).
    await pool.execute(
        """INSERT INTO emails (notification_key, kind, csn, recipients, locale, context,
                               next_attempt_at, created_at, status, lease_until)
           SELECT 'k' || n, CASE WHEN n % 2 = 0 THEN 'renewal_reminder'
                                 ELSE 'order_confirmation' END,
                  'CSN', '{a@example.com}', 'en-US', '{}',
                  CASE WHEN n BETWEEN 22001 AND 23000 THEN $1::timestamptz + interval '1 hour'
                       ELSE $1::timestamptz - make_interval(secs => n) END,
                  $1,
                  CASE WHEN n <= 20000 THEN 'sent' ELSE 'pending' END,
                  CASE WHEN n BETWEEN 20001 AND 22000 THEN $1::timestamptz + interval '1 minute' END
           FROM generate_series(1, 27000) AS n""",
        now,
    )
    await pool.execute("ANALYZE emails")
    async with pool.acquire() as connection:
        claiming = connection.transaction()
        await claiming.start()
        [plan] = json.loads(
            await connection.fetchval(
                "EXPLAIN (ANALYZE, FORMAT JSON) " + CLAIM, now, now, 20, uuid.uuid4()
            )
        )
        claimed = await connection.fetch("SELECT kind FROM emails WHERE lease_until = $1", now)
        await claiming.rollback()  # EXPLAIN ANALYZE claimed them for real
    nodes = list(_nodes(plan["Plan"]))
    [claiming_scan] = [n for n in nodes if n.get("Index Name") == "emails_claimable"]
    assert claiming_scan["Node Type"] == "Index Scan"
    assert claiming_scan["Actual Rows"] == 20  # read 20 entries of the index, and stopped
    # The claimed rows are then updated through the primary key: nothing else reads emails.
    others = {n.get("Index Name") for n in nodes if "Scan" in n["Node Type"]} - {"emails_claimable"}
    assert others <= {"emails_pkey", None}, others
    assert not [n for n in nodes if n["Node Type"] in ("Sort", "Seq Scan", "Bitmap Heap Scan")]
    assert [row["kind"] for row in claimed] == ["order_confirmation"] * 20


def _nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", []):
        yield from _nodes(child)


async def test_issue_19_1_senders_and_queueing_together_never_deadlock_and_send_each_once(
    notification_db: DatabaseSettings, pool: asyncpg.Pool, admin_db: asyncpg.Connection
) -> None:
    """Two senders (two loops each) while 300 orders are queued: their confirmations upserted
    from `subscription.renewed` (five lines each, shuffled into separate batches of 25, one
    transaction each, by four consumers that each own a quarter of the orders, as partitions
    do), each event with redeliveries of lines already queued. No transaction deadlocks
    (`pg_stat_database.deadlocks` does not grow), every email goes exactly once, and each goes
    with its five lines and its total (issue 17 item 3: nothing else is waited for)."""
    orders = sorted(f"dl-{uuid.uuid4().hex[:8]}" for _ in range(300))
    shuffled = random.Random(15)
    renewals = [_renewed(order, line) for line in range(1, 6) for order in orders]
    renewals += shuffled.sample(renewals, 300)  # seen twice: upserts that lock, change nothing
    shuffled.shuffle(renewals)
    handle = renewal_events_handler(SystemClock())

    deadlocks_before = await _deadlocks(admin_db)
    retried: list[str] = []

    async def consume(deliveries: list[Delivery]) -> None:
        """Batches of 25, one transaction each; a deadlock retries the batch, as the consumer."""
        async with connection_to(notification_db) as connection:
            for start in range(0, len(deliveries), 25):
                while True:
                    try:
                        async with connection.transaction():
                            await handle(UnitOfWork(connection), deliveries[start : start + 25])
                        break
                    except asyncpg.DeadlockDetectedError as error:
                        retried.append(repr(error))

    with SmtpServer() as smtp:
        senders = [
            sender_on(pool, notification_db, smtp_port=smtp.port, senders=2, poll_seconds=0.05)
            for _ in "ab"
        ]
        async with sending(*senders):
            await asyncio.gather(*(consume(_owned(renewals, part, 4)) for part in range(4)))
            wanted = [f"order_confirmation:{order}" for order in orders]
            await eventually(lambda: _all_sent(pool, wanted), timeout=30, what="all sent")
        copies = Counter(m["X-Notification-Key"] for m in smtp.mailbox.all())
        assert copies == dict.fromkeys(wanted, 1)
        texts = {m["X-Notification-Key"]: _plain_text(m) for m in smtp.mailbox.all()}
    without_total = [k for k, text in texts.items() if "€2,100.00" not in text]
    assert without_total == []
    partial = [k for k, text in texts.items() if text.count("next renewal on") != 5]
    assert partial == []
    await pool.close()  # a backend reports its deadlocks to pg_stat_database when it ends
    assert retried == []
    await eventually(
        lambda: _stats_flushed(admin_db, notification_db.user), timeout=10, what="backends gone"
    )
    assert await _deadlocks(admin_db) == deadlocks_before


def _plain_text(message: Any) -> str:
    return str(message.get_body(preferencelist=("plain",)).get_content())


def _owned(deliveries: list[Delivery], part: int, parts: int) -> list[Delivery]:
    """The deliveries of the orders a consumer owns (a partition's share)."""
    return [d for d in deliveries if int(d.data.order_id[3:], 16) % parts == part]


def _renewed(order: str, line: int) -> Delivery:
    data = SubscriptionRenewed(
        subscription_id=f"{order}-s{line}",
        order_id=order,
        previous_renewal_date=date(2026, 3, 1),
        renewal_date=date(2027, 3, 1),
        term="annual",
        seats=1,
        product_name="AutoCAD LT",
        buyer=buyer_of(f"CSN-{order}"),
        order_total=Decimal("2100.00"),
        currency="EUR",
        renewed_in_order=5,
    )
    return Delivery(
        new_event(data, subject=f"CSN-{order}", source="/t", time=datetime.now(UTC)), record=None
    )


async def _deadlocks(admin_db: asyncpg.Connection) -> int:
    await admin_db.execute("SELECT pg_stat_clear_snapshot()")
    return int(
        await admin_db.fetchval(
            "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
        )
    )


async def _stats_flushed(admin_db: asyncpg.Connection, role: str) -> bool:
    """The test's backends have ended (and so reported their statistics); those of the same
    role on another database (a bench, `make run`) are not the test's."""
    return not await admin_db.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE usename = $1 AND datname = current_database()",
        role,
    )


# --- Issue 19 item 5: one SMTP session for many emails, pipelined; a broken one costs nothing ---


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelined", "one-by-one"])
async def test_issue_19_5_a_connection_broken_mid_batch_sends_each_email_once(
    notification_db: DatabaseSettings, pool: asyncpg.Pool, pipelining: bool
) -> None:
    """A claim of 30 on one session, which the server breaks three times: right after accepting
    the 5th message (the sender finds it closed at its next MAIL: a new session, no retry), on
    receiving the 12th message's content without answering (not accepted: that one email is
    retried, after its backoff), and on the 20th MAIL (nothing of that email went out: sent on
    a new session at once). Each email is accepted exactly once, marked and announced once;
    only the 12th took two tries; four sessions carried the 31 messages."""
    wanted = keys(30)
    async with FlakySmtp(
        pipelining=pipelining,
        drop_after_accept={5},
        drop_before_answer={12},
        drop_on_mail={20},
    ) as server:
        sender = sender_on(
            pool,
            notification_db,
            smtp_port=server.port,
            senders=1,
            claim_size=30,
            retry_base_seconds=0.05,
            poll_seconds=0.05,
        )
        now = datetime.now(UTC)
        for n, key in enumerate(wanted):  # sent in this order
            await queue_due(pool, [key], now - timedelta(seconds=60 - n))
        async with sending(sender):
            await eventually(lambda: _all_sent(pool, wanted), timeout=15, what="all sent")
        assert server.accepted == dict.fromkeys(wanted, 1)
        assert server.received == 31  # the 12th twice: dropped unanswered, then accepted
        assert server.connections == 4
    assert await announced(pool, "email.sent") == dict.fromkeys(wanted, 1)
    rows = await pool.fetch("SELECT notification_key, attempts FROM emails")
    tries = {row["notification_key"]: row["attempts"] for row in rows}
    assert tries == {key: 2 if key == wanted[11] else 1 for key in wanted}


# --- Issue 19 item 1: marks a few emails at a time; a crash duplicates at most those ---


class _CrashAtAccept(FaultPoints):
    """The sender "killed" (its step raises, its unrecorded marks gone, as with SIGKILL) when
    SMTP has accepted its `nth` email — once."""

    def __init__(self, nth: int) -> None:
        super().__init__()
        self.left = nth

    def hit(self, point: str) -> None:
        if point == AFTER_SMTP_ACCEPT:
            self.left -= 1
            if self.left == 0:
                raise RuntimeError("killed after SMTP accepted")


async def test_issue_19_1_marked_three_at_a_time_a_crash_resends_only_those_since_the_last_marks(
    notification_db: DatabaseSettings, pool: asyncpg.Pool
) -> None:
    """A claim of eight, marked three at a time: the sender dies when SMTP accepted the 5th.
    The first three were marked (not sent again); the 4th and 5th were accepted since, so they
    go out once more when the lease expires — fewer than `mark_every`, the stated bound — and
    the last three once; `email.sent` is announced once for each."""
    wanted = keys(8)
    with SmtpServer() as smtp:
        now = datetime.now(UTC)
        for n, key in enumerate(wanted):  # sent in this order
            await queue_due(pool, [key], now - timedelta(seconds=60 - n))
        configured = NotificationSettings(
            database=notification_db,
            smtp_port=smtp.port,
            senders=1,
            claim_size=8,
            mark_every=3,
            lease_seconds=2.0,
            poll_seconds=0.05,
        )
        sender = EmailSender(pool, SystemClock(), configured, EmailRenderer(), _CrashAtAccept(5))
        async with sending(sender):
            await eventually(lambda: _all_sent(pool, wanted), timeout=15, what="all sent")
        copies = Counter(m["X-Notification-Key"] for m in smtp.mailbox.all())
    assert copies == {key: 2 if n in (3, 4) else 1 for n, key in enumerate(wanted)}
    assert await announced(pool, "email.sent") == dict.fromkeys(wanted, 1)


# --- Issue 19: a sender's marks wake the relay of its own process, without a NOTIFY each ---


async def notifications_until_marker(
    notification_db: DatabaseSettings, pool: asyncpg.Pool, record: Any
) -> list[str]:
    """The payloads of the outbox's notifications that `record()` caused, read up to a marker
    NOTIFY sent after it (notifications arrive in commit order: all of them come before it)."""
    channel = f"{notification_db.schema_name}_outbox"
    payloads: list[str] = []
    async with connection_to(notification_db) as listener:
        await listener.add_listener(channel, lambda *args: payloads.append(args[3]))
        await record()
        await pool.execute("SELECT pg_notify($1, 'marker')", channel)
        await eventually(lambda: "marker" in payloads, timeout=5, what="the marker")
    return payloads[: payloads.index("marker")]


async def test_issue_19_a_mark_whose_sender_wakes_the_relay_adds_its_event_without_a_notify(
    notification_db: DatabaseSettings, pool: asyncpg.Pool
) -> None:
    """Migration 017: MARK_ONE for a sender that wakes its relay itself (`relay_woken_here`)
    writes its event and sends no NOTIFY; any other mark still notifies."""
    quiet = Leases(
        pool, SystemClock(), lease_seconds=60, service="notification", relay_woken_here=True
    )
    loud = Leases(pool, SystemClock(), lease_seconds=60, service="notification")
    first, second = wanted = keys(2)
    await queue_due(pool, wanted)
    claim = await quiet.claim(2)
    now = datetime.now(UTC)

    def sent(key: str) -> Mark:
        event = [("notification.events", key.encode(), b"{}", "{}")]
        return Mark(claim.token, key, "order_confirmation", "sent", now, now, "Hi", None, event)

    assert (
        await notifications_until_marker(notification_db, pool, lambda: quiet.record([sent(first)]))
        == []
    )
    assert await notifications_until_marker(
        notification_db, pool, lambda: loud.record([sent(second)])
    ) == [""]
    assert await outbox_keys(pool) == [first, second]


async def test_issue_19_a_sender_wakes_the_relay_after_its_marks(
    notification_db: DatabaseSettings, pool: asyncpg.Pool
) -> None:
    """Three emails in one claim: each marked sent with its event in the outbox (no NOTIFY),
    and the relay woken once their marks are in (`wake_relay`), not once per email."""
    wanted = keys(3)
    woken: list[int] = []

    with SmtpServer() as smtp:
        configured = NotificationSettings(
            database=notification_db, smtp_port=smtp.port, senders=1, poll_seconds=0.1
        )
        sender = EmailSender(
            pool, SystemClock(), configured, EmailRenderer(), wake_relay=lambda: woken.append(1)
        )
        await queue_due(pool, wanted)
        async with sending(sender):
            await eventually(
                lambda: _statuses_are(pool, dict.fromkeys(wanted, "sent")), timeout=5, what="sent"
            )
            await eventually(lambda: woken, timeout=5, what="the relay woken")
    assert await announced(pool, "email.sent") == Counter(wanted)
    assert 1 <= len(woken) <= 3


# --- Issue 19: a sender stopped mid-claim gives it back ---


@dataclass
class HangingMailbox(Mailbox):
    """An SMTP server that keeps its `hang_at`-th message's answer until `release` is set,
    and says so in `hung`: the sender is then inside that message's send."""

    hang_at: int = 0
    seen: int = 0
    hung: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.seen += 1
        if self.seen == self.hang_at:
            self.hung.set()
            await asyncio.to_thread(self.release.wait, 30)
        return await super().handle_DATA(server, session, envelope)


async def leases_of(pool: asyncpg.Pool, wanted: list[str]) -> list[tuple[str, bool | None]]:
    """Each email's status, and whether its lease still runs (None: it has none)."""
    rows = await pool.fetch(
        "SELECT notification_key, status, lease_until > now() AS leased FROM emails"
        " WHERE notification_key = ANY($1::text[])",
        wanted,
    )
    found = {row["notification_key"]: (row["status"], row["leased"]) for row in rows}
    return [found[key] for key in wanted]


async def test_issue_19_a_sender_stopped_mid_claim_records_what_smtp_took_and_gives_back_the_rest(
    notification_db: DatabaseSettings, pool: asyncpg.Pool
) -> None:
    """A claim of six on a minute's lease, marked three at a time; the service stops while SMTP
    holds the 2nd. The 1st, accepted and not yet marked, is marked sent as the sender stops (a
    graceful stop sends nothing twice); the 3rd to 6th, never sent, are given back and another
    sender sends them at once — not a minute later, when the lease would have run out; the 2nd,
    which SMTP may have accepted, keeps its lease. Each email reaches SMTP once."""
    wanted = keys(6)
    now = datetime.now(UTC)
    for n, key in enumerate(wanted):  # claimed and sent in this order
        await queue_due(pool, [key], now - timedelta(seconds=60 - n))
    held = wanted[1]
    hanging = HangingMailbox(hang_at=2)
    settings = {"senders": 1, "claim_size": 6, "mark_every": 3, "lease_seconds": 60.0}
    with smtp_server(hanging) as port:
        first = sender_on(pool, notification_db, smtp_port=port, poll_seconds=0.05, **settings)
        async with sending(first):
            await eventually(hanging.hung.is_set, timeout=10, what="SMTP holding the 2nd email")
        # Stopped as the service stops it (its loop cancelled, the task awaited).
        assert await leases_of(pool, wanted) == [
            ("sent", None),
            ("pending", True),
            *[("pending", None)] * 4,
        ]
        first_taken = Counter(m["X-Notification-Key"] for m in hanging.all())
        hanging.release.set()  # (whatever aiosmtpd makes of an answer to a closed session)
        with SmtpServer() as other_smtp:
            other = sender_on(
                pool, notification_db, smtp_port=other_smtp.port, poll_seconds=0.05, **settings
            )
            async with sending(other):
                await eventually(
                    lambda: _statuses_are(pool, {**dict.fromkeys(wanted, "sent"), held: "pending"}),
                    timeout=10,
                    what="the given-back emails sent by the other sender",
                )
            taken = Counter(m["X-Notification-Key"] for m in other_smtp.mailbox.all())
    assert first_taken == {wanted[0]: 1}
    assert taken == dict.fromkeys(wanted[2:], 1)
    assert await announced(pool, "email.sent") == dict.fromkeys([wanted[0], *wanted[2:]], 1)
