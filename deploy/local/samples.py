"""Sample upstream events: what the subscription system, catalog and portal would send.

Used by the demo (`make run`), the tests and the benchmarks, so that all three speak the same
realistic data. Every builder takes the ids it needs, so callers can keep them unique.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from shared.contracts.catalog_events import PricePublished
from shared.contracts.common import Actor, Person
from shared.contracts.envelope import CloudEvent, EventData, new_event
from shared.contracts.renewal_commands import RequestRenewal
from shared.contracts.state_events import SubscriptionState
from shared.contracts.subscription_events import (
    PaymentMethod,
    SubscriptionFlags,
    SubscriptionUpserted,
)


def event(data: EventData, subject: str, source: str = "/samples") -> CloudEvent[Any]:
    return new_event(data, subject=subject, source=source, time=datetime.now(UTC))


def buyer_of(csn: str, locale: str = "en-US") -> Person:
    return Person(user_id=f"{csn}-buyer", email=f"buyer@{csn.lower()}.example.com", locale=locale)


def subscription(
    subscription_id: str,
    csn: str,
    *,
    renewal_date: date,
    product_code: str = "ACDLT",
    product_name: str = "AutoCAD LT",
    term: str = "annual",
    seats: int = 1,
    currency: str = "USD",
    country: str = "US",
    payment_type: str = "card",
    payment_valid: bool = True,
    auto_renew: bool = False,
    locale: str = "en-US",
    revision: int = 1,
    **overrides: Any,
) -> SubscriptionUpserted:
    buyer = buyer_of(csn, locale)
    fields: dict[str, Any] = {
        "subscription_id": subscription_id,
        "revision": revision,
        "csn": csn,
        "product_code": product_code,
        "product_name": product_name,
        "plan": "standard",
        "term": term,
        "seats": seats,
        "currency": currency,
        "country": country,
        "purchase_method": "direct_online",
        "partner_csn": None,
        "payment_method": PaymentMethod(type=payment_type, recurring=True, valid=payment_valid),
        "auto_renew": auto_renew,
        "status": "active",
        "start_date": date(renewal_date.year - 1, renewal_date.month, min(renewal_date.day, 28)),
        "renewal_date": renewal_date,
        "flags": SubscriptionFlags(
            maintenance_plan=False,
            third_party_platform=False,
            legacy_system=False,
            retired_product=False,
        ),
        "managed_org": False,
        "buyer": buyer,
        "primary_admin": buyer,
    }
    fields.update(overrides)
    return SubscriptionUpserted(**fields)


def price(
    product_code: str = "ACDLT",
    *,
    term: str = "annual",
    currency: str = "USD",
    list_price: str = "466.00",
    renewal_price: str | None = "420.00",
) -> PricePublished:
    return PricePublished(
        product_code=product_code,
        term=term,
        currency=currency,
        list_price=Decimal(list_price),
        renewal_price=Decimal(renewal_price) if renewal_price is not None else None,
    )


def renewal_request(
    csn: str,
    subscription_ids: list[str],
    *,
    request_id: str | None = None,
    user_id: str | None = None,
) -> RequestRenewal:
    return RequestRenewal(
        request_id=request_id or f"req-{uuid.uuid4()}",
        actor=Actor(user_id=user_id or f"{csn}-buyer", csn=csn),
        subscription_ids=subscription_ids,
    )


def unique_csn(prefix: str = "CSN") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10].upper()}"


def subscription_state(
    subscription_id: str,
    csn: str,
    *,
    renewal_date: date,
    version: int = 1,
    payment_type: str = "card",
    **overrides: Any,
) -> SubscriptionState:
    """What renewal publishes on `subscription.state` for a subscription it holds: active, 45
    days of grace, nothing pending, unless `overrides` say otherwise."""
    fields: dict[str, Any] = {
        "subscription_id": subscription_id,
        "csn": csn,
        "status": "active",
        "renewal_date": renewal_date,
        "grace_ends": date.fromordinal(renewal_date.toordinal() + 45),
        "term": "annual",
        "seats": 1,
        "next_term": None,
        "next_seats": None,
        "auto_renew": False,
        "payment_method": PaymentMethod(type=payment_type, recurring=True, valid=True),
        "open_quote": None,
        "pending_order": None,
        "version": version,
    }
    fields.update(overrides)
    return SubscriptionState(**fields)
