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
from shared.messaging.consumer import BatchEventHandler, Delivery, UnitOfWork, handles_batch


def record_renewal_request(clock: Clock, source: str) -> BatchEventHandler:
    async def handle(unit: UnitOfWork, deliveries: list[Delivery]) -> None:
        """The batch's requests in one INSERT and one COPY of their items."""
        requests: dict[str, Delivery] = {}
        for delivery in deliveries:
            requests.setdefault(delivery.data.request_id, delivery)  # the first one counts
        commands: list[RequestRenewal] = [delivery.data for delivery in requests.values()]
        rows = await unit.connection.fetch(
            """INSERT INTO renewal_batches (request_id, csn, actor, event_id, total_items)
               SELECT u.request_id, u.csn, u.actor::jsonb, u.event_id, u.total_items
               FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[])
                   AS u(request_id, csn, actor, event_id, total_items)
               ON CONFLICT (request_id) DO NOTHING RETURNING request_id""",
            [command.request_id for command in commands],
            [command.actor.csn for command in commands],
            [command.actor.model_dump_json() for command in commands],
            [delivery.event.id for delivery in requests.values()],
            [len(command.subscription_ids) for command in commands],
        )
        recorded = {row["request_id"] for row in rows}
        # A request id recorded before: one effect, one answer (the first time).
        fresh = [d for request_id, d in requests.items() if request_id in recorded]
        if not fresh:
            return
        await unit.connection.copy_records_to_table(
            "renewal_batch_items",
            records=[
                (delivery.data.request_id, position, subscription_id)
                for delivery in fresh
                for position, subscription_id in enumerate(delivery.data.subscription_ids)
            ],
            columns=["request_id", "position", "subscription_id"],
        )
        now = clock.now()
        for delivery in fresh:
            command = delivery.data
            if len(command.subscription_ids) > 1:
                accepted = BulkAccepted(
                    request_id=command.request_id, count=len(command.subscription_ids)
                )
                unit.outbox.add(
                    RENEWAL_EVENTS,
                    new_event(accepted, subject=delivery.event.subject, source=source, time=now),
                )

    return handles_batch(handle)
