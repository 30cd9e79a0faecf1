"""`renewal.events` → emails queued under their notification key (MAN-3, ROLE-3).

An order confirmation is one email per order (MAN-3), to the buyer (ROLE-3), whatever number
of subscriptions the order renewed, made from the order's `subscription.renewed` events alone
(issue 17 item 3): each adds its line and carries the order's total and how many subscriptions
the order renewed. The email is due once it has all its lines — at once for a one-line order,
else when the last of its events is queued (they may come in more than one consumer batch): a
sender never sends part of an order, and no other topic is waited for.
"""

from __future__ import annotations

from collections.abc import Mapping

from services.notification import store
from services.notification.store import Confirmation, ConfirmationLine
from shared import eligibility
from shared.clock import Clock
from shared.contracts.envelope import trace_of
from shared.contracts.renewal_events import REGISTRY as RENEWAL_EVENTS_REGISTRY
from shared.contracts.renewal_events import SubscriptionRenewed
from shared.messaging.consumer import (
    BatchHandler,
    Delivery,
    EventHandler,
    UnitOfWork,
    dispatch_some,
    handles_batch,
)


def renewal_events_handler(
    clock: Clock, notices: Mapping[type, EventHandler] | None = None
) -> BatchHandler:
    """Order confirmations (below), and the `notices` for the other renewal events."""

    async def queue_order_confirmations(
        unit: UnitOfWork, deliveries: list[Delivery[SubscriptionRenewed]]
    ) -> None:
        """One upsert for the whole batch (`store.queue_confirmations`).

        ON CONFLICT DO UPDATE can't touch a row twice in one statement, so the events are first
        merged per order, in order, exactly as one upsert per event would have: the first event
        of an order gives its recipient, locale and CSN; each later one adds its line unless its
        subscription is already on the email. The upsert then adds, to an email still pending,
        the lines of the subscriptions it doesn't have yet.
        """
        confirmations: dict[str, Confirmation] = {}
        for delivery in deliveries:
            renewed = delivery.data
            recipient = eligibility.email_recipient(renewed)  # ROLE-3
            if recipient is None:
                continue  # nobody to write to: the event came without its buyer
            confirmation = confirmations.get(renewed.order_id)
            if confirmation is None:
                confirmation = confirmations[renewed.order_id] = Confirmation(
                    order_id=renewed.order_id,
                    csn=delivery.event.subject,
                    recipient=recipient,
                    total=renewed.order_total,
                    currency=renewed.currency,
                    # An event from before `renewed_in_order` existed: its line alone is due.
                    renewed_in_order=renewed.renewed_in_order or 1,
                    traceparent=trace_of(delivery.event).traceparent,
                )
            elif renewed.subscription_id in confirmation.subscription_ids:
                continue
            confirmation.lines.append(
                ConfirmationLine(
                    subscription_id=renewed.subscription_id,
                    product_name=renewed.product_name or renewed.subscription_id,
                    term=renewed.term,
                    seats=renewed.seats,
                    renewal_date=renewed.renewal_date,
                )
            )
        await store.queue_confirmations(unit.connection, confirmations.values(), clock.now())

    return dispatch_some(
        RENEWAL_EVENTS_REGISTRY,
        {**(notices or {}), SubscriptionRenewed: handles_batch(queue_order_confirmations)},
    )
