"""Field types shared by every topic's contract: money, codes, people, actors."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, PlainSerializer, WithJsonSchema

from shared.contracts.envelope import Contract


def _decimal_from_string(value: Any) -> Any:
    # CONTRACT.md: money is a decimal string, never a float (a float has already lost cents).
    if isinstance(value, Decimal):
        return value
    if not isinstance(value, str):
        raise ValueError('money must be a decimal string such as "1179.00"')
    try:
        parsed = Decimal(value)
    except InvalidOperation:
        raise ValueError(f"not a decimal number: {value!r}") from None
    if not parsed.is_finite():
        raise ValueError(f"not a finite decimal: {value!r}")
    return parsed


DecimalString = Annotated[
    Decimal,
    BeforeValidator(_decimal_from_string),
    PlainSerializer(lambda value: str(value), return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "pattern": r"^-?\d+(\.\d+)?$", "examples": ["1179.00"]}),
]
"""A `Decimal` that travels as a JSON string: amounts, prices, percentages."""

Percent = Annotated[
    DecimalString,
    Field(ge=0, le=100),
    WithJsonSchema({"type": "string", "pattern": r"^\d+(\.\d+)?$", "examples": ["15", "12.5"]}),
]
"""A percentage from 0 to 100, as a decimal string."""

CurrencyCode = Annotated[str, Field(pattern=r"^[A-Z]{3}$", examples=["USD", "EUR", "JPY"])]
CountryCode = Annotated[str, Field(pattern=r"^[A-Z]{2}$", examples=["US", "FR"])]
Csn = Annotated[str, Field(min_length=1, max_length=64)]
SubscriptionId = Annotated[str, Field(min_length=1, max_length=64)]
RequestId = Annotated[str, Field(min_length=1, max_length=128)]
OrderId = Annotated[str, Field(min_length=1, max_length=64)]
QuoteNumber = Annotated[str, Field(min_length=1, max_length=64)]
ProductCode = Annotated[str, Field(min_length=1, max_length=64)]
Email = Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$", examples=["buyer@example.com"])]
Locale = Annotated[str, Field(min_length=2, max_length=16, examples=["en", "fr-FR"])]

Term = Literal["monthly", "annual", "three_year"]
Plan = Literal["standard", "premium"]
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
    "UNKNOWN_ORDER",
    "AMOUNT_MISMATCH",
    "CURRENCY_MISMATCH",
]
"""Every refusal reason of CONTRACT.md, in the contract's order (the stable order of refusals)."""


class Actor(Contract):
    user_id: str = Field(min_length=1)
    csn: Csn


class Person(Contract):
    user_id: str = Field(min_length=1)
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
    seats: int
    unit_price: DecimalString
    discount: DecimalString
    amount: DecimalString
