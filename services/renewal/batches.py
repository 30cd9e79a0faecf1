"""Renewal batches, as the bulk worker claims and works them, and finishing them: once no item
waits for an order, a bulk request gets its `bulk.completed` with every subscription's outcome
(single-subscription requests get their `subscription.renewed` or `renewal.rejected` instead).
The SQL of `renewal_batches` and `renewal_batch_items` past their recording, set-based.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Literal

from shared.clock import Clock
from shared.contracts.envelope import new_event
from shared.contracts.renewal_events import TOPIC as RENEWAL_EVENTS
from shared.contracts.renewal_events import BulkCompleted, BulkOutcome
from shared.db.types import DbConnection
from shared.eligibility import Actor
from shared.messaging import tracing
from shared.messaging.outbox import Outbox


@dataclass(frozen=True)
class Batch:
    """A recorded renewal request, claimed to be worked: `key` its id scoped to its sender and
    CSN (issue 16 item 3), `request_id` the client's own id, which its answers and orders carry;
    `requested` the subscriptions it asks for, in the request's order (a position each)."""

    key: str
    request_id: str
    csn: str
    actor: Actor
    traceparent: str | None
    signer: str | None
    requested: tuple[str, ...]


@dataclass(frozen=True)
class BatchItem:
    """An item: the subscription at `position` of batch `key` was ordered (in `order_id`) or
    rejected (for `reasons`) once worked; pending until then."""

    key: str
    position: int
    status: Literal["pending", "ordered", "rejected"]
    reasons: tuple[str, ...] = ()
    order_id: str | None = None


async def claim_batches(
    connection: DbConnection, limit: int, only: str | None, took: Callable[[list[str]], None]
) -> list[Batch]:
    """Lock up to `limit` pending batches, oldest first (or `only` that one), with what they ask
    for: `SKIP LOCKED`, so workers share the batches and never work one twice. `took` hears
    their keys once locked, before anything of theirs is read (a batch whose row cannot be
    read is then worked alone, and set aside)."""
    batches = await connection.fetch(
        "SELECT request_id, csn, actor::text AS actor, traceparent, signer,"
        " COALESCE(client_request_id, request_id) AS client_request_id"
        " FROM renewal_batches"
        " WHERE status = 'pending' AND ($2::text IS NULL OR request_id = $2)"
        " ORDER BY received_at LIMIT $1 FOR UPDATE SKIP LOCKED",
        limit,
        only,
    )
    if not batches:
        return []
    took([batch["request_id"] for batch in batches])
    items = await connection.fetch(
        "SELECT request_id, subscription_id FROM renewal_batch_items"
        " WHERE request_id = ANY($1::text[]) ORDER BY request_id, position",
        [batch["request_id"] for batch in batches],
    )
    requested: dict[str, list[str]] = defaultdict(list)
    for item in items:
        requested[item["request_id"]].append(item["subscription_id"])
    return [
        Batch(
            key=batch["request_id"],
            request_id=batch["client_request_id"],
            csn=batch["csn"],
            actor=Actor(**json.loads(batch["actor"])),
            traceparent=batch["traceparent"],
            signer=batch["signer"],
            requested=tuple(requested[batch["request_id"]]),
        )
        for batch in batches
    ]


async def save_worked(
    connection: DbConnection,
    batches: Sequence[Batch],
    items: Sequence[BatchItem],
    outbox: Outbox,
    *,
    clock: Clock,
    source: str,
) -> None:
    """The outcome of every item of these batches, now worked, and each batch's status in the
    same statement (#19 plan item 7): `ordered` while an order waits for billing, `completed` at
    once when every item was refused, answered then with its `bulk.completed` (a bulk request)."""
    ordered = {item.key for item in items if item.status == "ordered"}
    completed = [batch for batch in batches if batch.key not in ordered]
    await connection.execute(
        """WITH worked AS (
               UPDATE renewal_batch_items AS item
               SET status = u.status, reasons = u.reasons, order_id = u.order_id
               FROM jsonb_to_recordset($1::jsonb)
                   AS u(key text, position int, status text, reasons text[], order_id text)
               WHERE item.request_id = u.key AND item.position = u.position)
           UPDATE renewal_batches SET worked_at = now(),
               status = CASE WHEN request_id = ANY($3::text[]) THEN 'ordered' ELSE 'completed' END
           WHERE request_id = ANY($2::text[])""",
        json.dumps([asdict(item) for item in items]),
        [batch.key for batch in batches],
        list(ordered),
    )
    refused: dict[str, list[BulkOutcome]] = defaultdict(list)
    requested = {batch.key: batch.requested for batch in batches}
    for item in items:
        if item.key not in ordered:
            refused[item.key].append(
                BulkOutcome(
                    subscription_id=requested[item.key][item.position],
                    status="rejected",
                    reasons=list(item.reasons),
                )
            )
    _answer_bulk(
        outbox,
        [
            Completed(b.key, b.request_id, b.csn, len(b.requested), tracing.parse(b.traceparent))
            for b in completed
        ],
        refused,
        clock=clock,
        source=source,
    )


