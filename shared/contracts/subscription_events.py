"""`subscription.events`: the snapshots the subscription system sends of what it owns."""

from __future__ import annotations

from datetime import date
from typing import ClassVar

from pydantic import Field

from shared.contracts.common import (
    CountryCode,
    Csn,
    CurrencyCode,
    PaymentMethodType,
    Person,
    Plan,
    ProductCode,
    PurchaseMethod,
    Seats,
    SubscriptionId,
    Term,
    Text,
    TimeZoneName,
)
from shared.contracts.envelope import Contract, EventData, EventRegistry
from shared.contracts.topics import SUBSCRIPTION_EVENTS
from shared.eligibility.model import Status

TOPIC = SUBSCRIPTION_EVENTS

SubscriptionStatus = Status  # the rules' vocabulary (shared/eligibility/model.py)


class PaymentMethod(Contract):
    type: PaymentMethodType
    recurring: bool
    valid: bool


class SubscriptionFlags(Contract):
    maintenance_plan: bool
    third_party_platform: bool
    legacy_system: bool
    retired_product: bool


class SubscriptionUpserted(EventData):
    """A snapshot; one with an older `revision` than the one held is ignored."""

    event_type: ClassVar[str] = "subscription.upserted"
    subscription_id: SubscriptionId
    revision: int = Field(ge=0, le=2**63 - 1)  # a bigint where it is stored
    csn: Csn
    product_code: ProductCode
    product_name: Text
    plan: Plan
    term: Term
    seats: Seats
    currency: CurrencyCode
    country: CountryCode
    purchase_method: PurchaseMethod
    partner_csn: Csn | None = Field(description="The agent of record, or null.")
    payment_method: PaymentMethod
    auto_renew: bool
    status: SubscriptionStatus
    start_date: date
    renewal_date: date
    flags: SubscriptionFlags
    managed_org: bool
    buyer: Person
    primary_admin: Person
    timezone: TimeZoneName | None = Field(
        default=None,
        description="The CSN's IANA time zone: its today, and every date rule for it, is the"
        " date there. Absent or null: UTC.",
    )


REGISTRY = EventRegistry(TOPIC.name, SubscriptionUpserted)
