"""The intake of `renewal.requested` on a real database (issue 15 item 1): a request over the
bulk limit is refused at once, without storing its ids (MAN-1, CONTRACT.md: BULK_LIMIT_EXCEEDED,
nothing done); one within the limit is recorded for the bulk worker as before. A request of one
subscription is worked at once, in the intake's transaction (issue 19): its order or refusal,
its rows written once, already worked, and nothing left for the bulk worker."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

from deploy.local.samples import renewal_request, subscription, unique_csn
from services.renewal.bulk_worker import BulkWorker
from services.renewal.renewal_requests import record_renewal_request
from services.renewal.state import snapshot_handler
from shared.clock import FixedClock
from shared.contracts.common import MAX_IDS
from shared.contracts.envelope import new_event
from shared.db.pool import create_pool
from shared.db.settings import DatabaseSettings
from shared.eligibility import Policy
from shared.messaging.consumer import Delivery, UnitOfWork
from tests.integration.helpers import CountingConnection, connection_to, handle_in_transaction

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
POLICY = Policy()


def request_of(
    count: int, request_id: str | None = None, *, csn: str | None = None, signer: str = "portal"
) -> Delivery:
    csn = csn or unique_csn()
    command = renewal_request(csn, [f"S-{csn}-{n}" for n in range(count)])
    if request_id is not None:
        command = command.model_copy(update={"request_id": request_id})
    event = new_event(command, subject=csn, source="/t", time=NOW)
    return Delivery(event, record=None, signer=signer)  # as the consumer proved it


async def intake(
    settings: DatabaseSettings, *deliveries: Delivery, statements: list[str] | None = None
) -> list[dict[str, object]]:
    """Run the handler in one transaction, as the consumer does; the events it wrote. The
    statements it sent (COPY aside) are appended to `statements`."""
    handle = record_renewal_request(FixedClock(NOW), "/renewal", POLICY)
    async with connection_to(settings) as connection, connection.transaction():
        counting = CountingConnection(connection)
        unit = UnitOfWork(counting)  # type: ignore[arg-type]
        await handle(unit, list(deliveries))
        await unit.outbox.flush(connection)
        if statements is not None:
            statements += counting.statements
    async with connection_to(settings) as connection:
        rows = await connection.fetch("SELECT value FROM outbox ORDER BY id")
        await connection.execute("DELETE FROM outbox")
    return [json.loads(row["value"]) for row in rows]


async def stored_items(settings: DatabaseSettings, request_id: str) -> int:
    async with connection_to(settings) as connection:
        return int(
            await connection.fetchval(
                "SELECT count(*) FROM renewal_batch_items AS i JOIN renewal_batches AS b"
                " USING (request_id) WHERE b.client_request_id = $1",
                request_id,
            )
        )


async def test_a_request_over_the_bulk_limit_is_refused_without_storing_its_ids(
    renewal_db: DatabaseSettings,
) -> None:
    """12,000 ids used to be stored whole, then answered with a `bulk.completed` too large for
    the broker. Now: one `renewal.rejected` for the whole request, and no item stored."""
    over = request_of(MAX_IDS)
    within = request_of(3)

    events = await intake(renewal_db, over, within)

    refusals = [e for e in events if e["data"]["request_id"] == over.data.request_id]
    assert [(e["type"], e["data"]["subscription_id"], e["data"]["reasons"]) for e in refusals] == [
        ("renewal.rejected", None, ["BULK_LIMIT_EXCEEDED"])
    ]
    assert await stored_items(renewal_db, over.data.request_id) == 0
    async with connection_to(renewal_db) as connection:
        batch = await connection.fetchrow(
            "SELECT status, total_items FROM renewal_batches WHERE client_request_id = $1",
            over.data.request_id,
        )
    assert (batch["status"], batch["total_items"]) == ("completed", MAX_IDS)  # nothing to work
    # The request within the limit is recorded for the bulk worker, as before.
    assert await stored_items(renewal_db, within.data.request_id) == 3
    accepted = [e for e in events if e["data"]["request_id"] == within.data.request_id]
    assert [e["type"] for e in accepted] == ["bulk.accepted"]


async def test_the_same_refused_request_again_is_answered_once(
    renewal_db: DatabaseSettings,
) -> None:
    """The request id stays the idempotency key of a refused request too."""
    first = request_of(POLICY.bulk_limit + 1)
    again = request_of(
        POLICY.bulk_limit + 1, request_id=first.data.request_id, csn=first.event.subject
    )

    assert len(await intake(renewal_db, first)) == 1
    assert await intake(renewal_db, again) == []


async def test_another_tenant_or_system_reusing_a_request_id_is_recorded_and_answered(
    renewal_db: DatabaseSettings,
) -> None:
    """Issue 16 item 3 (CONTRACT.md: request ids are scoped to the CSN that sent them): the same
    request id from another customer, or from another upstream system for the same customer,
    is a request of its own: recorded, worked and answered with the client's id; the same
    request again from the same sender for the same CSN is still one."""
    mine = request_of(2, "shared-id")
    theirs = request_of(2, "shared-id")
    by_sales = request_of(2, "shared-id", csn=mine.event.subject, signer="sales")
    again = request_of(2, "shared-id", csn=mine.event.subject)

    events = await intake(renewal_db, mine, theirs, by_sales)
    assert await intake(renewal_db, again) == []

    assert sorted((e["type"], e["subject"], e["data"]["request_id"]) for e in events) == sorted(
        ("bulk.accepted", d.event.subject, "shared-id") for d in (mine, theirs, by_sales)
    )
    async with connection_to(renewal_db) as connection:
        batches = await connection.fetch(
            "SELECT csn, signer FROM renewal_batches WHERE client_request_id = 'shared-id'"
        )
    assert sorted((b["csn"], b["signer"]) for b in batches) == sorted(
        (d.event.subject, d.signer) for d in (mine, theirs, by_sales)
    )
    assert await stored_items(renewal_db, "shared-id") == 6


async def stored(settings: DatabaseSettings, csn: str, days_ahead: int = 30) -> str:
    """A subscription of `csn` renewal holds, renewing in `days_ahead` (30: inside the manual
    renewal window), and its price."""
    snapshot = subscription(f"S-{csn}", csn, renewal_date=NOW.date() + timedelta(days=days_ahead))
    await handle_in_transaction(
        settings,
        snapshot_handler(POLICY, "/renewal", FixedClock(NOW)),
        [Delivery(new_event(snapshot, subject=csn, source="/t", time=NOW), record=None)],
    )
    async with connection_to(settings) as connection:
        await connection.execute(
            "INSERT INTO prices VALUES ('ACDLT', 'annual', 'USD', 466, 420) ON CONFLICT DO NOTHING"
        )
        await connection.execute("DELETE FROM outbox")
    return snapshot.subscription_id


async def recorded(settings: DatabaseSettings, request_id: str) -> tuple[object, list[object]]:
    """The request's batch (status, worked) and its items (status, reasons, order id)."""
    async with connection_to(settings) as connection:
        batch = await connection.fetchrow(
            "SELECT request_id, status, worked_at IS NOT NULL AS worked FROM renewal_batches"
            " WHERE client_request_id = $1",
            request_id,
        )
        items = await connection.fetch(
            "SELECT status, reasons, order_id FROM renewal_batch_items WHERE request_id = $1"
            " ORDER BY position",
            batch["request_id"],
        )
    return (batch["status"], batch["worked"]), [tuple(item) for item in items]


