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
| `quote.sent` | `quote` (to every recipient of the quote), queued a batch at a time by quotes.py | `quote:<quote number>` |
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from services.notification import store
from services.notification.settings import NotificationSettings
from services.notification.store import Contact, Email
from shared import eligibility
from shared.catalog.store import load_catalog
from shared.clock import Clock
from shared.contracts.billing_events import PaymentAwaitingManual, PaymentFailed
from shared.contracts.renewal_events import (
    AutoRenewChanged,
    RenewalTermsUpdated,
    SeatsUpdated,
    SubscriptionExpired,
    SubscriptionLapsed,
)
from shared.messaging.consumer import Delivery, EventHandler, PermanentError, UnitOfWork
from shared.state_following import followed_subscription

# The events whose email is about the one subscription they name.
AboutT = TypeVar("AboutT", SubscriptionLapsed, AutoRenewChanged, SeatsUpdated, RenewalTermsUpdated)

# What an email about one subscription says: decided from its event and its contact.
Notice = Callable[[Delivery[AboutT], Contact], Email]


def about_subscription(
    contact: Contact, kind: str, occasion: str, *, order_id: str | None = None, **context: Any
) -> Email:
    """An email of `kind` about the contact's subscription, keyed `<kind>:<occasion>` (the table
    above); one about an order names it in its context too."""
    if order_id is not None:
        context["order_id"] = order_id
    return Email(
        f"{kind}:{occasion}",
        kind,
        contact,
        {"subscription_id": contact.subscription_id, **context},
        order_id=order_id,
    )


def notice_handlers(clock: Clock, settings: NotificationSettings) -> dict[type, EventHandler]:
    links = settings

    async def save(unit: UnitOfWork, email: Email) -> None:
        await store.queue(unit.connection, [email], clock.now())

    def about_one(
        notice: Notice[AboutT],
    ) -> Callable[[UnitOfWork, Delivery[AboutT]], Awaitable[None]]:
        """The handler of an event about one subscription: its contact loaded, its email
        decided by `notice`, queued."""

        async def handle(unit: UnitOfWork, delivery: Delivery[AboutT]) -> None:
            sid = delivery.data.subscription_id
            contact = (await store.contacts(unit.connection, [sid]))[sid]
            await save(unit, notice(delivery, contact))

        return handle

    def lapsed(delivery: Delivery[SubscriptionLapsed], contact: Contact) -> Email:
        event = delivery.data
        return about_subscription(
            contact,
            "lapsed",
            f"{event.subscription_id}:{event.renewal_date}",
            renewal_date=event.renewal_date,
            grace_ends=event.grace_ends,
            renew_link=links.renew_link(event.subscription_id),
        )

    def auto_renew_changed(delivery: Delivery[AutoRenewChanged], contact: Contact) -> Email:
        event = delivery.data
        cause = event.request_id or delivery.event.id
        return about_subscription(
            contact,
            "auto_renew_changed",
            f"{event.subscription_id}:{cause}",
            enabled=event.enabled,
            renewal_date=contact.renewal_date,
        )

    def seats_added(delivery: Delivery[SeatsUpdated], contact: Contact) -> Email:
        event = delivery.data
        return about_subscription(
            contact,
            "seats_added",
            event.order_id,
            order_id=event.order_id,
            seats=event.seats,
            seats_added=event.seats_added if event.seats_added is not None else "—",
            prorated_total=event.prorated_total,
            currency=event.currency or contact.snapshot.currency,
        )

    def terms_changed(delivery: Delivery[RenewalTermsUpdated], contact: Contact) -> Email:
        event = delivery.data
        return about_subscription(
            contact,
            "renewal_terms_changed",
            event.request_id,
            term_code=event.term,
            seats=event.seats,
            effective_on=event.effective_on,
        )

    async def expired(unit: UnitOfWork, delivery: Delivery[SubscriptionExpired]) -> None:
        event = delivery.data
        sid = event.subscription_id
        contact = (await store.contacts(unit.connection, [sid]))[sid]
        # PRICE-1, LIFE-3: bought again at the list price, as eligibility prices it that day.
        subscription = followed_subscription(
            contact.snapshot, (await store.states(unit.connection, [sid])).get(sid)
        )
        prices, _ = await load_catalog(unit.connection, [subscription.product_code])
        line = eligibility.next_renewal_line(
            subscription, event.expired_on, prices, settings.policy
        )
        email = about_subscription(
            contact,
            "expired",
            f"{sid}:{event.renewal_date}",
            expired_on=event.expired_on,
            new_purchase_price=None if line is None else line.unit_price,
            currency=None if line is None else line.currency,
            buy_link=links.buy_link,
        )
        await save(unit, email)

    async def payment_failed(unit: UnitOfWork, delivery: Delivery[PaymentFailed]) -> None:
        event = delivery.data
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

    async def awaiting_manual(unit: UnitOfWork, delivery: Delivery[PaymentAwaitingManual]) -> None:
        event = delivery.data
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
        found = await store.contacts(unit.connection, subscription_ids)
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
        await save(unit, email)

    return {
        SubscriptionLapsed: about_one(lapsed),
        SubscriptionExpired: expired,
        AutoRenewChanged: about_one(auto_renew_changed),
        SeatsUpdated: about_one(seats_added),
        RenewalTermsUpdated: about_one(terms_changed),
        PaymentFailed: payment_failed,
        PaymentAwaitingManual: awaiting_manual,
    }
