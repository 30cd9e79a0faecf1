"""`renewal.events` → emails queued under their notification key (MAN-3, ROLE-3).

An order confirmation is one email per order (MAN-3), to the buyer (ROLE-3), whatever number
of subscriptions the order renewed, made from the order's `subscription.renewed` events alone
(issue 17 item 3): each adds its line and carries the order's total and how many subscriptions
the order renewed. The email is due once it has all its lines — at once for a one-line order,
else when the last of its events is queued (they may come in more than one consumer batch): a
sender never sends part of an order, and no other topic is waited for.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

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

    async def queue_order_confirmations(unit: UnitOfWork, deliveries: list[Delivery]) -> None:
        """One upsert for the whole batch.

        ON CONFLICT DO UPDATE can't touch a row twice in one statement, so the events are first
        merged per notification key, in order, exactly as one upsert per event would have: the
        first event of a key gives its recipients, locale and CSN; each later one adds its line
        unless its subscription is already on the email. The upsert then adds, to an email
        still pending, the lines of the subscriptions it doesn't have yet.
        """
        emails: dict[str, dict[str, Any]] = {}
        for delivery in deliveries:
            renewed: SubscriptionRenewed = delivery.data
            recipient = eligibility.email_recipient(renewed)  # ROLE-3
            if recipient is None:
                continue  # nobody to write to: the event came without its buyer
            key = f"order_confirmation:{renewed.order_id}"
            item = {
                "subscription_id": renewed.subscription_id,
                "product_name": renewed.product_name or renewed.subscription_id,
                "term": renewed.term,
                "seats": renewed.seats,
                "renewal_date": renewed.renewal_date.isoformat(),
            }
            email = emails.get(key)
            if email is None:
                total = renewed.order_total
                emails[key] = {
                    "notification_key": key,
                    "csn": delivery.event.subject,
                    "recipients": [recipient.email],
                    "locale": recipient.locale,
                    "context": {
                        "order_id": renewed.order_id,
                        "items": [item],
                        "total": None if total is None else format(total, "f"),
                        "currency": renewed.currency,
                    },
                    "subscription_ids": [renewed.subscription_id],
                    "order_id": renewed.order_id,
                    # An event from before `renewed_in_order` existed: its line alone is due.
                    "renewed_in_order": renewed.renewed_in_order or 1,
                    "traceparent": trace_of(delivery.event).traceparent,
                }
            elif renewed.subscription_id not in email["subscription_ids"]:
                email["context"]["items"].append(item)
                email["subscription_ids"].append(renewed.subscription_id)
        if emails:
            # In key order: the rows are locked in that order, as every other batch locks them.
            await unit.connection.execute(
                QUEUE_CONFIRMATIONS,
                json.dumps([emails[key] for key in sorted(emails)]),
                clock.now(),
            )

    return dispatch_some(
        RENEWAL_EVENTS_REGISTRY,
        {**(notices or {}), SubscriptionRenewed: handles_batch(queue_order_confirmations)},
    )


# One upsert for a batch of confirmations ($1: one JSON object per notification key, $2: now).
# A new email is due now when it has a line for each subscription its order renewed
# (`renewed_in_order`, kept in its context for the upserts of later batches), else at
# 'infinity' (never claimed) until the upsert that brings its last line makes it due. An email
# still pending gets the lines it does not have yet; one that has them all (due, leased or sent)
# is not written again.
QUEUE_CONFIRMATIONS = """
INSERT INTO emails AS e (notification_key, kind, csn, recipients, locale, context,
                         subscription_ids, order_id, next_attempt_at, created_at, traceparent)
SELECT u.notification_key, 'order_confirmation', u.csn, u.recipients, u.locale,
       u.context || jsonb_build_object('renewed_in_order', u.renewed_in_order),
       u.subscription_ids, u.order_id,
       CASE WHEN cardinality(u.subscription_ids) >= u.renewed_in_order THEN $2::timestamptz
            ELSE 'infinity'::timestamptz END,
       $2, u.traceparent
FROM jsonb_to_recordset($1::jsonb) AS u(
    notification_key text, csn text, recipients text[], locale text, context jsonb,
    subscription_ids text[], order_id text, renewed_in_order int, traceparent text)
ON CONFLICT (notification_key) DO UPDATE SET
    context = jsonb_set(e.context, '{items}', (e.context -> 'items') || COALESCE(
        (SELECT jsonb_agg(line ORDER BY n)
         FROM jsonb_array_elements(EXCLUDED.context -> 'items') WITH ORDINALITY AS l(line, n)
         WHERE NOT (line ->> 'subscription_id') = ANY(e.subscription_ids)),
        '[]'::jsonb)),
    subscription_ids = e.subscription_ids || ARRAY(
        SELECT sid FROM unnest(EXCLUDED.subscription_ids) WITH ORDINALITY AS s(sid, n)
        WHERE NOT sid = ANY(e.subscription_ids) ORDER BY n),
    next_attempt_at = CASE
        WHEN cardinality(e.subscription_ids || ARRAY(
                 SELECT sid FROM unnest(EXCLUDED.subscription_ids) AS s(sid)
                 WHERE NOT sid = ANY(e.subscription_ids)))
             >= COALESCE((e.context ->> 'renewed_in_order')::int, 1)
        THEN LEAST(e.next_attempt_at, $2) ELSE e.next_attempt_at END
WHERE e.status = 'pending' AND NOT EXCLUDED.subscription_ids <@ e.subscription_ids"""
