"""The answer to a renewal command refused for who sent it (issue 16): `renewal.rejected` for the
whole request with NOT_AUTHORIZED and nothing more."""

from __future__ import annotations

from shared.clock import Clock
from shared.contracts.envelope import new_event
from shared.contracts.renewal_events import TOPIC as RENEWAL_EVENTS
from shared.contracts.renewal_events import RenewalRejected
from shared.eligibility import Reason
from shared.messaging.consumer import Delivery, UnitOfWork
from shared.messaging.identity import Refusal


def refuse_renewal_command(clock: Clock, source: str) -> Refusal:
    def refuse(unit: UnitOfWork, delivery: Delivery) -> None:
        answer = RenewalRejected(
            request_id=delivery.data.request_id,
            subscription_id=None,
            reasons=[Reason.NOT_AUTHORIZED],
        )
        unit.outbox.add(
            RENEWAL_EVENTS,
            new_event(answer, subject=delivery.event.subject, source=source, time=clock.now()),
        )

    return refuse
