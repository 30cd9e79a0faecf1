"""`renewal.commands` → a renewal request is recorded as a batch for the bulk worker.

The request id is the idempotency key: the same command twice (even under a new event id) is
recorded once and answered once. A bulk request (more than one subscription) is answered at
once with `bulk.accepted`; the worker does the rest.
"""

from __future__ import annotations

from shared.clock import Clock
from shared.contracts.envelope import new_event
from shared.contracts.renewal_commands import RequestRenewal
from shared.contracts.renewal_events import TOPIC as RENEWAL_EVENTS
from shared.contracts.renewal_events import BulkAccepted
from shared.messaging.consumer import Delivery, EventHandler, UnitOfWork


def record_renewal_request(clock: Clock, source: str) -> EventHandler:
    async def handle(unit: UnitOfWork, delivery: Delivery) -> None:
        command: RequestRenewal = delivery.data
        recorded = await unit.connection.fetchval(
            """INSERT INTO renewal_batches (request_id, csn, actor, event_id, total_items)
               VALUES ($1, $2, $3::jsonb, $4, $5)
               ON CONFLICT (request_id) DO NOTHING RETURNING true""",
            command.request_id,
            command.actor.csn,
            command.actor.model_dump_json(),
            delivery.event.id,
            len(command.subscription_ids),
        )
        if not recorded:
            return  # the same request id again: one effect, one answer
        await unit.connection.copy_records_to_table(
            "renewal_batch_items",
            records=[
                (command.request_id, position, subscription_id)
                for position, subscription_id in enumerate(command.subscription_ids)
            ],
            columns=["request_id", "position", "subscription_id"],
        )
        if len(command.subscription_ids) > 1:
            accepted = BulkAccepted(
                request_id=command.request_id, count=len(command.subscription_ids)
            )
            unit.outbox.add(
                RENEWAL_EVENTS,
                new_event(
                    accepted, subject=delivery.event.subject, source=source, time=clock.now()
                ),
            )

    return handle
