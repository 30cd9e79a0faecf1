"""No lock on another tenant's rows (issue 16 item 3, OWASP API1): while the owner's transaction
holds its subscription, a stranger's commands about it are refused NOT_AUTHORIZED at once — the
handlers called directly on a real database, under a `lock_timeout` that a lock taken on the
owner's row would run into (the owner's own command does, which shows the check can fail)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from deploy.local.samples import renewal_request, subscription, unique_csn
from services.renewal.auto_renew import set_auto_renew_handler
from services.renewal.bulk_worker import BulkWorker
from services.renewal.changes import ChangeHandlers
from services.renewal.renewal_requests import record_renewal_request
from services.renewal.state import snapshot_handler
from shared.clock import FixedClock
from shared.contracts.common import Actor
from shared.contracts.envelope import new_event
from shared.contracts.renewal_commands import (
    AddSeats,
    AlignRenewalDates,
    ChangeRenewalTerms,
    SetAutoRenew,
)
from shared.db.pool import connect, create_pool
from shared.db.settings import DatabaseSettings
from shared.eligibility import Policy
from shared.messaging.consumer import Delivery, UnitOfWork
from tests.integration.helpers import connection_to, delivered

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CLOCK = FixedClock(NOW)
POLICY = Policy()
# The upsert as the app wires it: stored, and its subscription.state announced.
save_snapshot = snapshot_handler(POLICY, "/renewal", CLOCK)
Handle = Callable[[UnitOfWork, Delivery], Awaitable[None]]


def delivery(data: Any, csn: str) -> Delivery:
    return delivered(data, csn, time=NOW, signer="portal")  # as the consumer proved it


async def owned(settings: DatabaseSettings) -> tuple[str, str]:
    csn = unique_csn("OWNER")
    snapshot = subscription(f"S-{csn}", csn, renewal_date=NOW.date() + timedelta(days=20))
    async with connection_to(settings) as connection, connection.transaction():
        event = new_event(snapshot, subject=csn, source="/t", time=NOW)
        await save_snapshot(UnitOfWork(connection), [Delivery(event, None)])
        await connection.execute(
            "INSERT INTO prices VALUES ('ACDLT', 'annual', 'USD', 466, 420) ON CONFLICT DO NOTHING"
        )
    return csn, snapshot.subscription_id


async def holding(settings: DatabaseSettings, subscription_id: str) -> asyncpg.Connection:
    """The owner's transaction, holding its subscription's row."""
    owner = await connect(settings)
    await owner.execute("BEGIN")
    await owner.execute(
        "SELECT 1 FROM subscriptions WHERE subscription_id = $1 FOR UPDATE", subscription_id
    )
    return owner


async def handled(settings: DatabaseSettings, handle: Handle, command: Delivery) -> list[dict]:
    """The handler in one transaction that gives up on any lock it waits a second for."""
    async with connection_to(settings) as connection, connection.transaction():
        await connection.execute("SET LOCAL lock_timeout = '1s'")
        unit = UnitOfWork(connection)
        await handle(unit, command)
        return [json.loads(value) for _, _, value, _ in unit.outbox.rows]


def commands(actor: Actor, sid: str) -> list[tuple[str, Any]]:
    changes = ChangeHandlers(CLOCK, POLICY, "/renewal")
    return [
        (
            "auto_renew.set",
            SetAutoRenew(request_id="a", actor=actor, subscription_ids=[sid], enabled=True),
        ),
        ("terms", ChangeRenewalTerms(request_id="t", actor=actor, subscription_id=sid, seats=3)),
        ("seats", AddSeats(request_id="s", actor=actor, subscription_id=sid, seats=1)),
        (
            "align",
            AlignRenewalDates(
                request_id="d",
                actor=actor,
                subscription_ids=[sid],
                target_date=NOW.date() + timedelta(days=30),
            ),
        ),
    ], {
        "auto_renew.set": set_auto_renew_handler(CLOCK, POLICY, "/renewal"),
        "terms": changes.change_terms,
        "seats": changes.add_seats,
        "align": changes.align_dates,
    }  # type: ignore[return-value]


async def test_a_stranger_s_commands_are_refused_without_waiting_for_the_owner_s_lock(
    renewal_db: DatabaseSettings,
) -> None:
    csn, sid = await owned(renewal_db)
    stranger = unique_csn("STRANGER")
    owner = await holding(renewal_db, sid)
    try:
        listed, handlers = commands(Actor(user_id=f"{stranger}-buyer", csn=stranger), sid)
        for name, command in listed:
            events = await handled(renewal_db, handlers[name], delivery(command, stranger))
            assert [(e["type"], e["data"]["reasons"]) for e in events] == [
                ("renewal.rejected", ["NOT_AUTHORIZED"])
            ], name

        # A renewal request of one subscription is worked at intake: it too leaves the owner's
        # row alone.
        intake = record_renewal_request(CLOCK, "/renewal", POLICY)
        request = renewal_request(stranger, [sid])
        async with connection_to(renewal_db) as connection, connection.transaction():
            await connection.execute("SET LOCAL lock_timeout = '1s'")
            unit = UnitOfWork(connection)
            await intake(unit, [delivery(request, stranger)])
            answers = [json.loads(value) for _, _, value, _ in unit.outbox.rows]
        assert [(e["type"], e["data"]["reasons"]) for e in answers] == [
            ("renewal.rejected", ["NOT_AUTHORIZED"])
        ]
        # A bulk one is worked by the bulk worker: the same.
        bulk = renewal_request(stranger, [sid, f"{sid}-2"])
        async with connection_to(renewal_db) as connection, connection.transaction():
            await intake(UnitOfWork(connection), [delivery(bulk, stranger)])
        pool = await create_pool(renewal_db)
        try:
            worker = BulkWorker(pool, CLOCK, POLICY, source="/renewal", per_claim=5, poll_seconds=1)
            assert await asyncio.wait_for(worker.work_pending(), 10) == 1
        finally:
            await pool.close()
        async with connection_to(renewal_db) as connection:
            answer = await connection.fetchval(
                "SELECT value FROM outbox WHERE convert_from(value, 'UTF8') LIKE $1",
                f"%{bulk.request_id}%",
            )
        assert json.loads(answer)["data"]["reasons"] == ["NOT_AUTHORIZED"]

        # The owner's own command does wait for its row: the check above could have failed.
        listed, handlers = commands(Actor(user_id=f"{csn}-buyer", csn=csn), sid)
        name, command = listed[0]
        with pytest.raises(asyncpg.LockNotAvailableError):
            await handled(renewal_db, handlers[name], delivery(command, csn))
    finally:
        await owner.execute("ROLLBACK")
        await owner.close()
