"""`renewal.events` → emails queued under their notification key (MAN-3, ROLE-3).

An order confirmation is one email per order (MAN-3), to the buyer (ROLE-3), whatever number
of subscriptions the order renewed: each `subscription.renewed` of the order adds its line while
the email is still waiting to be sent.
"""

from __future__ import annotations

import json

from shared.clock import Clock
from shared.contracts.renewal_events import REGISTRY as RENEWAL_EVENTS_REGISTRY
from shared.contracts.renewal_events import SubscriptionRenewed
from shared.messaging.consumer import (
    BatchHandler,
    Delivery,
    EventHandler,
    UnitOfWork,
    dispatch_by_type,
)


def renewal_events_handler(clock: Clock) -> BatchHandler:
    async def queue_order_confirmation(unit: UnitOfWork, delivery: Delivery) -> None:
        renewed: SubscriptionRenewed = delivery.data
        if renewed.buyer is None:
            return  # nobody to write to: the event came without its buyer
        item = {
            "subscription_id": renewed.subscription_id,
            "product_name": renewed.product_name or renewed.subscription_id,
            "term": renewed.term,
            "seats": renewed.seats,
            "renewal_date": renewed.renewal_date.isoformat(),
        }
        context = {"order_id": renewed.order_id, "items": [item]}
        await unit.connection.execute(
            """INSERT INTO emails (notification_key, kind, csn, recipients, locale, context,
                                   subscription_ids, order_id, next_attempt_at, created_at)
               VALUES ($1, 'order_confirmation', $8, $2, $3, $4::jsonb, $5, $6, $7, $7)
               ON CONFLICT (notification_key) DO UPDATE SET
                   context = jsonb_set(emails.context, '{items}',
                                       (emails.context -> 'items') || ($4::jsonb -> 'items')),
                   subscription_ids = emails.subscription_ids || EXCLUDED.subscription_ids
               WHERE emails.status = 'pending'
                 AND NOT EXCLUDED.subscription_ids <@ emails.subscription_ids""",
            f"order_confirmation:{renewed.order_id}",
            [renewed.buyer.email],
            renewed.buyer.locale,
            json.dumps(context),
            [renewed.subscription_id],
            renewed.order_id,
            clock.now(),
            delivery.event.subject,
        )

    async def nothing_to_send(unit: UnitOfWork, delivery: Delivery) -> None:
        """Other renewal events have no email yet."""

    handlers: dict[type, EventHandler] = dict.fromkeys(
        RENEWAL_EVENTS_REGISTRY.models.values(), nothing_to_send
    )
    handlers[SubscriptionRenewed] = queue_order_confirmation
    return dispatch_by_type(handlers)