async def set_aside(connection: DbConnection, key: str) -> None:
    """A batch that fails alone, for an operator: no worker claims it again."""
    await connection.execute(
        "UPDATE renewal_batches SET status = 'failed', worked_at = now()"
        " WHERE request_id = $1 AND status = 'pending'",
        key,
    )


@dataclass(frozen=True)
class SettledItem:
    """A batch item's outcome, once billing answered its order: `subscription_id` None for
    every item of the order."""

    order_id: str
    status: str  # renewed | rejected
    subscription_id: str | None = None
    reasons: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Completed:
    """A batch just completed: `key` its scoped id, `request_id` the client's."""

    key: str
    request_id: str
    csn: str
    total_items: int
    cause: tracing.Span | None


async def settle_items(
    connection: DbConnection,
    items: Sequence[SettledItem],
    outbox: Outbox,
    *,
    clock: Clock,
    source: str,
) -> None:
    """Save the outcomes of the items billing's answers settled and complete, in the same
    statement (#19 plan item 7), each batch no item of which waits any more; a completed bulk
    request is answered with its `bulk.completed`. The statement's snapshot still shows the items
    it settles as ordered: the test of what waits leaves them out.

    Their batches are locked first, in key order: two transactions settling the last two items
    of one batch at once (a payment and an abandonment, or two consumers in a rebalance) would
    each see the other's item still waiting and neither complete it. The second now waits for
    the first to commit, and its statement, read after, sees that item settled."""
    if not items:
        return
    await connection.execute(
        """SELECT FROM renewal_batches WHERE request_id IN (
               SELECT request_id FROM renewal_batch_items WHERE order_id = ANY($1::text[]))
           ORDER BY request_id FOR UPDATE""",
        list({item.order_id for item in items}),
    )
    finished = await connection.fetch(
        """WITH settled AS (
               UPDATE renewal_batch_items AS i SET status = u.status, reasons = u.reasons
               FROM jsonb_to_recordset($1::jsonb)
                   AS u(order_id text, subscription_id text, status text, reasons text[])
               WHERE i.order_id = u.order_id
                 AND (u.subscription_id IS NULL OR i.subscription_id = u.subscription_id)
               RETURNING i.request_id, i.position),
           waiting AS (  -- what still waits once these are settled: one set, not a probe each
               SELECT i.request_id, i.position FROM renewal_batch_items AS i
               WHERE i.request_id IN (SELECT request_id FROM settled)
                 AND i.status IN ('pending', 'ordered')
               EXCEPT SELECT request_id, position FROM settled)
           UPDATE renewal_batches AS b SET status = 'completed'
           WHERE b.request_id IN (SELECT request_id FROM settled) AND b.status <> 'completed'
             AND b.request_id NOT IN (SELECT request_id FROM waiting)
           RETURNING b.request_id, b.csn, b.total_items, b.traceparent,
                     COALESCE(b.client_request_id, b.request_id) AS client_request_id""",
        json.dumps([asdict(item) for item in items]),
    )
    completed = [
        Completed(
            row["request_id"],
            row["client_request_id"],
            row["csn"],
            row["total_items"],
            tracing.parse(row["traceparent"]),
        )
        for row in finished
    ]
    bulk = [batch.key for batch in completed if batch.total_items > 1]
    if not bulk:
        return
    # Read afresh: this statement sees the items as they are now, settled.
    rows = await connection.fetch(
        "SELECT request_id, subscription_id, status, reasons, order_id FROM renewal_batch_items"
        " WHERE request_id = ANY($1::text[]) ORDER BY request_id, position",
        bulk,
    )
    outcomes: dict[str, list[BulkOutcome]] = defaultdict(list)
    for row in rows:
        outcomes[row["request_id"]].append(
            BulkOutcome(
                subscription_id=row["subscription_id"],
                status="succeeded" if row["status"] == "renewed" else "rejected",
                reasons=list(row["reasons"]),
                order_id=row["order_id"],
            )
        )
    _answer_bulk(outbox, completed, outcomes, clock=clock, source=source)


def _answer_bulk(
    outbox: Outbox,
    completed: Sequence[Completed],
    outcomes: dict[str, list[BulkOutcome]],
    *,
    clock: Clock,
    source: str,
) -> None:
    """`bulk.completed` for each completed bulk request, with every subscription's outcome
    (`outcomes` by batch key, in the request's order); a single-subscription request got its
    own answer already (`subscription.renewed` or `renewal.rejected`)."""
    for batch in completed:
        if batch.total_items <= 1:
            continue
        results = outcomes[batch.key]
        succeeded = sum(1 for outcome in results if outcome.status == "succeeded")
        answer = BulkCompleted(
            request_id=batch.request_id,  # the batch's key is scoped to its sender (issue 16)
            succeeded=succeeded,
            rejected=len(results) - succeeded,
            outcomes=results,
        )
        outbox.add(
            RENEWAL_EVENTS,
            new_event(
                answer, subject=batch.csn, source=source, time=clock.now(), cause=batch.cause
            ),
        )
