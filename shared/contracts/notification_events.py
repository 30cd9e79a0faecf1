"""`notification.events`: each email the product sent, or failed to send."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from shared.contracts.common import (
    MAX_IDS,
    MAX_SHORT_ID_LENGTH,
    Email,
    Locale,
    Note,
    NotificationId,
    OrderId,
    QuoteNumber,
    SubscriptionId,
)
from shared.contracts.envelope import EventData, EventRegistry
from shared.contracts.topics import NOTIFICATION_EVENTS

TOPIC = NOTIFICATION_EVENTS


class EmailEvent(EventData):
    notification_id: NotificationId
    kind: str = Field(
        min_length=1,
        max_length=MAX_SHORT_ID_LENGTH,
        examples=["order_confirmation", "quote", "renewal_reminder"],
    )
    to: list[Email] = Field(max_length=MAX_IDS)
    locale: Locale
    subject: Note
    subscription_ids: list[SubscriptionId] = Field(max_length=MAX_IDS)
    order_id: OrderId | None = None
    quote_number: QuoteNumber | None = None


class EmailSent(EmailEvent):
    event_type: ClassVar[str] = "email.sent"


class EmailFailed(EmailEvent):
    event_type: ClassVar[str] = "email.failed"
    reason: Note = Field(min_length=1)


REGISTRY = EventRegistry(TOPIC.name, EmailSent, EmailFailed)
