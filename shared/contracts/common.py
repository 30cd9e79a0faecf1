"""Field types shared by every topic's contract: money, codes, people, actors."""

from __future__ import annotations

import re
from decimal import Decimal
from functools import cache
from typing import Annotated, Any, Literal
from zoneinfo import available_timezones

from pydantic import AfterValidator, BeforeValidator, Field, PlainSerializer, WithJsonSchema
from pydantic_core import PydanticKnownError

from shared.contracts.envelope import Contract

# The domain's vocabulary is defined once, by the rules (the eligibility package depends on no
# contract); the contracts re-export it and their schema spells it out as it is.
from shared.eligibility.model import PaymentMethodType as PaymentMethodType
from shared.eligibility.model import Plan as Plan
from shared.eligibility.model import PurchaseMethod as PurchaseMethod
from shared.eligibility.model import Term as Term

# Bounds of the contract (issue 15): what is outside them is malformed and dead-lettered at
# the door, before any handler or loop can choke on it. Business limits stay business refusals
# (BULK_LIMIT_EXCEEDED, INVALID_QUANTITY): the technical caps are far above them.
MAX_ID_LENGTH = 128
"""Any identifier: request ids, user ids, payment references, notification ids, event ids."""
MAX_SHORT_ID_LENGTH = 64
"""Identifiers of the product's own catalog and customers: CSN, subscription, order, quote,
product and promotion codes."""
MAX_EMAIL_LENGTH = 320
"""RFC 3696 (errata): 64 for the local part, @, 255 for the domain."""
MAX_TEXT_LENGTH = 1000
"""Free text: a product name, a failure reason, an email subject."""
MAX_SEATS = 100_000
"""Seats of one subscription, or asked for in one command: the policy's ceiling."""
MAX_IDS = 10_000
"""Items in one list (ids, lines, outcomes, recipients): 100 times the bulk limit (100), so that
a list over the bulk limit is still a business refusal and only an absurd one is malformed."""
MAX_REASONS = 64
"""Reasons in one refusal: there are fewer reason codes than that."""
MAX_UNIT_PRICE = Decimal(10_000_000)
"""A price per seat per term, in any currency (JPY and KRW included)."""
MAX_AMOUNT = Decimal(10) ** 15
"""Any computed amount or total: far above MAX_SEATS x MAX_UNIT_PRICE x the bulk limit, and far
below where `Decimal` arithmetic (28 digits) would start to lose the cents."""
MONEY_DECIMALS = 4
"""Decimals of an amount: the largest minor unit of ISO 4217 (CLF, UYW); each amount is rounded
to its own currency's minor unit by the services."""

_PLAIN_DECIMAL = re.compile(r"-?[0-9]{1,32}(\.[0-9]{1,32})?")


def _decimal_from_string(value: Any) -> Any:
    # CONTRACT.md: money is a decimal string, never a float (a float has already lost cents).
    # Only plain digits: no exponent ("1E+27"), no sign but a minus, no spaces, no "_" or
    # "NaN" (all of which `Decimal` would take), nothing longer than a real amount.
    if isinstance(value, Decimal):
        return value
    if not isinstance(value, str):
        raise ValueError('money must be a decimal string such as "1179.00"')
    if not _PLAIN_DECIMAL.fullmatch(value):
        raise ValueError(f"not a decimal number in plain digits such as 1179.00: {value[:40]!r}")
    return Decimal(value)


def _at_most_money_decimals(value: Decimal) -> Decimal:
    # Pydantic's `decimal_places` does the same check through a general digit count that was 8 %
    # of billing's CPU (#19): nearly every amount has 2 decimals, so the exponent alone answers.
    # Same rule and same error as pydantic's: trailing zeros do not count ("1.00000" is 1).
    sign_digits_exponent = value.as_tuple()
    exponent = sign_digits_exponent.exponent
    if not isinstance(exponent, int) or exponent >= -MONEY_DECIMALS:
        return value
    digits = sign_digits_exponent.digits
    trailing_zeros = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    if trailing_zeros == len(digits) or exponent + trailing_zeros >= -MONEY_DECIMALS:
        return value
    raise PydanticKnownError("decimal_max_places", {"decimal_places": MONEY_DECIMALS})


