"""`notification.events`: each email the product sent, or failed to send."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from shared.contracts.common import Email, Locale, OrderId, QuoteNumber, SubscriptionId
from shared.contracts.envelope import EventData, EventRegistry
from shared.contracts.topics import NOTIFICATION_EVENTS

TOPIC = NOTIFICATION_EVENTS


class EmailEvent(EventData):
    notification_id: str = Field(min_length=1)
    kind: str = Field(min_length=1, examples=["order_confirmation", "quote", "renewal_reminder"])
    to: list[Email]
    locale: Locale
    subject: str
    subscription_ids: list[SubscriptionId]
    order_id: OrderId | None = None
    quote_number: QuoteNumber | None = None


class EmailSent(EmailEvent):
    event_type: ClassVar[str] = "email.sent"


class EmailFailed(EmailEvent):
    event_type: ClassVar[str] = "email.failed"
    reason: str = Field(min_length=1)


REGISTRY = EventRegistry(TOPIC.name, EmailSent, EmailFailed)
