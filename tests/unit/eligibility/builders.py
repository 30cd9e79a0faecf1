"""One place that builds subscriptions, prices and requests for the eligibility tests."""

from collections.abc import Sequence
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from shared.eligibility import (
    Actor,
    Decision,
    PaymentMethod,
    Person,
    Policy,
    Price,
    Promotion,
    QuoteChanges,
    QuoteRequest,
    Subscription,
    decide_add_seats,
    decide_align_dates,
    decide_auto_renew,
    decide_change_terms,
    decide_manual_renewal,
    decide_quote,
)
from shared.eligibility.identity import Sender

TODAY = date(2026, 3, 2)
BUYER = Person(user_id="U-1", email="ana@example.com", locale="en")
ACTOR = Actor(user_id="U-1", csn="CSN-100")
STRANGER = Actor(user_id="U-9", csn="CSN-999")

CARD = PaymentMethod(type="card", recurring=True, valid=True)

# PRICE-2: AutoCAD LT renews at 420 a year, 1,179 every three years, and costs 1,310 new on 3 years.
PRICES = (
    Price(product_code="ACDLT", term="annual", currency="USD",
          list_price=Decimal("466.67"), renewal_price=Decimal("420.00")),
    Price(product_code="ACDLT", term="three_year", currency="USD",
          list_price=Decimal("1310.00"), renewal_price=Decimal("1179.00")),
    Price(product_code="ACDLT", term="monthly", currency="USD",
          list_price=Decimal("60.00"), renewal_price=None),
    Price(product_code="ACDLT", term="annual", currency="EUR",
          list_price=Decimal("500.00"), renewal_price=None),
    Price(product_code="ACDLT", term="annual", currency="JPY",
          list_price=Decimal("66000"), renewal_price=Decimal("59400")),
)  # fmt: skip


def policy(**overrides: Any) -> Policy:
    return Policy(**overrides)


def subscription(subscription_id: str = "S-1", **overrides: Any) -> Subscription:
    fields: dict[str, Any] = {
        "subscription_id": subscription_id,
        "csn": "CSN-100",
        "product_code": "ACDLT",
        "product_name": "AutoCAD LT",
        "term": "annual",
        "seats": 1,
        "currency": "USD",
        "country": "US",
        "purchase_method": "direct_online",
        "payment_method": CARD,
        "auto_renew": False,
        "status": "active",
        "start_date": date(2025, 4, 15),
        "renewal_date": date(2026, 4, 15),
        "buyer": BUYER,
    }
    fields.update(overrides)
    return Subscription(**fields)


def renewing_in(days: int, subscription_id: str = "S-1", **overrides: Any) -> Subscription:
    """A subscription whose renewal date is `days` after TODAY (before it when negative)."""
    return subscription(subscription_id, renewal_date=TODAY + timedelta(days=days), **overrides)


def promotion(percent: str = "15", code: str = "SPRING15", **overrides: Any) -> Promotion:
    fields: dict[str, Any] = {
        "promotion_code": code,
        "product_codes": ("ACDLT",),
        "percent_off": Decimal(percent),
        "starts_on": date(2026, 3, 1),
        "ends_on": date(2026, 3, 31),
    }
    fields.update(overrides)
    return Promotion(**fields)


def renew(
    *subscriptions: Subscription,
    ids: Sequence[str] | None = None,
    actor: Actor = ACTOR,
    today: date = TODAY,
    sender: Sender | None = None,
    prices: Sequence[Price] = PRICES,
    promotions: Sequence[Promotion] = (),
    **policy_overrides: Any,
) -> Decision:
    return decide_manual_renewal(
        actor,
        subscriptions,
        [s.subscription_id for s in subscriptions] if ids is None else ids,
        prices=prices,
        promotions=promotions,
        today=today,
        policy=policy(**policy_overrides),
        sender=sender,
    )


def auto_renew(
    *subscriptions: Subscription,
    enabled: bool = True,
    actor: Actor = ACTOR,
    today: date = TODAY,
    sender: Sender | None = None,
    ids: Sequence[str] | None = None,
) -> Decision:
    return decide_auto_renew(
        actor,
        subscriptions,
        [s.subscription_id for s in subscriptions] if ids is None else ids,
        enabled=enabled,
        today=today,
        policy=policy(),
        sender=sender,
    )


def quote(
    *subscriptions: Subscription,
    channel: str = "self_service",
    kind: str = "renewal",
    recipients: Sequence[str] = ("buyer@example.com",),
    changes: QuoteChanges | None = None,
    actor: Actor = ACTOR,
    today: date = TODAY,
    sender: Sender | None = None,
    promotions: Sequence[Promotion] = (),
    ids: Sequence[str] | None = None,
    target_date: date | None = None,
) -> Decision:
    request = QuoteRequest(
        channel=channel,  # type: ignore[arg-type]
        kind=kind,  # type: ignore[arg-type]
        subscription_ids=tuple([s.subscription_id for s in subscriptions] if ids is None else ids),
        recipients=tuple(recipients),
        changes=changes or QuoteChanges(),
        target_date=target_date,
    )
    return decide_quote(
        actor,
        subscriptions,
        request,
        prices=PRICES,
        promotions=promotions,
        today=today,
        policy=policy(),
        sender=sender,
    )


def change_terms(
    sub: Subscription,
    *,
    term: Any = None,
    seats: int | None = None,
    actor: Actor = ACTOR,
    today: date = TODAY,
    sender: Sender | None = None,
) -> Decision:
    return decide_change_terms(
        actor,
        [sub],
        sub.subscription_id,
        term=term,
        seats=seats,
        prices=PRICES,
        promotions=(),
        today=today,
        policy=policy(),
        sender=sender,
    )


def add_seats(
    sub: Subscription,
    seats: int,
    *,
    actor: Actor = ACTOR,
    today: date = TODAY,
    sender: Sender | None = None,
    promotions: Sequence[Promotion] = (),
) -> Decision:
    return decide_add_seats(
        actor,
        [sub],
        sub.subscription_id,
        seats=seats,
        prices=PRICES,
        promotions=promotions,
        today=today,
        policy=policy(),
        sender=sender,
    )


def align(
    *subscriptions: Subscription,
    target_date: date,
    actor: Actor = ACTOR,
    today: date = TODAY,
    sender: Sender | None = None,
    ids: Sequence[str] | None = None,
) -> Decision:
    return decide_align_dates(
        actor,
        subscriptions,
        [s.subscription_id for s in subscriptions] if ids is None else ids,
        target_date=target_date,
        prices=PRICES,
        promotions=(),
        today=today,
        policy=policy(),
        sender=sender,
    )


def reasons_of(decision: Decision, subscription_id: str = "S-1") -> set[str]:
    return {r.value for r in decision.outcome(subscription_id).reasons}


def codes(reasons: Sequence[Any]) -> list[str]:
    return [r.value for r in reasons]
