"""The few checks the first renewal flow needs, in one place until the eligibility package
replaces them: who may renew (ROLE-1), which subscriptions exist, and their price.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from babel.numbers import get_currency_precision

from services.renewal.subscriptions import Subscription
from shared.catalog.store import StoredPrice
from shared.contracts.common import Actor

BULK_LIMIT = 100
DEFAULT_RENEWAL_DISCOUNT = Decimal("0.10")  # PRICE-1, when a price has no renewal price
TERM_MONTHS = {"monthly": 1, "annual": 12, "three_year": 36}


@dataclass(frozen=True)
class ItemDecision:
    subscription_id: str
    reasons: tuple[str, ...]
    subscription: Subscription | None = None
    unit_price: Decimal | None = None
    amount: Decimal | None = None

    @property
    def allowed(self) -> bool:
        return not self.reasons


def request_reasons(requested: list[str]) -> tuple[str, ...]:
    if not requested:
        return ("INVALID_QUANTITY",)
    if len(requested) > BULK_LIMIT:
        return ("BULK_LIMIT_EXCEEDED",)  # MAN-1: nothing is done
    return ()


def decide_item(
    actor: Actor,
    subscription_id: str,
    subscription: Subscription | None,
    prices: dict[tuple[str, str, str], StoredPrice],
) -> ItemDecision:
    if subscription is None:
        return ItemDecision(subscription_id, ("UNKNOWN_SUBSCRIPTION",))
    reasons = []
    buyer = subscription.snapshot.buyer
    if actor.csn != subscription.csn or actor.user_id != buyer.user_id:
        reasons.append("NOT_AUTHORIZED")  # ROLE-1
    price = prices.get(
        (subscription.snapshot.product_code, subscription.term, subscription.snapshot.currency)
    )
    if price is None:
        reasons.append("NO_PRICE")
    if reasons or price is None:
        return ItemDecision(subscription_id, tuple(reasons), subscription)
    unit = renewal_unit_price(price)
    amount = round_money(unit * subscription.seats, subscription.snapshot.currency)
    return ItemDecision(
        subscription_id, (), subscription, round_money(unit, price.currency), amount
    )


def renewal_unit_price(price: StoredPrice) -> Decimal:
    """PRICE-1: the renewal price, or the list price less the renewal discount."""
    if price.renewal_price is not None:
        return price.renewal_price
    return price.list_price * (1 - DEFAULT_RENEWAL_DISCOUNT)


def round_money(amount: Decimal, currency: str) -> Decimal:
    exponent = Decimal(1).scaleb(-get_currency_precision(currency))
    return amount.quantize(exponent, rounding=ROUND_HALF_UP)


def add_term(start: date, term: str) -> date:
    """The next renewal date: whole calendar months, clamped to the month's last day."""
    months = start.month - 1 + TERM_MONTHS[term]
    year, month = start.year + months // 12, months % 12 + 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))
