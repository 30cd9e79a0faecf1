"""The intake of `renewal.requested` on a real database (issue 15 item 1): a request over the
bulk limit is refused at once, without storing its ids (MAN-1, CONTRACT.md: BULK_LIMIT_EXCEEDED,
nothing done); one within the limit is recorded for the bulk worker as before."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from deploy.local.samples import renewal_request, unique_csn
from services.renewal.renewal_requests import record_renewal_request
from shared.clock import FixedClock
from shared.contracts.common import MAX_IDS
from shared.contracts.envelope import new_event
from shared.db.settings import DatabaseSettings
from shared.eligibility import Policy
from shared.messaging.consumer import Delivery, UnitOfWork
from tests.integration.helpers import connection_to

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


async def intake(settings: DatabaseSettings, *deliveries: Delivery) -> list[dict[str, object]]:
    """Run the handler in one transaction, as the consumer does; the events it wrote."""
    handle = record_renewal_request(FixedClock(NOW), "/renewal", POLICY)
    async with connection_to(settings) as connection, connection.transaction():
        unit = UnitOfWork(connection)
        await handle(unit, list(deliveries))
        await unit.outbox.flush(connection)
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