MoneyDecimals = AfterValidator(_at_most_money_decimals)
"""At most MONEY_DECIMALS decimals, as pydantic's `decimal_places` counts them."""


def _plain(value: Decimal) -> str:
    # Fixed-point always: str(Decimal) may give "1E+2" or "0E-8", which the pattern refuses.
    return format(value, "f")


DecimalString = Annotated[
    Decimal,
    BeforeValidator(_decimal_from_string),
    PlainSerializer(_plain, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "pattern": r"^-?\d+(\.\d+)?$", "examples": ["1179.00"]}),
]
"""A `Decimal` that travels as a JSON string in plain digits: amounts, prices, percentages."""

UnitPrice = Annotated[
    DecimalString,
    Field(gt=0, le=MAX_UNIT_PRICE),
    MoneyDecimals,
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^\d+(\.\d{1,4})?$",
            "description": f"A price per seat per term: more than 0, at most {MAX_UNIT_PRICE},"
            f" at most {MONEY_DECIMALS} decimals.",
            "examples": ["1179.00"],
        }
    ),
]
"""A catalog price per seat per term: positive, bounded."""

Amount = Annotated[
    DecimalString,
    Field(ge=0, le=MAX_AMOUNT),
    MoneyDecimals,
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^\d+(\.\d{1,4})?$",
            "description": f"An amount: from 0 to {MAX_AMOUNT:,}, at most {MONEY_DECIMALS}"
            " decimals.",
            "examples": ["5895.00"],
        }
    ),
]
"""An amount the product computes (a line, a discount, a total) or a payment: not negative."""

PaidAmount = Annotated[
    Amount,
    Field(gt=0),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^\d+(\.\d{1,4})?$",
            "description": f"Money that arrived: more than 0, at most {MAX_AMOUNT:,}, at most"
            f" {MONEY_DECIMALS} decimals.",
            "examples": ["5895.00"],
        }
    ),
]
"""A payment that arrived from the provider: positive."""

Percent = Annotated[
    DecimalString,
    Field(ge=0, le=100),
    MoneyDecimals,
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^\d{1,3}(\.\d{1,4})?$",
            "description": "From 0 to 100.",
            "examples": ["15", "12.5"],
        }
    ),
]
"""A percentage from 0 to 100, as a decimal string."""

Seats = Annotated[int, Field(ge=1, le=MAX_SEATS)]
"""A subscription's seats, as the subscription system holds them."""
SeatsAsked = Annotated[int, Field(ge=-MAX_SEATS, le=MAX_SEATS)]
"""Seats a command asks for: zero or fewer is a business refusal (INVALID_QUANTITY), not
malformed, so only the size is bounded here."""
SeatCount = Annotated[int, Field(ge=0)]
"""Seats in an answer the product computes (additions add up over time: no ceiling here)."""

CurrencyCode = Annotated[str, Field(pattern=r"^[A-Z]{3}$", examples=["USD", "EUR", "JPY"])]
CountryCode = Annotated[str, Field(pattern=r"^[A-Z]{2}$", examples=["US", "FR"])]
Csn = Annotated[str, Field(min_length=1, max_length=MAX_SHORT_ID_LENGTH)]
SubscriptionId = Annotated[str, Field(min_length=1, max_length=MAX_SHORT_ID_LENGTH)]
RequestId = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH)]
OrderId = Annotated[str, Field(min_length=1, max_length=MAX_SHORT_ID_LENGTH)]
QuoteNumber = Annotated[str, Field(min_length=1, max_length=MAX_SHORT_ID_LENGTH)]
ProductCode = Annotated[str, Field(min_length=1, max_length=MAX_SHORT_ID_LENGTH)]
PromotionCode = Annotated[str, Field(min_length=1, max_length=MAX_SHORT_ID_LENGTH)]
UserId = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH)]
PaymentReference = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH)]
NotificationId = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH)]
Text = Annotated[str, Field(min_length=1, max_length=MAX_TEXT_LENGTH)]
"""Free text from outside, such as a product name: longer is malformed."""


