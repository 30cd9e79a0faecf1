"""`subscription.state` on a real database (issue 14 item 2): every write path of renewal's
subscriptions announces the whole state in its own transaction — the upsert, auto-renew switched,
the next term changed, an order reserving the term, its payment renewing, the due-date engine's
lapse, a quote opened and closed, an abandoned order — with a `version` that grows; and a change
nobody announces fails its transaction at commit (the check of migration 013)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import pytest

from deploy.local.samples import renewal_request, subscription, unique_csn
from services.renewal.abandoned import AbandonedOrders
from services.renewal.auto_renew import set_auto_renew_handler
from services.renewal.changes import ChangeHandlers
from services.renewal.due_date_engine import DueDateEngine
from services.renewal.open_quotes import quote_events_handler
from services.renewal.renewal_requests import record_renewal_request
from services.renewal.settlement import billing_events_handler
from services.renewal.state import StateAnnouncer, announced, snapshot_handler
from shared.clock import FixedClock
from shared.contracts.billing_events import PaymentAwaitingManual, PaymentSucceeded
from shared.contracts.common import Actor, PriceLine
from shared.contracts.quote_events import QuoteExpired, QuoteSent
from shared.contracts.renewal_commands import ChangeRenewalTerms, SetAutoRenew
from shared.db.pool import create_pool
from shared.db.settings import DatabaseSettings
from shared.eligibility import Policy
from shared.messaging.consumer import Delivery
from shared.messaging.outbox import Outbox
from tests.integration.helpers import connection_to, delivered, eventually, handle_in_transaction

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TODAY = NOW.date()
CLOCK = FixedClock(NOW)
POLICY = Policy()


def _delivery(data: Any, csn: str) -> Delivery:
    return delivered(data, csn, time=NOW, signer="portal")


async def _states(settings: DatabaseSettings) -> list[dict[str, Any]]:
    """The `subscription.state` events written since the last call (the rest dropped)."""
    async with connection_to(settings) as connection:
        rows = await connection.fetch("SELECT topic, key, value FROM outbox ORDER BY id")
        await connection.execute("DELETE FROM outbox")
    states = []
    for row in rows:
        if row["topic"] == "subscription.state":
            event = json.loads(row["value"])
            assert row["key"].decode() == event["data"]["subscription_id"]  # keyed for compaction
            assert event["subject"] == event["data"]["csn"]
            states.append(event["data"])
    return states


async def _given(settings: DatabaseSettings, renewal_date: date, **fields: Any) -> tuple[str, str]:
    csn = unique_csn("STATE")
    snapshot = subscription(f"S-{csn}", csn, renewal_date=renewal_date, **fields)
    await handle_in_transaction(
        settings, snapshot_handler(POLICY, "/t", CLOCK), [_delivery(snapshot, csn)]
    )
    async with connection_to(settings) as connection:
        await connection.execute(
            "INSERT INTO prices VALUES ('ACDLT', 'annual', 'USD', 466, 420),"
            " ('ACDLT', 'three_year', 'USD', 1310, 1179) ON CONFLICT DO NOTHING"
        )
    return csn, snapshot.subscription_id


async def test_the_upsert_announces_the_whole_state_of_the_contract(
    renewal_db: DatabaseSettings,
) -> None:
    renewal_date = TODAY + timedelta(days=40)
    csn, sid = await _given(renewal_db, renewal_date, auto_renew=True)
    assert await _states(renewal_db) == [
        {
            "subscription_id": sid,
            "csn": csn,
            "status": "active",
            "renewal_date": renewal_date.isoformat(),
            "grace_ends": (renewal_date + timedelta(days=45)).isoformat(),  # WIN-2 by quote
            "term": "annual",
            "seats": 1,
            "next_term": None,
            "next_seats": None,
            "auto_renew": True,
            "payment_method": {"type": "card", "recurring": True, "valid": True},
            "open_quote": None,
            "pending_order": None,
            "version": 1,
        }
    ]


def _upserts(csn: str) -> list[Any]:
    """A batch as upstream sends one: two snapshots of S1 (a newer one moving its date), an
    older one of S1 after them, and S2 twice at the same revision."""
    first, second = TODAY + timedelta(days=40), TODAY + timedelta(days=70)
    return [
        subscription(f"S1-{csn}", csn, renewal_date=first, revision=1),
        subscription(f"S2-{csn}", csn, renewal_date=first, revision=2, seats=2),
        subscription(f"S1-{csn}", csn, renewal_date=second, revision=3, seats=5),
        subscription(f"S1-{csn}", csn, renewal_date=first, revision=2, seats=9),
        subscription(f"S2-{csn}", csn, renewal_date=second, revision=2, seats=7),
    ]


async def _stored(settings: DatabaseSettings, csn: str) -> list[tuple[Any, ...]]:
    async with connection_to(settings) as connection:
        rows = await connection.fetch(
            "SELECT split_part(subscription_id, '-', 1), revision, renewal_date, term, seats,"
            " auto_renew, (snapshot ->> 'seats')::int, snapshot ->> 'renewal_date' FROM subscriptions WHERE csn = $1"
            " ORDER BY 1",
            csn,
        )
    return [tuple(row) for row in rows]


async def test_a_batch_of_upserts_is_stored_as_one_by_one_and_announced_once_each(
    renewal_db: DatabaseSettings,
) -> None:
    """Issue 19 item 4: the batch in one statement gives the rows that storing its snapshots
    one at a time gives (the newest revision kept, the first snapshot's renewal date, an older
    or equal revision ignored), and one `subscription.state` per subscription, its final
    state, for the whole batch."""
    save = snapshot_handler(POLICY, "/t", CLOCK)
    alone, together = unique_csn("ALONE"), unique_csn("BATCH")
    for upsert in _upserts(alone):
        await handle_in_transaction(renewal_db, save, [_delivery(upsert, alone)])
    announced_before = max(s["version"] for s in await _states(renewal_db))
    await handle_in_transaction(
        renewal_db, save, [_delivery(upsert, together) for upsert in _upserts(together)]
    )

    first, second = TODAY + timedelta(days=40), TODAY + timedelta(days=70)
    assert await _stored(renewal_db, together) == await _stored(renewal_db, alone)
    assert await _stored(renewal_db, together) == [
        ("S1", 3, first, "annual", 1, False, 5, second.isoformat()),
        ("S2", 2, first, "annual", 2, False, 2, first.isoformat()),
    ]
    states = await _states(renewal_db)
    assert [(s["subscription_id"], s["seats"]) for s in states] == [
        (f"S1-{together}", 1),
        (f"S2-{together}", 2),
    ]
    assert min(s["version"] for s in states) > announced_before


async def test_each_command_announces_what_it_changed_with_a_growing_version(
    renewal_db: DatabaseSettings,
) -> None:
    """AUTO-3 auto-renew off, TERM-1/SEAT-2 the next term and seats."""
    csn, sid = await _given(renewal_db, TODAY + timedelta(days=40), auto_renew=True)
    [given] = await _states(renewal_db)
    actor = Actor(user_id=f"{csn}-buyer", csn=csn)

    off = SetAutoRenew(request_id="r-off", actor=actor, subscription_ids=[sid], enabled=False)
    await handle_in_transaction(
        renewal_db, set_auto_renew_handler(CLOCK, POLICY, "/t"), _delivery(off, csn)
    )
    [off_state] = await _states(renewal_db)
    assert off_state["auto_renew"] is False and off_state["version"] > given["version"]

    terms = ChangeRenewalTerms(
        request_id="r-terms", actor=actor, subscription_id=sid, term="three_year", seats=3
    )
    handlers = ChangeHandlers(CLOCK, POLICY, "/t").handlers()
    await handle_in_transaction(renewal_db, handlers[ChangeRenewalTerms], _delivery(terms, csn))
    [state] = await _states(renewal_db)
    assert (state["next_term"], state["next_seats"]) == ("three_year", 3)
    assert state["version"] > off_state["version"]

    # The same request again changes nothing: nothing to announce.
    await handle_in_transaction(renewal_db, handlers[ChangeRenewalTerms], _delivery(terms, csn))
    assert await _states(renewal_db) == []


async def test_an_order_holds_the_term_as_pending_then_its_payment_renews(
    renewal_db: DatabaseSettings,
) -> None:
    """MAN-1 worked at intake (one subscription), LIFE-4 on payment: pending_order, then the new
    date."""
    renewal_date = TODAY + timedelta(days=20)
    csn, sid = await _given(renewal_db, renewal_date)
    [given] = await _states(renewal_db)
    intake = record_renewal_request(CLOCK, "/t", POLICY)
    await handle_in_transaction(renewal_db, intake, [_delivery(renewal_request(csn, [sid]), csn)])
    [reserved] = await _states(renewal_db)
    assert reserved["pending_order"] is not None and reserved["version"] > given["version"]

    paid = PaymentSucceeded(
        order_id=reserved["pending_order"],
        amount=Decimal("420.00"),
        currency="USD",
        payment_reference="P-1",
    )
    await handle_in_transaction(
        renewal_db, billing_events_handler(CLOCK, "/t", POLICY), [_delivery(paid, csn)]
    )
    [renewed] = await _states(renewal_db)
    assert renewed["pending_order"] is None
    assert renewed["renewal_date"] == date(renewal_date.year + 1, 3, 21).isoformat()
    assert renewed["version"] > reserved["version"]


async def test_an_abandoned_order_releases_the_term(renewal_db: DatabaseSettings) -> None:
    """A manual payment never made by `pay_by`: no longer pending."""
    csn, sid = await _given(renewal_db, TODAY + timedelta(days=20), payment_type="bank_transfer")
    intake = record_renewal_request(CLOCK, "/t", POLICY)
    await handle_in_transaction(renewal_db, intake, [_delivery(renewal_request(csn, [sid]), csn)])
    pool = await create_pool(renewal_db)
    try:
        [reserved] = [s for s in await _states(renewal_db) if s["pending_order"]]
        waiting = PaymentAwaitingManual(
            order_id=reserved["pending_order"],
            amount=Decimal("420.00"),
            currency="USD",
            payment_reference="P-2",
            pay_by=TODAY - timedelta(days=1),
        )
        settle = billing_events_handler(CLOCK, "/t", POLICY)
        await handle_in_transaction(renewal_db, settle, [_delivery(waiting, csn)])
        assert await _states(renewal_db) == []  # a pay-by date is not part of the state
        abandoned = AbandonedOrders(pool, CLOCK, source="/t", batch_size=10, poll_seconds=1)
        assert await abandoned.step() == 1
    finally:
        await pool.close()
    [released] = await _states(renewal_db)
    assert released["pending_order"] is None and released["version"] > reserved["version"]


async def test_the_engine_announces_a_lapse(renewal_db: DatabaseSettings) -> None:
    """LIFE-2: not renewed on its date (auto-renew off) → lapsed."""
    _, sid = await _given(renewal_db, TODAY, auto_renew=False)
    await _states(renewal_db)
    pool = await create_pool(renewal_db)
    try:
        engine = DueDateEngine(pool, CLOCK, POLICY, source="/t", batch_size=10, interval_seconds=1)
        assert await engine.step() == 1
    finally:
        await pool.close()
    [lapsed] = await _states(renewal_db)
    assert (lapsed["subscription_id"], lapsed["status"]) == (sid, "lapsed")


async def test_an_open_quote_is_in_the_state_until_it_closes(renewal_db: DatabaseSettings) -> None:
    """AUTO-5: a changing quote switches auto-renew off while open, and back on when it expires."""
    csn, sid = await _given(renewal_db, TODAY + timedelta(days=30), auto_renew=True)
    await _states(renewal_db)
    line = PriceLine(
        subscription_id=sid,
        product_code="ACDLT",
        term="annual",
        seats=5,  # more seats than it renews with: AUTO-5
        unit_price=Decimal("420.00"),
        discount=Decimal("0"),
        amount=Decimal("2100.00"),
    )
    sent = QuoteSent(
        request_id=None,
        quote_number="Q-1",
        kind="renewal",
        subscription_ids=[sid],
        expires_on=TODAY + timedelta(days=29),
        currency="USD",
        total=Decimal("2100.00"),
        lines=[line],
        recipients=[],
        promotions=[],
    )
    handler = announced(quote_events_handler(CLOCK, "/t"), POLICY, "/t", CLOCK)
    await handle_in_transaction(renewal_db, handler, [_delivery(sent, csn)])
    [opened] = await _states(renewal_db)
    assert (opened["open_quote"], opened["auto_renew"]) == ("Q-1", False)

    await handle_in_transaction(
        renewal_db, handler, [_delivery(QuoteExpired(quote_number="Q-1"), csn)]
    )
    [closed] = await _states(renewal_db)
    assert (closed["open_quote"], closed["auto_renew"]) == (None, True)
    assert closed["version"] > opened["version"]


@pytest.mark.parametrize(
    "forgotten",
    [
        "UPDATE subscriptions SET auto_renew = NOT auto_renew",
        "UPDATE subscriptions SET renewal_date = renewal_date + 365",
        "INSERT INTO term_reservations (subscription_id, order_id, term_start, reserved_at)"
        " SELECT subscription_id, 'O-x', renewal_date, now() FROM subscriptions",
    ],
)
async def test_a_write_path_that_forgets_to_announce_fails_at_commit(
    renewal_db: DatabaseSettings, forgotten: str
) -> None:
    await _given(renewal_db, TODAY + timedelta(days=40))
    async with connection_to(renewal_db) as connection:
        with pytest.raises(asyncpg.IntegrityConstraintViolationError, match="not announced"):
            async with connection.transaction():
                await connection.execute(forgotten)
        # A write that is not part of the state needs no announce.
        async with connection.transaction():
            await connection.execute("UPDATE subscriptions SET next_check_on = $1", TODAY)


async def test_of_two_transactions_announcing_one_subscription_the_later_takes_the_greater_version(
    renewal_db: DatabaseSettings,
) -> None:
    """Migration 016: versions are numbers of one sequence, taken once the subscription is
    locked. A path that changed only a quote (noted, the subscription not yet locked) waits at
    the announce for one that holds the subscription, so the version it takes, after that one
    committed, is the greater: readers keep the newest state."""
    csn, sid = await _given(renewal_db, TODAY + timedelta(days=40), auto_renew=True)
    await _states(renewal_db)
    announcer = StateAnnouncer(POLICY, "/t")
    announced_first, announced_second = Outbox(), Outbox()
    async with connection_to(renewal_db) as first, connection_to(renewal_db) as second:
        first_tx, second_tx = first.transaction(), second.transaction()
        await first_tx.start()
        await first.execute("UPDATE subscriptions SET auto_renew = false WHERE csn = $1", csn)
        await announcer.announce_changes(first, announced_first, NOW)  # holds the subscription
        await second_tx.start()
        await second.execute("INSERT INTO state_changes VALUES ($1)", sid)  # as a quote's trigger
        later = asyncio.create_task(announcer.announce_changes(second, announced_second, NOW))
        pid = second.get_server_pid()
        await eventually(  # a positive signal: its backend waits for a lock
            lambda: first.fetchval(
                "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1", pid
            ),
            timeout=5,
            what="the second announce to wait for the first's lock",
        )
        await first_tx.commit()
        await later
        await second_tx.commit()
    assert _versions(announced_second) > _versions(announced_first)


async def test_issue_19_the_announce_locks_only_what_its_transaction_did_not_write(
    renewal_db: DatabaseSettings, admin_db: asyncpg.Connection
) -> None:
    """A row this transaction wrote is held until it commits: the announce reads it without
    locking it `FOR UPDATE` again, which would log a row-lock WAL record and dirty its page once
    more. A subscription only noted as changed (a quote's trigger, its row not written here) is
    still locked before its version is taken (migration 016). The announce's WAL is read back
    (`pg_walinspect`): one row-lock record on the subscriptions, the noted one's."""
    _, written_id = await _given(renewal_db, TODAY + timedelta(days=40), auto_renew=True)
    _, noted_id = await _given(renewal_db, TODAY + timedelta(days=40), auto_renew=True)
    await _states(renewal_db)
    await admin_db.execute("CREATE EXTENSION IF NOT EXISTS pg_walinspect")
    async with connection_to(renewal_db) as connection:
        async with connection.transaction():
            await connection.execute(
                "UPDATE subscriptions SET auto_renew = false WHERE subscription_id = $1", written_id
            )
            await connection.execute("INSERT INTO state_changes VALUES ($1)", noted_id)
            before = await connection.fetchval("SELECT pg_current_wal_insert_lsn()")
            announced_here = Outbox()
            count = await StateAnnouncer(POLICY, "/t").announce_changes(
                connection, announced_here, NOW
            )
            after = await connection.fetchval("SELECT pg_current_wal_insert_lsn()")
        relation = await connection.fetchval("SELECT pg_relation_filenode('subscriptions')::text")
    await eventually(  # read back only once flushed (the role may commit asynchronously)
        lambda: admin_db.fetchval("SELECT pg_current_wal_flush_lsn() >= $1", after),
        timeout=5,
        what="the announce's WAL to be flushed",
    )
    row_locks = await admin_db.fetchval(
        "SELECT count(*) FROM pg_get_wal_records_info($1, $2)"
        " WHERE resource_manager = 'Heap' AND record_type = 'LOCK'"
        " AND block_ref LIKE '%/' || $3 || ' %'",
        before,
        after,
        relation,
    )
    assert count == 2 and row_locks == 1
    states = {
        json.loads(r[2])["data"]["subscription_id"]: json.loads(r[2])["data"]
        for r in announced_here.rows
    }
    assert states[written_id]["auto_renew"] is False and states[noted_id]["auto_renew"] is True


def _versions(outbox: Outbox) -> list[int]:
    return [json.loads(row[2])["data"]["version"] for row in outbox.rows]