async def left_for_the_bulk_worker(settings: DatabaseSettings) -> int:
    pool = await create_pool(settings)
    try:
        worker = BulkWorker(
            pool, FixedClock(NOW), POLICY, source="/renewal", per_claim=10, poll_seconds=1
        )
        return await worker.work_pending()
    finally:
        await pool.close()


async def test_issue_19_man_3_a_single_request_is_ordered_at_intake_its_rows_written_once(
    renewal_db: DatabaseSettings,
) -> None:
    """The bulk worker's hop (its claim, the items' second write) is gone for a single request:
    its order is asked for in the intake's transaction, by the same rules (MAN-1, MAN-3), with
    the same events (its order, its state; no `bulk.accepted`); the same request again, under a
    new event id, is one effect and one answer."""
    csn = unique_csn()
    sid = await stored(renewal_db, csn)
    command = renewal_request(csn, [sid])
    first = Delivery(
        new_event(command, subject=csn, source="/t", time=NOW), record=None, signer="portal"
    )
    again = Delivery(
        new_event(command, subject=csn, source="/t", time=NOW), record=None, signer="portal"
    )
    statements: list[str] = []

    events = await intake(renewal_db, first, statements=statements)

    assert sorted(e["type"] for e in events) == ["order.requested", "subscription.state"]
    [order] = [e for e in events if e["type"] == "order.requested"]
    assert order["data"]["request_id"] == command.request_id
    assert await recorded(renewal_db, command.request_id) == (
        ("ordered", True),
        [("ordered", [], order["data"]["order_id"])],
    )
    # Written once, by the intake's COPY: no statement writes an item afterwards.
    assert [s for s in statements if "renewal_batch_items" in s] == []
    assert await left_for_the_bulk_worker(renewal_db) == 0

    assert await intake(renewal_db, again) == []
    async with connection_to(renewal_db) as connection:
        assert await connection.fetchval("SELECT count(*) FROM orders") == 1


async def test_issue_19_man_1_a_single_request_refused_by_the_rules_is_answered_and_completed(
    renewal_db: DatabaseSettings,
) -> None:
    """A subscription renewing too far ahead: `renewal.rejected` with its reasons for that
    subscription, as the bulk worker answered it (WIN-1); the request completed, nothing
    ordered."""
    csn = unique_csn()
    early = await stored(renewal_db, csn, days_ahead=300)
    command = renewal_request(csn, [early])
    events = await intake(
        renewal_db,
        Delivery(
            new_event(command, subject=csn, source="/t", time=NOW), record=None, signer="portal"
        ),
    )

    assert [(e["type"], e["data"]["subscription_id"], e["data"]["reasons"]) for e in events] == [
        ("renewal.rejected", early, ["TOO_EARLY"])
    ]
    assert await recorded(renewal_db, command.request_id) == (
        ("completed", True),
        [("rejected", ["TOO_EARLY"], None)],
    )
    assert await left_for_the_bulk_worker(renewal_db) == 0


async def test_issue_19_only_a_bulk_request_wakes_the_bulk_worker(
    renewal_db: DatabaseSettings,
) -> None:
    """`NOTIFY renewal_batches` (migration 019) for a batch left pending, not for one worked at
    intake. Notifications arrive in commit order: when the bulk request's has come, a single
    request's recorded before it would have come first."""
    heard: list[str] = []
    async with connection_to(renewal_db) as listener:
        woken = asyncio.Event()

        def wake(*_: object) -> None:
            heard.append("renewal_batches")
            woken.set()

        await listener.add_listener("renewal_batches", wake)
        await intake(renewal_db, request_of(1))
        await intake(renewal_db, request_of(2))
        await asyncio.wait_for(woken.wait(), 10)
        await listener.remove_listener("renewal_batches", wake)
    assert heard == ["renewal_batches"]