def _cut(value: Any) -> Any:
    return value[:MAX_TEXT_LENGTH] if isinstance(value, str) else value


Note = Annotated[str, BeforeValidator(_cut), Field(max_length=MAX_TEXT_LENGTH)]
"""Free text the product writes from what others said (a provider's or an SMTP server's error,
an email subject): cut to the bound rather than refused, so that a long error message never
turns into a failure of its own."""
Email = Annotated[
    str,
    Field(
        pattern=r"^[^@\s]+@[^@\s]+$", max_length=MAX_EMAIL_LENGTH, examples=["buyer@example.com"]
    ),
]
Locale = Annotated[str, Field(min_length=2, max_length=16, examples=["en", "fr-FR"])]


@cache
def _known_zones() -> frozenset[str]:
    return frozenset(available_timezones())  # the tz database: the system's, else `tzdata`'s


def _known_zone(value: str) -> str:
    if value not in _known_zones():
        raise ValueError(f"{value!r} is not an IANA time zone name (e.g. America/Los_Angeles)")
    return value


TimeZoneName = Annotated[
    str,
    Field(min_length=1, max_length=64, examples=["America/Los_Angeles", "Europe/Paris"]),
    AfterValidator(_known_zone),
]
"""Where a customer's day starts and ends: its "today" is the date there (absent: UTC)."""

ReasonCode = Literal[
    "NOT_AUTHORIZED",
    "UNKNOWN_SUBSCRIPTION",
    "TRIAL_NOT_RENEWABLE",
    "EXPIRED",
    "TOO_EARLY",
    "GRACE_PERIOD_OVER",
    "ALREADY_RENEWED",
    "MANUAL_RENEWAL_REQUIRED",
    "PAYMENT_METHOD_INVALID",
    "SELF_SERVICE_UNAVAILABLE_COUNTRY",
    "SELF_SERVICE_UNAVAILABLE_MAINTENANCE_PLAN",
    "SELF_SERVICE_UNAVAILABLE_THIRD_PARTY_PLATFORM",
    "SELF_SERVICE_UNAVAILABLE_LEGACY_SYSTEM",
    "SELF_SERVICE_UNAVAILABLE_RESELLER",
    "SELF_SERVICE_UNAVAILABLE_RETIRED_PRODUCT",
    "BULK_LIMIT_EXCEEDED",
    "MIXED_CSN",
    "MIXED_CURRENCY",
    "MIXED_PARTNER",
    "CURRENCY_CHANGE",
    "SEAT_ADDITION",
    "SUCCESS_PLAN",
    "NEW_CREDIT_LINE",
    "FUTURE_START_DATE",
    "TOO_MANY_RECIPIENTS",
    "QUOTE_CANCELLATION_NOT_SELF_SERVICE",
    "QUOTE_EXPIRED",
    "TERM_MISMATCH",
    "PAYMENT_METHOD_MISMATCH",
    "NO_PRICE",
    "INVALID_QUANTITY",
    "RENEWAL_IN_PROGRESS",
    "QUOTE_ALREADY_ACCEPTED",
    "UNKNOWN_ORDER",
    "AMOUNT_MISMATCH",
    "CURRENCY_MISMATCH",
]
"""Every refusal reason of CONTRACT.md, in the contract's order (the stable order of refusals)."""


class Actor(Contract):
    user_id: UserId
    csn: Csn


class Person(Contract):
    user_id: UserId
    email: Email
    locale: Locale


class PriceLine(Contract):
    """One subscription's line in a quote or a date alignment, in the currency of the event that
    carries it, tax excluded (PRICE-3): `unit_price` per seat per term, `discount` the money taken
    off the line (promotions, renewal discount), `amount` what the line costs.
    """

    subscription_id: SubscriptionId
    product_code: ProductCode
    term: Term
    seats: SeatCount
    unit_price: Amount
    discount: Amount
    amount: Amount
