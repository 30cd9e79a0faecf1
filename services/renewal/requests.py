"""`renewal.commands` → a renewal request is recorded as a batch for the bulk worker.

The request id is the idempotency key: the same command twice (even under a new event id) is
recorded once and answered once. A bulk request (more than one subscription) is answered at
once with `bulk.accepted`; the worker does the rest. A request whose size alone refuses it
(over the bulk limit, or no subscription: MAN-1) is answered at once with `renewal.rejected`
and recorded without its ids: a list of thousands would otherwise be stored, worked, and
answered with a `bulk.completed` too large for the broker.
"""

from __future__ import annotations

from shared.clock import Clock
from shared.contracts.envelope import new_event, trace_of
from shared.contracts.renewal_commands import RequestRenewal
from shared.contracts.renewal_events import TOPIC as RENEWAL_EVENTS
from shared.contracts.renewal_events import BulkAccepted, RenewalRejected
from shared.eligibility import Policy
from shared.eligibility.checks import request_size_reasons
from shared.messaging.consumer import BatchEventHandler, Delivery, UnitOfWork, handles_batch


def record_renewal_request(clock: Clock, source: str, policy: Policy) -> BatchEventHandler:
    async def handle(unit: UnitOfWork, deliveries: list[Delivery]) -> None:
        """The batch's requests in one INSERT and one COPY of their items."""
        requests: dict[str, Delivery] = {}
        for delivery in deliveries:
            requests.setdefault(delivery.data.request_id, delivery)  # the first one counts
        commands: list[RequestRenewal] = [delivery.data for delivery in requests.values()]
        # Kept on the batch: the bulk worker's orders continue each command's trace.
        spans = {request_id: trace_of(d.event) for request_id, d in requests.items()}
        refusals = {
            command.request_id: reasons
            for command in commands
            if (reasons := request_size_reasons(command.subscription_ids, policy))
        }
        rows = await unit.connection.fetch(
            """INSERT INTO renewal_batches (request_id, csn, actor, event_id, total_items, status,
                                            traceparent)
               SELECT u.request_id, u.csn, u.actor::jsonb, u.event_id, u.total_items, u.status,
                      u.traceparent
               FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::text[],
                           $7::text[])
                   AS u(request_id, csn, actor, event_id, total_items, status, traceparent)
               ON CONFLICT (request_id) DO NOTHING RETURNING request_id""",
            [command.request_id for command in commands],
            [command.actor.csn for command in commands],
            [command.actor.model_dump_json() for command in commands],
            [delivery.event.id for delivery in requests.values()],
            [len(command.subscription_ids) for command in commands],
            # A refused request is done as soon as it is recorded: nothing for the worker.
            ["completed" if command.request_id in refusals else "pending" for command in commands],
            [spans[command.request_id].traceparent for command in commands],
        )
        recorded = {row["request_id"] for row in rows}
        # A request id recorded before: one effect, one answer (the first time).
        fresh = [d for request_id, d in requests.items() if request_id in recorded]
        if not fresh:
            return
        to_work = [d for d in fresh if d.data.request_id not in refusals]
        if to_work:
            await unit.connection.copy_records_to_table(
                "renewal_batch_items",
                records=[
                    (delivery.data.request_id, position, subscription_id)
                    for delivery in to_work
                    for position, subscription_id in enumerate(delivery.data.subscription_ids)
                ],
                columns=["request_id", "position", "subscription_id"],
            )
        now = clock.now()
        for delivery in fresh:
            command = delivery.data
            answer: RenewalRejected | BulkAccepted
            if command.request_id in refusals:
                answer = RenewalRejected(
                    request_id=command.request_id,
                    subscription_id=None,
                    reasons=list(refusals[command.request_id]),
                )
            elif len(command.subscription_ids) > 1:
                answer = BulkAccepted(
                    request_id=command.request_id, count=len(command.subscription_ids)
                )
            else:
                continue
            unit.outbox.add(
                RENEWAL_EVENTS,
                new_event(
                    answer,
                    subject=delivery.event.subject,
                    source=source,
                    time=now,
                    cause=spans[command.request_id],
                ),
            )

    return handles_batch(handle)
