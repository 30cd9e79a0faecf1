"""The package's own domain types: what a service hands to the rules.

Plain frozen dataclasses, independent of the Kafka contracts; services convert their stored
rows into them, and `shared.eligibility.parsing` builds them from dicts with the contract's field
names. Money is `Decimal`, dates are `date`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal, Protocol

from pydantic import BeforeValidator

Term = Literal["monthly", "annual", "three_year"]
Plan = Literal["standard", "premium"]
Status = Literal["trial", "active"]
PurchaseMethod = Literal["direct_online", "direct_sales", "partner"]
PaymentMethodType = Literal[
    "card",
    "paypal",
    "direct_debit",
    "bank_transfer",
    "alipay",
    "convenience_store",
    "atm_transfer",
    "invoice",
]
Channel = Literal["self_service", "partner", "sales"]
QuoteKind = Literal["renewal", "new", "alignment"]


def _decimal_string(value: Any) -> Any:
    # CONTRACT.md: money is a decimal string, never a float (a float has already lost cents).
    if isinstance(value, Decimal | int) and not isinstance(value, bool):
        return Decimal(value)
    if not isinstance(value, str):
        raise ValueError('must be a decimal string such as "1179.00"')
    try:
        parsed = Decimal(value)
    except InvalidOperation:
        raise ValueError(f"not a decimal number: {value!r}") from None
    if not parsed.is_finite():
        raise ValueError(f"not a finite decimal: {value!r}")
    return parsed


DecimalString = Annotated[Decimal, BeforeValidator(_decimal_string)]
"""A `Decimal` read from a decimal string when parsed from a dict (floats are refused)."""


@dataclass(frozen=True, kw_only=True)
class Actor:
    """Who asks: a user of a customer account (or of a partner's account)."""

    user_id: str
    csn: str


@dataclass(frozen=True, kw_only=True)
class Person:
    user_id: str
    email: str = ""
    locale: str = "en"


@dataclass(frozen=True, kw_only=True)
class PaymentMethod:
    type: PaymentMethodType
    recurring: bool
    valid: bool


@dataclass(frozen=True, kw_only=True)
class Flags:
    maintenance_plan: bool = False
    third_party_platform: bool = False
    legacy_system: bool = False
    retired_product: bool = False


@dataclass(frozen=True, kw_only=True)
class Subscription:
    """A subscription as `subscription.upserted` describes it, plus pending next-renewal changes.

    `next_term` and `next_seats` are the changes recorded for the next renewal (TERM-1, SEAT-2);
    the renewal service fills them in, the subscription system does not send them.
    """

    subscription_id: str
    csn: str
    product_code: str
    product_name: str = ""
    plan: Plan = "standard"
    term: Term
    seats: int
    currency: str
    country: str
    purchase_method: PurchaseMethod
    partner_csn: str | None = None
    payment_method: PaymentMethod
    auto_renew: bool
    status: Status
    start_date: date
    renewal_date: date
    flags: Flags = field(default_factory=Flags)
    managed_org: bool = False
    buyer: Person
    primary_admin: Person | None = None
    next_term: Term | None = None
    next_seats: int | None = None

    @property
    def admin(self) -> Person:
        """The primary admin: the buyer unless the role was handed to someone else (ROLE-2)."""
        return self.primary_admin or self.buyer

    @property
    def renewal_term(self) -> Term:
        """The term the next renewal buys (TERM-1)."""
        return renewal_term_of(self)

    @property
    def renewal_seats(self) -> int:
        """The seats the next renewal buys (SEAT-2)."""
        return renewal_seats_of(self)


class NextRenewal(Protocol):
    """What the next renewal buys is read from: the running term and seats, and the changes
    recorded for the next renewal (an `eligibility.Subscription`, or a service's stored row)."""

    @property
    def term(self) -> Term: ...

    @property
    def seats(self) -> int: ...

    @property
    def next_term(self) -> Term | None: ...

    @property
    def next_seats(self) -> int | None: ...


class FlagsFacts(Protocol):
    """A product's flags as self-service reads them (SELF-1)."""

    @property
    def maintenance_plan(self) -> bool: ...

    @property
    def third_party_platform(self) -> bool: ...

    @property
    def legacy_system(self) -> bool: ...

    @property
    def retired_product(self) -> bool: ...


class GraceFacts(Protocol):
    """What grace (LIFE-3, LIFE-5) and self-service (SELF-1, SELF-2) are decided on: an
    `eligibility.Subscription`, or a service's stored row that has these, which then need not
    be converted whole to know when its grace ends."""

    @property
    def renewal_date(self) -> date: ...

    @property
    def renewal_term(self) -> Term: ...

    @property
    def country(self) -> str: ...

    @property
    def purchase_method(self) -> PurchaseMethod: ...

    @property
    def flags(self) -> FlagsFacts: ...


def renewal_term_of(subscription: NextRenewal) -> Term:
    """TERM-1: the term the next renewal buys — the one recorded for it, else the running one."""
    return subscription.next_term or subscription.term


def renewal_seats_of(subscription: NextRenewal) -> int:
    """SEAT-2: the seats the next renewal buys — as recorded for it (up or down), else the
    running count."""
    return subscription.next_seats if subscription.next_seats is not None else subscription.seats


@dataclass(frozen=True, kw_only=True)
class Price:
    """`price.published`: per seat per term, before tax (PRICE-3)."""

    product_code: str
    term: Term
    currency: str
    list_price: DecimalString
    renewal_price: DecimalString | None = None


@dataclass(frozen=True, kw_only=True)
class Promotion:
    """`promotion.published`: a percentage off, for some products, between two dates inclusive."""

    promotion_code: str
    product_codes: tuple[str, ...]
    percent_off: DecimalString
    starts_on: date
    ends_on: date

    def applies_to(self, product_code: str, day: date) -> bool:
        return product_code in self.product_codes and self.starts_on <= day <= self.ends_on


@dataclass(frozen=True, kw_only=True)
class QuoteChanges:
    """`quote.requested` `changes`: what the quote changes from the subscriptions as they are."""

    term: Term | None = None
    seats: int | None = None
    currency: str | None = None
    start_date: date | None = None
    add_seats: int | None = None
    success_plan: bool = False
    new_credit_line: bool = False


@dataclass(frozen=True, kw_only=True)
class QuoteRequest:
    """`quote.requested` without its envelope fields.

    `target_date` is for an alignment quote: the date the subscriptions are aligned to
    (by default the latest of their renewal dates).
    """

    channel: Channel
    kind: QuoteKind
    subscription_ids: tuple[str, ...]
    recipients: tuple[str, ...] = ()
    changes: QuoteChanges = field(default_factory=QuoteChanges)
    target_date: date | None = None


@dataclass(frozen=True, kw_only=True)
class Quote:
    """A quote already sent, as far as cancelling it is concerned (QUO-5)."""

    quote_number: str
    csn: str
    expires_on: date
    partner_csn: str | None = None
    accepted: bool = False
    """The buyer accepted it (its order is placed or paid): it can no longer be cancelled."""
    closed: bool = False
    """Expired (the quote service's expiry ran) or cancelled: it can't be accepted or cancelled."""
