"""Who sent a command, for the services that answer commands (issue 16 items 2 and 3).

The consumer proves the signer of each command (shared/messaging/signing.py); here that signer
becomes the eligibility package's `Sender` (its channel, and a partner's CSN: principals.py), the
command's claims are checked against it before anything is read or locked, and the idempotency
key of a command is scoped to its sender and CSN.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from shared.eligibility.identity import Sender, command_reasons
from shared.eligibility.model import Actor
from shared.eligibility.reasons import Reason
from shared.messaging.consumer import BatchHandler, Delivery, UnitOfWork
from shared.messaging.principals import BY_NAME
from shared.plumbing.committed_counts import count_on_commit
from shared.plumbing.metrics import COMMANDS_REFUSED_BY_IDENTITY

log = logging.getLogger(__name__)

# Adds the service's NOT_AUTHORIZED answer to a command to the unit's outbox.
Refusal = Callable[[UnitOfWork, Delivery], None]


def sender_of(delivery: Delivery) -> Sender | None:
    """The proven sender; None when no consumer verified the delivery (a handler called
    directly by a test): the eligibility rules then believe the body."""
    return sender_named(delivery.signer)


def sender_named(signer: str | None) -> Sender | None:
    """The `Sender` a signing principal is (None for anyone else)."""
    principal = BY_NAME.get(signer or "")
    if principal is None or principal.channel is None:
        return None
    return Sender(channel=principal.channel, partner_csn=principal.partner_csn)  # type: ignore[arg-type]


def request_key(delivery: Delivery) -> str:
    """A command's idempotency key (CONTRACT.md: request ids are scoped to the CSN that sent
    them): its request id within its signer's and its actor's CSN's space. Another tenant, or
    another upstream system, reusing a request id is answered, never taken for a duplicate."""
    command = delivery.data
    return f"{delivery.signer or '-'}|{command.actor.csn}|{command.request_id}"


def why_refused(delivery: Delivery) -> str | None:
    """Why this command's sender may not send it at all, or None: unproven (the signature),
    a body channel the signer contradicts, an actor of another CSN than the signer's."""
    if delivery.unproven is not None:
        return delivery.unproven.value
    sender = sender_of(delivery)
    if sender is None:
        return "unsigned"  # verified, yet by no principal that signs commands: fail closed
    data = delivery.data
    channel = getattr(data, "channel", None)
    if channel is not None and channel != sender.channel:
        return "channel_mismatch"
    actor = Actor(user_id=data.actor.user_id, csn=data.actor.csn)
    if command_reasons(sender, actor, csn=delivery.event.subject, channel=channel):
        return "wrong_csn"
    return None


def identified(service: str, handler: BatchHandler, refuse: Refusal) -> BatchHandler:
    """The command handler of a signed topic: a command whose sender is not proven, or whose
    claims its sender contradicts, is answered NOT_AUTHORIZED by `refuse` and goes no further —
    nothing of anyone's is read or locked for it, and its request id is not recorded (the right
    sender may still use it). The others go to `handler`."""

    async def handle(unit: UnitOfWork, deliveries: list[Delivery]) -> None:
        admitted: list[Delivery] = []
        for delivery in deliveries:
            why = why_refused(delivery)
            if why is None:
                admitted.append(delivery)
                continue
            count_on_commit(COMMANDS_REFUSED_BY_IDENTITY.labels(service, why))
            log.warning(
                "command refused for who sent it",
                extra={
                    "event_id": delivery.event.id,
                    "csn": delivery.event.subject,
                    "signer": delivery.signer,
                    "why": why,
                },
            )
            refuse(unit, delivery)
        if admitted:
            await handler(unit, admitted)

    return handle


def count_not_authorized(service: str, reasons: Sequence[Any]) -> None:
    """A command refused NOT_AUTHORIZED by the rules (another tenant's subscription or quote, a
    partner that is not its agent of record): counted with the sender refusals. Once per
    command, with every reason of its decision (`Decision.all_reasons`): the counter counts
    commands, not the subscriptions or answers a refusal names."""
    if Reason.NOT_AUTHORIZED in reasons:
        count_on_commit(COMMANDS_REFUSED_BY_IDENTITY.labels(service, "not_authorized"))
