"""Prices: renewal vs list price, promotions, pro rata, and the lines of a preview.

Every amount is an exact `Decimal` until it leaves this module, then rounded once, half up, to
the currency's minor unit as Babel's currency data gives it (JPY has none, USD two).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from babel.numbers import get_currency_precision

from shared.eligibility.dates import days_in_term, term_start
from shared.eligibility.model import Price, Promotion, Term
from shared.eligibility.policy import Policy

HUNDRED = Decimal(100)


class PriceBasis(StrEnum):
    RENEWAL = "renewal"
    """PRICE-1: renewing before expiry, also across a term switch."""
    LIST = "list"
    """PRICE-1, LIFE-3: the new-purchase price, e.g. after expiry."""


@dataclass(frozen=True)
class Money:
    amount: Decimal
    currency: str

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"


@functools.lru_cache(maxsize=256)  # Babel's lookup, asked for each amount rounded (#19 plan item 9)
def minor_unit(currency: str) -> Decimal:
    """The smallest amount of the currency: Decimal("0.01") for USD, Decimal("1") for JPY."""
    return Decimal(1).scaleb(-get_currency_precision(currency))


def round_money(amount: Decimal, currency: str) -> Decimal:
    return amount.quantize(minor_unit(currency), rounding=ROUND_HALF_UP)


def find_price(
    prices: Iterable[Price], product_code: str, term: Term, currency: str
) -> Price | None:
    for price in prices:
        if (price.product_code, price.term, price.currency) == (product_code, term, currency):
            return price
    return None


def renewal_unit_price(price: Price, policy: Policy) -> Decimal:
    """PRICE-1, PRICE-3: the catalog's renewal price, else the list price less the policy's
    renewal discount; monthly terms are outside the derived discount (PRICE-3)."""
    if price.renewal_price is not None:
        return price.renewal_price
    if price.term not in policy.renewal_discount_terms:
        return price.list_price
    return price.list_price * (HUNDRED - policy.renewal_discount_percent) / HUNDRED


def unit_price(price: Price, basis: PriceBasis, policy: Policy) -> Decimal:
    """Per seat per term, exact, before promotions."""
    if basis is PriceBasis.RENEWAL:
        return renewal_unit_price(price, policy)
    return price.list_price


def best_promotion(
    promotions: Iterable[Promotion], product_code: str, day: date
) -> Promotion | None:
    """QUO-6: promotions apply by themselves; of several, the largest one (they don't stack)."""
    applicable = [p for p in promotions if p.applies_to(product_code, day)]
    if not applicable:
        return None
    return max(applicable, key=lambda p: (p.percent_off, p.promotion_code))


@dataclass(frozen=True, kw_only=True)
class PriceLine:
    """One subscription's line in a preview; `subtotal - discount == amount`."""

    subscription_id: str
    product_code: str
    currency: str
    term: Term
    seats: int
    basis: PriceBasis
    unit_price: Decimal
    """Per seat per full term, before promotions (rounded for display only)."""
    prorated_days: int | None
    """Days charged when the line covers part of a term (SEAT-1, ALIGN-1), else None."""
    term_days: int | None
    promotion_code: str | None
    percent_off: Decimal | None
    subtotal: Decimal
    discount: Decimal
    amount: Decimal
    starts_on: date
    ends_on: date


def price_line(
    *,
    subscription_id: str,
    product_code: str,
    currency: str,
    term: Term,
    seats: int,
    basis: PriceBasis,
    exact_unit_price: Decimal,
    starts_on: date,
    ends_on: date,
    promotion: Promotion | None = None,
    prorated_days: int | None = None,
    term_days: int | None = None,
) -> PriceLine:
    """Price `seats` at `exact_unit_price` for a full term, or `prorated_days / term_days` of one.

    The charged amount is computed exactly, then rounded once; the subtotal too, and the
    discount is their difference, so a line always adds up.
    """
    numerator = exact_unit_price * seats
    denominator = Decimal(1)
    if prorated_days is not None and term_days is not None:
        numerator *= prorated_days
        denominator *= term_days
    percent_off = promotion.percent_off if promotion is not None else Decimal(0)
    subtotal = round_money(numerator / denominator, currency)
    amount = round_money(numerator * (HUNDRED - percent_off) / (denominator * HUNDRED), currency)
    return PriceLine(
        subscription_id=subscription_id,
        product_code=product_code,
        currency=currency,
        term=term,
        seats=seats,
        basis=basis,
        unit_price=round_money(exact_unit_price, currency),
        prorated_days=prorated_days,
        term_days=term_days,
        promotion_code=promotion.promotion_code if promotion is not None else None,
        percent_off=promotion.percent_off if promotion is not None else None,
        subtotal=subtotal,
        discount=subtotal - amount,
        amount=amount,
        starts_on=starts_on,
        ends_on=ends_on,
    )


def prorated_days_left(today: date, renewal_date: date, term: Term) -> tuple[int, int]:
    """SEAT-1: (days left until the renewal date, days in the running term).

    The days left in the running term, never more than it; after an early renewal (LIFE-4) the
    renewal date is terms ahead of the running term, and seats added now also take part in
    every term already paid ahead (all seats renew together): each such term counts in full,
    as the running term's length, so the fraction is "terms paid ahead + part of this one".
    """
    running_ends, ahead = renewal_date, 0
    while term_start(running_ends, term) > today:
        running_ends, ahead = term_start(running_ends, term), ahead + 1
    term_days = days_in_term(running_ends, term)
    left = min(max((running_ends - today).days, 0), term_days)
    return ahead * term_days + left, term_days


@dataclass(frozen=True, kw_only=True)
class Totals:
    currency: str
    subtotal: Decimal
    discount: Decimal
    total: Decimal


@dataclass(frozen=True, kw_only=True)
class Preview:
    """A dry run: the lines that would be charged, totals per currency, and the quote's expiry."""

    lines: tuple[PriceLine, ...]
    totals: tuple[Totals, ...]
    expires_on: date | None = None


def preview_of(lines: Iterable[PriceLine], expires_on: date | None = None) -> Preview:
    lines = tuple(lines)
    totals: dict[str, Totals] = {}
    for line in lines:
        zero = Decimal(0)
        before = totals.get(
            line.currency, Totals(currency=line.currency, subtotal=zero, discount=zero, total=zero)
        )
        totals[line.currency] = Totals(
            currency=line.currency,
            subtotal=before.subtotal + line.subtotal,
            discount=before.discount + line.discount,
            total=before.total + line.amount,
        )
    return Preview(lines=lines, totals=tuple(totals.values()), expires_on=expires_on)
