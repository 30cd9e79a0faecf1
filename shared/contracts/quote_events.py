"""`quote.events`: quotes sent, refused, paid, expired and cancelled."""

from __future__ import annotations

from datetime import date
from typing import ClassVar

from pydantic import Field

from shared.contracts.common import (
    MAX_IDS,
    MAX_REASONS,
    Amount,
    CurrencyCode,
    Email,
    OrderId,
    Percent,
    PriceLine,
    PromotionCode,
    QuoteNumber,
    ReasonCode,
    RequestId,
    SubscriptionId,
)
from shared.contracts.envelope import Contract, EventData, EventRegistry
from shared.contracts.quote_commands import QuoteKind
from shared.contracts.topics import QUOTE_EVENTS

TOPIC = QUOTE_EVENTS


class AppliedPromotion(Contract):
    """A promotion the quote applied automatically (QUO-6)."""

    promotion_code: PromotionCode
    percent_off: Percent


class QuoteSent(EventData):
    """The quote email's content (QUO-8): number, expiry date, total with discounts."""

    event_type: ClassVar[str] = "quote.sent"
    request_id: RequestId | None = Field(description="Null for an automatic quote (QUO-7).")
    quote_number: QuoteNumber
    kind: QuoteKind = Field(
        description="What the quote buys once paid (QUO-3): a renewal adds a term, an alignment"
        " moves the renewal dates to `target_date`, a new purchase starts a new subscription."
    )
    target_date: date | None = Field(
        default=None, description="For an alignment: the date the renewal dates move to."
    )
    subscription_ids: list[SubscriptionId] = Field(max_length=MAX_IDS)
    expires_on: date
    currency: CurrencyCode
    total: Amount
    lines: list[PriceLine] = Field(max_length=MAX_IDS)
    recipients: list[Email] = Field(max_length=MAX_IDS)
    promotions: list[AppliedPromotion] = Field(max_length=MAX_IDS)


class QuoteRejected(EventData):
    event_type: ClassVar[str] = "quote.rejected"
    request_id: RequestId
    reasons: list[ReasonCode] = Field(min_length=1, max_length=MAX_REASONS)
    # Optional extras naming what the refused command was about.
    quote_number: QuoteNumber | None = None
    subscription_ids: list[SubscriptionId] = Field(default_factory=list, max_length=MAX_IDS)


class QuotePaid(EventData):
    event_type: ClassVar[str] = "quote.paid"
    quote_number: QuoteNumber
    order_id: OrderId


class QuoteExpired(EventData):
    event_type: ClassVar[str] = "quote.expired"
    quote_number: QuoteNumber


class QuoteCancelled(EventData):
    event_type: ClassVar[str] = "quote.cancelled"
    request_id: RequestId
    quote_number: QuoteNumber


REGISTRY = EventRegistry(
    TOPIC.name, QuoteSent, QuoteRejected, QuotePaid, QuoteExpired, QuoteCancelled
)
