"""Every customer email besides the order confirmation, queued from the event that calls for it,
to the subscription's buyer (ROLE-3), in the buyer's language, under a notification key that
makes it one email however often the event is seen:

| event | email kind | notification key |
| --- | --- | --- |
| `subscription.lapsed` | `lapsed` | `lapsed:<subscription>:<renewal date>` |
| `subscription.expired` | `expired` | `expired:<subscription>:<renewal date>` |
| `auto_renew.changed` | `auto_renew_changed` | `auto_renew_changed:<subscription>:<request or event>` |
| `seats.updated` | `seats_added` | `seats_added:<order>` |
| `renewal_terms.updated` | `renewal_terms_changed` | `renewal_terms_changed:<request>` |
| `payment.failed` | `payment_failed` | `payment_failed:<order>` |
| `payment.awaiting_manual` | `awaiting_manual_payment` | `awaiting_manual_payment:<order>` |
| `quote.sent` | `quote` (to every recipient of the quote) | `quote:<quote number>` |
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from services.notification.directory import Contact, contacts, states
from services.notification.settings import NotificationSettings
from shared import eligibility
from shared.catalog.store import load_catalog
from shared.clock import Clock
from shared.contracts.billing_events import PaymentAwaitingManual, PaymentFailed
from shared.contracts.quote_events import QuoteSent
from shared.contracts.renewal_events import (
    AutoRenewChanged,
    RenewalTermsUpdated,
    SeatsUpdated,
    SubscriptionExpired,
    SubscriptionLapsed,
)
from shared.db.types import DbConnection
from shared.messaging import tracing
from shared.messaging.consumer import Delivery, EventHandler, PermanentError, UnitOfWork
from shared.state_following import followed_subscription


@dataclass
class Email:
    key: str
    kind: str
    contact: Contact
    context: dict[str, Any]
    subscription_ids: list[str] = field(default_factory=list)
    order_id: str | None = None
    recipients: list[str] = field(
        default_factory=list
    )  # the contact's recipient when empty (ROLE-3)
    quote_number: str | None = None


async def queue(connection: DbConnection, emails: list[Email], now: Any) -> None:
    """Queue emails; one whose key was queued before is not queued again."""
    await connection.executemany(
        """INSERT INTO emails (notification_key, kind, csn, recipients, locale, context,
                               subscription_ids, order_id, quote_number, next_attempt_at,
                               created_at, traceparent)
           VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $10, $9, $9, $11)
           ON CONFLICT (notification_key) DO NOTHING""",
        [
            (
                e.key,
                e.kind,
                e.contact.csn,
                e.recipients or [e.contact.recipient.email],
                e.contact.recipient.locale,
                json.dumps(
                    {"product_name": e.contact.snapshot.product_name, **e.context}, default=str
                ),
                e.subscription_ids or [e.contact.subscription_id],
                e.order_id,
                now,
                e.quote_number,
                # The event being handled; a reminder (a decision of its own) starts a trace.
                (tracing.current() or tracing.start()).traceparent,
            )
            for e in emails
        ],
    )


def notice_handlers(clock: Clock, settings: NotificationSettings) -> dict[type, EventHandler]:
    links = settings

    async def one(unit: UnitOfWork, about: str, key: str, kind: str, **context: Any) -> None:
        contact = (await contacts(unit.connection, [about]))[about]
        await queue(unit.connection, [Email(key, kind, contact, context)], clock.now())

    async def lapsed(unit: UnitOfWork, delivery: Delivery) -> None:
        event: SubscriptionLapsed = delivery.data
        await one(
            unit,
            event.subscription_id,
            f"lapsed:{event.subscription_id}:{event.renewal_date}",
            "lapsed",
            subscription_id=event.subscription_id,
            renewal_date=event.renewal_date,
            grace_ends=event.grace_ends,
            renew_link=links.renew_link(event.subscription_id),
        )

    async def expired(unit: UnitOfWork, delivery: Delivery[SubscriptionExpired]) -> None:
        event = delivery.data
        sid = event.subscription_id
        contact = (await contacts(unit.connection, [sid]))[sid]
        # PRICE-1, LIFE-3: bought again at the list price, as eligibility prices it that day.
        subscription = followed_subscription(
            contact.snapshot, (await states(unit.connection, [sid])).get(sid)
        )
        prices, _ = await load_catalog(unit.connection, [subscription.product_code])
        line = eligibility.next_renewal_line(
            subscription, event.expired_on, prices, settings.policy
        )
        email = Email(
            f"expired:{sid}:{event.renewal_date}",
            "expired",
            contact,
            {
                "subscription_id": sid,
                "expired_on": event.expired_on,
                "new_purchase_price": None if line is None else line.unit_price,
                "currency": None if line is None else line.currency,
                "buy_link": links.buy_link,
            },
        )
        await queue(unit.connection, [email], clock.now())

    async def auto_renew_changed(unit: UnitOfWork, delivery: Delivery) -> None:
        event: AutoRenewChanged = delivery.data
        contact = (await contacts(unit.connection, [event.subscription_id]))[event.subscription_id]
        cause = event.request_id or delivery.event.id
        email = Email(
            f"auto_renew_changed:{event.subscription_id}:{cause}",
            "auto_renew_changed",
            contact,
            {
                "subscription_id": event.subscription_id,
                "enabled": event.enabled,
                "renewal_date": contact.renewal_date,
            },
        )
        await queue(unit.connection, [email], clock.now())

    async def seats_added(unit: UnitOfWork, delivery: Delivery) -> None:
        event: SeatsUpdated = delivery.data
        contact = (await contacts(unit.connection, [event.subscription_id]))[event.subscription_id]
        email = Email(
            f"seats_added:{event.order_id}",
            "seats_added",
            contact,
            {
                "subscription_id": event.subscription_id,
                "seats": event.seats,
                "seats_added": event.seats_added if event.seats_added is not None else "—",
                "prorated_total": event.prorated_total,
                "currency": event.currency or contact.snapshot.currency,
                "order_id": event.order_id,
            },
            order_id=event.order_id,
        )
        await queue(unit.connection, [email], clock.now())

    async def terms_changed(unit: UnitOfWork, delivery: Delivery) -> None:
        event: RenewalTermsUpdated = delivery.data
        await one(
            unit,
            event.subscription_id,
            f"renewal_terms_changed:{event.request_id}",
            "renewal_terms_changed",
            subscription_id=event.subscription_id,
            term_code=event.term,
            seats=event.seats,
            effective_on=event.effective_on,
        )

    async def payment_failed(unit: UnitOfWork, delivery: Delivery) -> None:
        event: PaymentFailed = delivery.data
        if event.refusals:
            return  # an order billing refused to place: never placed, nothing charged, no email
        await _about_order(
            unit,
            event,
            f"payment_failed:{event.order_id}",
            "payment_failed",
            reason=event.reason,
            next_retry_on=event.next_retry_on,
            fix_link=links.billing_link,
        )

    async def awaiting_manual(unit: UnitOfWork, delivery: Delivery) -> None:
        event: PaymentAwaitingManual = delivery.data
        await _about_order(
            unit,
            event,
            f"awaiting_manual_payment:{event.order_id}",
            "awaiting_manual_payment",
            payment_reference=event.payment_reference,
            pay_by=event.pay_by,
        )

    async def _about_order(
        unit: UnitOfWork,
        event: PaymentFailed | PaymentAwaitingManual,
        key: str,
        kind: str,
        **context: Any,
    ) -> None:
        """An email about an order's payment, from the payment event alone (issue 17 item 3):
        billing names the order's subscriptions and amount on it."""
        if not event.subscription_ids:
            raise PermanentError(
                f"{event.event_type} for {event.order_id} names no subscriptions: published"
                " before billing named them (issue 17 item 3); its email cannot be addressed"
            )
        subscription_ids = list(event.subscription_ids)
        found = await contacts(unit.connection, subscription_ids)
        first = found[subscription_ids[0]]
        names = ", ".join(
            dict.fromkeys(found[sid].snapshot.product_name for sid in subscription_ids)
        )
        email = Email(
            key,
            kind,
            first,
            {
                "order_id": event.order_id,
                "amount": event.amount,
                "currency": event.currency,
                "payment_method": first.snapshot.payment_method.type,
                **context,
                "product_name": names,
            },
            subscription_ids=subscription_ids,
            order_id=event.order_id,
        )
        await queue(unit.connection, [email], clock.now())

    async def quote_sent(unit: UnitOfWork, delivery: Delivery) -> None:
        """QUO-8: number, expiry date, total with discounts, the lines, how to accept and pay;
        to the buyer and every recipient of the quote (QUO-2)."""
        event: QuoteSent = delivery.data
        await unit.connection.execute(  # NOTE-1: no reminder while the quote covers the renewal
            "INSERT INTO open_quotes (quote_number, subscription_ids) VALUES ($1, $2)"
            " ON CONFLICT (quote_number) DO NOTHING",
            event.quote_number,
            list(event.subscription_ids),
        )
        found = await contacts(unit.connection, event.subscription_ids)
        names = {sid: contact.snapshot.product_name for sid, contact in found.items()}
        email = Email(
            f"quote:{event.quote_number}",
            "quote",
            found[event.subscription_ids[0]],
            {
                "quote_number": event.quote_number,
                "expires_on": event.expires_on,
                "total": event.total,
                "currency": event.currency,
                "lines": [
                    {**line.model_dump(mode="json"), "product_name": names[line.subscription_id]}
                    for line in event.lines
                ],
                "promotions": [p.model_dump(mode="json") for p in event.promotions],
                "accept_link": f"{links.account_url}/quotes/{event.quote_number}",
                "product_name": ", ".join(dict.fromkeys(names.values())),
            },
            subscription_ids=list(event.subscription_ids),
            recipients=list(event.recipients),
            quote_number=event.quote_number,
        )
        await queue(unit.connection, [email], clock.now())

    return {
        QuoteSent: quote_sent,
        SubscriptionLapsed: lapsed,
        SubscriptionExpired: expired,
        AutoRenewChanged: auto_renew_changed,
        SeatsUpdated: seats_added,
        RenewalTermsUpdated: terms_changed,
        PaymentFailed: payment_failed,
        PaymentAwaitingManual: awaiting_manual,
    }
