"""`renewal.commands` → a renewal request is recorded as a batch for the bulk worker.

The request id is the idempotency key: the same command twice (even under a new event id) is
recorded once and answered once. It is scoped to the command's proven sender and its actor's
CSN (issue 16 item 3, `identity.request_key`): another tenant reusing it is recorded and
answered too. The batch keeps the sender: the bulk worker decides who may renew what with it. A bulk request (more than one subscription) is answered at
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
from shared.messaging.identity import request_key


def record_renewal_request(clock: Clock, source: str, policy: Policy) -> BatchEventHandler:
    async def handle(unit: UnitOfWork, deliveries: list[Delivery]) -> None:
        """The batch's requests in one INSERT and one COPY of their items."""
        requests: dict[str, Delivery] = {}
        for delivery in deliveries:
            requests.setdefault(request_key(delivery), delivery)  # the first one counts
        commands: list[RequestRenewal] = [delivery.data for delivery in requests.values()]
        # Kept on the batch: the bulk worker's orders continue each command's trace.
        spans = {key: trace_of(d.event) for key, d in requests.items()}
        refusals = {
            key: reasons
            for key, d in requests.items()
            if (reasons := request_size_reasons(d.data.subscription_ids, policy))
        }
        rows = await unit.connection.fetch(
            """INSERT INTO renewal_batches (request_id, csn, actor, event_id, total_items, status,
                                            traceparent, client_request_id, signer)
               SELECT u.request_id, u.csn, u.actor::jsonb, u.event_id, u.total_items, u.status,
                      u.traceparent, u.client_request_id, u.signer
               FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::text[],
                           $7::text[], $8::text[], $9::text[])
                   AS u(request_id, csn, actor, event_id, total_items, status, traceparent,
                        client_request_id, signer)
               ON CONFLICT (request_id) DO NOTHING RETURNING request_id""",
            list(requests),
            # The CSN the command is about (its key and subject): its today, its answers' key.
            [delivery.event.subject for delivery in requests.values()],
            [command.actor.model_dump_json() for command in commands],
            [delivery.event.id for delivery in requests.values()],
            [len(command.subscription_ids) for command in commands],
            # A refused request is done as soon as it is recorded: nothing for the worker.
            ["completed" if key in refusals else "pending" for key in requests],
            [spans[key].traceparent for key in requests],
            [command.request_id for command in commands],
            [delivery.signer for delivery in requests.values()],
        )
        recorded = {row["request_id"] for row in rows}
        # A request id recorded before: one effect, one answer (the first time).
        fresh = {key: d for key, d in requests.items() if key in recorded}
        if not fresh:
            return
        to_work = {key: d for key, d in fresh.items() if key not in refusals}
        if to_work:
            await unit.connection.copy_records_to_table(
                "renewal_batch_items",
                records=[
                    (key, position, subscription_id)
                    for key, delivery in to_work.items()
                    for position, subscription_id in enumerate(delivery.data.subscription_ids)
                ],
                columns=["request_id", "position", "subscription_id"],
            )
        now = clock.now()
        for key, delivery in fresh.items():
            command = delivery.data
            answer: RenewalRejected | BulkAccepted
            if key in refusals:
                answer = RenewalRejected(
                    request_id=command.request_id,
                    subscription_id=None,
                    reasons=list(refusals[key]),
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
                    cause=spans[key],
                ),
            )

    return handles_batch(handle)
