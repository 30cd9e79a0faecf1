"""Finishing renewal batches: once no item waits for an order, a bulk request gets its
`bulk.completed` with every subscription's outcome (single-subscription requests get their
`subscription.renewed` or `renewal.rejected` instead).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from shared.clock import Clock
from shared.contracts.envelope import new_event
from shared.contracts.renewal_events import TOPIC as RENEWAL_EVENTS
from shared.contracts.renewal_events import BulkCompleted, BulkOutcome
from shared.db.types import DbConnection
from shared.messaging import tracing
from shared.messaging.outbox import Outbox


@dataclass(frozen=True)
class SettledItem:
    """A batch item's outcome, once billing answered its order: `subscription_id` None for
    every item of the order."""

    order_id: str
    status: str  # renewed | rejected
    subscription_id: str | None = None
    reasons: list[str] = field(default_factory=list)


async def settle_items(connection: DbConnection, items: Sequence[SettledItem]) -> list[str]:
    """Save the outcomes of the items billing's answers settled; returns the requests (batches)
    they belong to, one statement for them all."""
    if not items:
        return []
    settled = await connection.fetch(
        """WITH settled AS (
               UPDATE renewal_batch_items AS i SET status = u.status, reasons = u.reasons
               FROM jsonb_to_recordset($1::jsonb)
                   AS u(order_id text, subscription_id text, status text, reasons text[])
               WHERE i.order_id = u.order_id
                 AND (u.subscription_id IS NULL OR i.subscription_id = u.subscription_id)
               RETURNING i.request_id)
           SELECT DISTINCT request_id FROM settled""",
        json.dumps([asdict(item) for item in items]),
    )
    return [row["request_id"] for row in settled]


async def finish_batches(
    connection: DbConnection,
    request_ids: list[str],
    outbox: Outbox,
    *,
    clock: Clock,
    source: str,
) -> None:
    finished = await connection.fetch(
        """UPDATE renewal_batches AS b SET status = 'completed'
           WHERE b.request_id = ANY($1::text[]) AND b.status <> 'completed'
             AND NOT EXISTS (SELECT 1 FROM renewal_batch_items AS i
                             WHERE i.request_id = b.request_id AND i.status IN ('pending', 'ordered'))
           RETURNING b.request_id, b.csn, b.total_items, b.traceparent,
                     COALESCE(b.client_request_id, b.request_id) AS client_request_id""",
        request_ids,
    )
    bulk = {row["request_id"]: row["csn"] for row in finished if row["total_items"] > 1}
    # The batch's key is scoped to its sender (issue 16); the answer names the client's id.
    client_ids = {row["request_id"]: row["client_request_id"] for row in finished}
    traces = {row["request_id"]: tracing.parse(row["traceparent"]) for row in finished}
    if not bulk:
        return
    items = await connection.fetch(
        "SELECT request_id, subscription_id, status, reasons, order_id FROM renewal_batch_items"
        " WHERE request_id = ANY($1::text[]) ORDER BY request_id, position",
        list(bulk),
    )
    outcomes: dict[str, list[BulkOutcome]] = defaultdict(list)
    for item in items:
        outcomes[item["request_id"]].append(
            BulkOutcome(
                subscription_id=item["subscription_id"],
                status="succeeded" if item["status"] == "renewed" else "rejected",
                reasons=list(item["reasons"]),
                order_id=item["order_id"],
            )
        )
    for request_id, csn in bulk.items():
        results = outcomes[request_id]
        succeeded = sum(1 for outcome in results if outcome.status == "succeeded")
        completed = BulkCompleted(
            request_id=client_ids[request_id],
            succeeded=succeeded,
            rejected=len(results) - succeeded,
            outcomes=results,
        )
        outbox.add(
            RENEWAL_EVENTS,
            new_event(
                completed, subject=csn, source=source, time=clock.now(), cause=traces[request_id]
            ),
        )
