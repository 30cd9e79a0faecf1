"""`auto_renew.set` (AUTO-1..4): switch auto-renew on or off for 1 to 100 subscriptions.

Each subscription is switched, or refused with every reason (a manual-only payment method
can't renew by itself — AUTO-4; switching off is allowed any time before expiry — AUTO-3).
Answers: one `auto_renew.changed` per subscription switched, one `renewal.rejected` per
subscription refused (or one for the whole request), and for more than one subscription a
`bulk.completed` with every outcome.
"""

from __future__ import annotations

from services.renewal.state import announced
from services.renewal.subscriptions import load_for_command, record_history, to_domain
from shared.clock import Clock
from shared.contracts.envelope import EventData, new_event
from shared.contracts.renewal_commands import SetAutoRenew
from shared.contracts.renewal_events import TOPIC as RENEWAL_EVENTS
from shared.contracts.renewal_events import (
    AutoRenewChanged,
    BulkCompleted,
    BulkOutcome,
    RenewalRejected,
)
from shared.eligibility import Actor, Policy, decide_auto_renew
from shared.messaging.consumer import Delivery, EventHandler, UnitOfWork
from shared.messaging.identity import count_not_authorized, request_key, sender_of
from shared.messaging.requests_seen import first_time
from shared.test_clocks import CsnClock


def set_auto_renew_handler(clock: Clock, policy: Policy, source: str) -> EventHandler:
    csn_clock = CsnClock(clock)

    async def set_auto_renew(unit: UnitOfWork, delivery: Delivery) -> None:
        command: SetAutoRenew = delivery.data
        connection = unit.connection
        if not await first_time(connection, request_key(delivery), delivery.event.type):
            return  # the same request id again: one effect, one answer
        csn = delivery.event.subject
        held = await load_for_command(connection, command.subscription_ids, csn)
        today = (await csn_clock.today_for(connection, [csn]))[csn]  # the customer's today
        decision = decide_auto_renew(
            Actor(user_id=command.actor.user_id, csn=command.actor.csn),
            [to_domain(s) for s in held.values()],
            command.subscription_ids,
            enabled=command.enabled,
            today=today,
            policy=policy,
            sender=sender_of(delivery),
        )
        now = clock.now()
        # One command, counted once, however many of its subscriptions are refused.
        count_not_authorized("renewal", decision.all_reasons)

        def announce(event: EventData) -> None:
            unit.outbox.add(RENEWAL_EVENTS, new_event(event, subject=csn, source=source, time=now))

        if decision.reasons:  # the whole request refused: nothing is switched
            announce(
                RenewalRejected(
                    request_id=command.request_id,
                    subscription_id=None,
                    reasons=list(decision.reasons),
                )
            )
            return
        switched = [o.subscription_id for o in decision.subscriptions if o.allowed]
        if switched:
            await connection.execute(
                # AUTO-1: switched on inside grace, the due-date engine looks again at once.
                "UPDATE subscriptions SET auto_renew = $2, next_check_for = NULL,"
                " updated_at = now() WHERE subscription_id = ANY($1::text[])",
                switched,
                command.enabled,
            )
            await record_history(
                connection,
                [
                    (
                        subscription_id,
                        now,
                        "auto_renew_on" if command.enabled else "auto_renew_off",
                        {"enabled": command.enabled},
                        command.actor.model_dump(),
                        command.request_id,
                        delivery.event.id,
                    )
                    for subscription_id in switched
                ],
            )
        outcomes = []
        for outcome in decision.subscriptions:
            if outcome.allowed:
                announce(
                    AutoRenewChanged(
                        request_id=command.request_id,
                        subscription_id=outcome.subscription_id,
                        enabled=command.enabled,
                    )
                )
            else:
                announce(
                    RenewalRejected(
                        request_id=command.request_id,
                        subscription_id=outcome.subscription_id,
                        reasons=list(outcome.reasons),
                    )
                )
            outcomes.append(
                BulkOutcome(
                    subscription_id=outcome.subscription_id,
                    status="succeeded" if outcome.allowed else "rejected",
                    reasons=list(outcome.reasons),
                )
            )
        if len(outcomes) > 1:
            announce(
                BulkCompleted(
                    request_id=command.request_id,
                    succeeded=len(switched),
                    rejected=len(outcomes) - len(switched),
                    outcomes=outcomes,
                )
            )

    return announced(set_auto_renew, policy, source, clock)
