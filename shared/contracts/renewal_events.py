"""`renewal.events`: renewal's answers to commands and the outcomes of its time-driven rules."""

from __future__ import annotations

from datetime import date
from typing import ClassVar, Literal

from pydantic import Field

from shared.contracts.common import (
    MAX_IDS,
    MAX_REASONS,
    Amount,
    Csn,
    CurrencyCode,
    Note,
    OrderId,
    Person,
    PriceLine,
    ReasonCode,
    RequestId,
    SeatCount,
    SubscriptionId,
    Term,
    Text,
)
from shared.contracts.envelope import Contract, EventData, EventRegistry
from shared.contracts.topics import RENEWAL_EVENTS

TOPIC = RENEWAL_EVENTS

BulkStatus = Literal["succeeded", "rejected"]


class AutoRenewChanged(EventData):
    event_type: ClassVar[str] = "auto_renew.changed"
    request_id: RequestId | None = Field(description="Null when the product switched it.")
    subscription_id: SubscriptionId
    enabled: bool
    reason: Note | None = Field(
        default=None, description="Why the product switched it, e.g. the rule id AUTO-5."
    )


class RenewalRejected(EventData):
    event_type: ClassVar[str] = "renewal.rejected"
    request_id: RequestId
    subscription_id: SubscriptionId | None = Field(description="Null for the whole request.")
    reasons: list[ReasonCode] = Field(min_length=1, max_length=MAX_REASONS)


class BulkAccepted(EventData):
    """A bulk request recorded, answered at once; `bulk.completed` follows."""

    event_type: ClassVar[str] = "bulk.accepted"
    request_id: RequestId
    count: int = Field(ge=0)


class BulkOutcome(Contract):
    subscription_id: SubscriptionId
    status: BulkStatus
    reasons: list[ReasonCode] = Field(default_factory=list, max_length=MAX_REASONS)
    order_id: OrderId | None = None


class BulkCompleted(EventData):
    event_type: ClassVar[str] = "bulk.completed"
    request_id: RequestId
    succeeded: int = Field(ge=0)
    rejected: int = Field(ge=0)
    outcomes: list[BulkOutcome] = Field(max_length=MAX_IDS)


class SubscriptionRenewed(EventData):
    event_type: ClassVar[str] = "subscription.renewed"
    subscription_id: SubscriptionId
    order_id: OrderId
    previous_renewal_date: date
    renewal_date: date
    term: Term
    seats: SeatCount
    # Optional extras: null for an automatic renewal; `buyer` is who gets the email (ROLE-3).
    request_id: RequestId | None = None
    csn: Csn | None = None
    product_name: Text | None = None
    buyer: Person | None = None
    # The order as its confirmation shows it (MAN-3, issue 17 item 3): one email per order, made
    # from these events alone. Optional: events announced before they existed still parse.
    order_total: Amount | None = Field(
        default=None, description="What the order was charged, tax excluded (PRICE-3)."
    )
    currency: CurrencyCode | None = Field(default=None, description="The order's currency.")
    renewed_in_order: int | None = Field(
        default=None,
        ge=1,
        le=MAX_IDS,
        description="How many subscriptions this order renewed, each announced by its own"
        " `subscription.renewed`: the confirmation lists them all.",
    )


class SubscriptionLapsed(EventData):
    """On the renewal date, when it was not renewed (LIFE-2)."""

    event_type: ClassVar[str] = "subscription.lapsed"
    subscription_id: SubscriptionId
    renewal_date: date
    grace_ends: date


class SubscriptionExpired(EventData):
    """The day after grace ends (LIFE-3)."""

    event_type: ClassVar[str] = "subscription.expired"
    subscription_id: SubscriptionId
    renewal_date: date
    expired_on: date


class RenewalTermsUpdated(EventData):
    event_type: ClassVar[str] = "renewal_terms.updated"
    request_id: RequestId
    subscription_id: SubscriptionId
    term: Term
    seats: SeatCount
    effective_on: date


class SeatsUpdated(EventData):
    event_type: ClassVar[str] = "seats.updated"
    request_id: RequestId
    subscription_id: SubscriptionId
    seats: SeatCount = Field(description="The subscription's seat count after the addition.")
    order_id: OrderId
    prorated_total: Amount
    currency: CurrencyCode | None = None
    seats_added: SeatCount | None = Field(
        default=None, description="How many seats this order added."
    )


class RenewalDatesUpdated(EventData):
    event_type: ClassVar[str] = "renewal_dates.updated"
    request_id: RequestId
    subscription_ids: list[SubscriptionId] = Field(max_length=MAX_IDS)
    target_date: date
    lines: list[PriceLine] = Field(max_length=MAX_IDS)
    total: Amount
    currency: CurrencyCode | None = None


REGISTRY = EventRegistry(
    TOPIC.name,
    AutoRenewChanged,
    RenewalRejected,
    BulkAccepted,
    BulkCompleted,
    SubscriptionRenewed,
    SubscriptionLapsed,
    SubscriptionExpired,
    RenewalTermsUpdated,
    SeatsUpdated,
    RenewalDatesUpdated,
)
