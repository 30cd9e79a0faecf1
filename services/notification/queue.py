"""`renewal.events` → emails queued under their notification key (MAN-3, ROLE-3).

An order confirmation is one email per order (MAN-3), to the buyer (ROLE-3), whatever number
of subscriptions the order renewed: each `subscription.renewed` of the order adds its line while
the email is still waiting to be sent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

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
            if renewed.buyer is None:
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
                emails[key] = {
                    "notification_key": key,
                    "csn": delivery.event.subject,
                    "recipients": [renewed.buyer.email],
                    "locale": renewed.buyer.locale,
                    "context": {"order_id": renewed.order_id, "items": [item]},
                    "subscription_ids": [renewed.subscription_id],
                    "order_id": renewed.order_id,
                    "traceparent": trace_of(delivery.event).traceparent,
                }
            elif renewed.subscription_id not in email["subscription_ids"]:
                email["context"]["items"].append(item)
                email["subscription_ids"].append(renewed.subscription_id)
        await _follow_renewal_dates(unit, deliveries)
        if not emails:
            return
        now = clock.now()
        await _add_order_totals(unit, emails, now)
        await unit.connection.execute(
            """INSERT INTO emails (notification_key, kind, csn, recipients, locale, context,
                                   subscription_ids, order_id, next_attempt_at, created_at,
                                   traceparent)
               SELECT u.notification_key, 'order_confirmation', u.csn, u.recipients, u.locale,
                      u.context, u.subscription_ids, u.order_id, u.next_attempt_at, $2,
                      u.traceparent
               FROM jsonb_to_recordset($1::jsonb) AS u(
                   notification_key text, csn text, recipients text[], locale text,
                   context jsonb, subscription_ids text[], order_id text,
                   next_attempt_at timestamptz, traceparent text)
               ON CONFLICT (notification_key) DO UPDATE SET
                   context = jsonb_set(emails.context, '{items}',
                       (emails.context -> 'items') || COALESCE(
                           (SELECT jsonb_agg(line ORDER BY n)
                            FROM jsonb_array_elements(EXCLUDED.context -> 'items')
                                 WITH ORDINALITY AS l(line, n)
                            WHERE NOT (line ->> 'subscription_id') = ANY(emails.subscription_ids)),
                           '[]'::jsonb)),
                   subscription_ids = emails.subscription_ids || ARRAY(
                       SELECT sid FROM unnest(EXCLUDED.subscription_ids) WITH ORDINALITY AS s(sid, n)
                       WHERE NOT sid = ANY(emails.subscription_ids) ORDER BY n)
               WHERE emails.status = 'pending'
                 AND NOT EXCLUDED.subscription_ids <@ emails.subscription_ids""",
            # In key order: the rows are locked in that order, as every other batch locks them.
            json.dumps([emails[key] for key in sorted(emails)]),
            now,
        )

    return dispatch_some(
        RENEWAL_EVENTS_REGISTRY,
        {**(notices or {}), SubscriptionRenewed: handles_batch(queue_order_confirmations)},
    )


# A confirmation queued before billing's `order.placed` reached this service waits this long
# for the order's total (directory.save_order fills it in and releases the email at once);
# after that it goes out without the total rather than not at all.
WAIT_FOR_THE_ORDER_TOTAL = timedelta(seconds=10)


async def _add_order_totals(
    unit: UnitOfWork, emails: dict[str, dict[str, Any]], now: datetime
) -> None:
    """The order's total, from billing's `order.placed`, when it has arrived (it usually has:
    billing placed the order before it was paid and renewed); else the email waits for it."""
    rows = await unit.connection.fetch(
        "SELECT order_id, total, currency FROM orders WHERE order_id = ANY($1::text[])",
        [email["order_id"] for email in emails.values()],
    )
    totals = {row["order_id"]: row for row in rows}
    for email in emails.values():
        row = totals.get(email["order_id"])
        email["context"]["total"] = str(row["total"]) if row else None
        email["context"]["currency"] = row["currency"] if row else None
        due = now if row else now + WAIT_FOR_THE_ORDER_TOTAL
        email["next_attempt_at"] = due.isoformat()


async def _follow_renewal_dates(unit: UnitOfWork, deliveries: list[Delivery]) -> None:
    """The directory follows each renewal: the next reminders count from the new date."""
    latest = {d.data.subscription_id: d.data for d in deliveries}
    await unit.connection.execute(
        """UPDATE subscriptions AS s SET renewal_date = u.renewal_date,
               reminders_after = u.previous_renewal_date, updated_at = now()
           FROM unnest($1::text[], $2::date[], $3::date[])
               AS u(subscription_id, renewal_date, previous_renewal_date)
           WHERE s.subscription_id = u.subscription_id AND s.renewal_date < u.renewal_date""",
        list(latest),
        [r.renewal_date for r in latest.values()],
        [r.previous_renewal_date for r in latest.values()],
    )
