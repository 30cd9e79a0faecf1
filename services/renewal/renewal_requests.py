"""`renewal.commands` → a renewal request is recorded as a batch: a single-subscription request
worked at once, in this transaction (issue 19), a bulk request left for the bulk worker.

The request id is the idempotency key: the same command twice (even under a new event id) is
recorded once and answered once. It is scoped to the command's proven sender and its actor's
CSN (issue 16 item 3, `identity.request_key`): another tenant reusing it is recorded and
answered too. The batch keeps the sender: who may renew what is decided with it. A single
request is decided as the bulk worker decides a batch (services/renewal/manual_renewals.py: the
same rules, orders and answers) and its rows are written once, already worked; a bulk request
(more than one subscription) is answered at once with `bulk.accepted`, and the worker does the
rest. A request whose size alone refuses it (over the bulk limit, or no subscription: MAN-1) is
answered at once with `renewal.rejected` and recorded without its ids: a list of thousands would
otherwise be stored, worked, and answered with a `bulk.completed` too large for the broker.
"""

from __future__ import annotations

from services.renewal.batches import Batch, BatchItem
from services.renewal.manual_renewals import decide_requests
from services.renewal.state import StateAnnouncer
from shared.clock import Clock
from shared.contracts.envelope import new_event, trace_of
from shared.contracts.renewal_commands import RequestRenewal
from shared.contracts.renewal_events import TOPIC as RENEWAL_EVENTS
from shared.contracts.renewal_events import BulkAccepted, RenewalRejected
from shared.db.types import DbConnection
from shared.eligibility import Actor, Policy
from shared.eligibility.checks import request_size_reasons
from shared.messaging.consumer import BatchEventHandler, Delivery, UnitOfWork, handles_batch
from shared.messaging.identity import request_key


def record_renewal_request(clock: Clock, source: str, policy: Policy) -> BatchEventHandler:
    async def handle(unit: UnitOfWork, deliveries: list[Delivery]) -> None:
        """The batch's requests in one INSERT and one COPY of their items; its single requests
        decided together, before their items are written."""
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
        # Worked here: recorded `ordered` (MAN-3: its one order), `completed` below if refused.
        inline = {
            key
            for key, d in requests.items()
            if key not in refusals and len(d.data.subscription_ids) == 1
        }
        rows = await unit.connection.fetch(
            """INSERT INTO renewal_batches (request_id, csn, actor, event_id, total_items, status,
                                            traceparent, client_request_id, signer, worked_at)
               SELECT u.request_id, u.csn, u.actor::jsonb, u.event_id, u.total_items, u.status,
                      u.traceparent, u.client_request_id, u.signer,
                      CASE WHEN u.status = 'ordered' THEN now() END
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
            [
                "completed" if key in refusals else "ordered" if key in inline else "pending"
                for key in requests
            ],
            [spans[key].traceparent for key in requests],
            [command.request_id for command in commands],
            [delivery.signer for delivery in requests.values()],
        )
        recorded = {row["request_id"] for row in rows}
        # A request id recorded before: one effect, one answer (the first time).
        fresh = {key: d for key, d in requests.items() if key in recorded}
        if not fresh:
            return
        now = clock.now()
        singles = [
            Batch(
                key=key,
                request_id=d.data.request_id,
                csn=d.event.subject,
                actor=Actor(user_id=d.data.actor.user_id, csn=d.data.actor.csn),
                traceparent=spans[key].traceparent,
                signer=d.signer,
                requested=tuple(d.data.subscription_ids),
            )
            for key, d in fresh.items()
            if key in inline
        ]
        worked: list[BatchItem] = []
        if singles:
            work = await decide_requests(
                unit.connection,
                singles,
                unit.outbox,
                clock=clock,
                policy=policy,
                source=source,
                counted_as="renewal",
            )
            worked = work.items
        pending = [
            BatchItem(key, position, "pending")  # for the bulk worker
            for key, d in fresh.items()
            if key not in refusals and key not in inline
            for position in range(len(d.data.subscription_ids))
        ]
        await _save_items(unit.connection, fresh, [*worked, *pending])
        if singles:
            await StateAnnouncer(policy, source).announce_changes(unit.connection, unit.outbox, now)
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


async def _save_items(
    connection: DbConnection, requests: dict[str, Delivery], items: list[BatchItem]
) -> None:
    """Every item in one COPY, as it is now (pending for the worker, or worked); a single
    request whose one item was refused is completed (MAN-1: answered, nothing to wait for)."""
    if not items:
        return
    await connection.copy_records_to_table(
        "renewal_batch_items",
        records=[
            (
                item.key,
                item.position,
                requests[item.key].data.subscription_ids[item.position],
                item.status,
                list(item.reasons),
                item.order_id,
            )
            for item in items
        ],
        columns=["request_id", "position", "subscription_id", "status", "reasons", "order_id"],
    )
    refused = [
        item.key
        for item in items
        if item.status == "rejected" and len(requests[item.key].data.subscription_ids) == 1
    ]
    if refused:
        await connection.execute(
            "UPDATE renewal_batches SET status = 'completed' WHERE request_id = ANY($1::text[])",
            refused,
        )
