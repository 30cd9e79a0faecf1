"""`billing.events`: orders placed and what became of their payment."""

from __future__ import annotations

from datetime import date
from typing import ClassVar

from pydantic import Field

from shared.contracts.common import (
    Csn,
    CurrencyCode,
    DecimalString,
    OrderId,
    ProductCode,
    PurchaseMethod,
    QuoteNumber,
    ReasonCode,
    RequestId,
    SubscriptionId,
    Term,
)
from shared.contracts.envelope import Contract, EventData, EventRegistry
from shared.contracts.topics import BILLING_EVENTS

TOPIC = BILLING_EVENTS


class OrderLine(Contract):
    """One subscription in an order, in the order's currency, tax excluded (PRICE-3)."""

    subscription_id: SubscriptionId
    product_code: ProductCode
    product_name: str | None = None
    term: Term
    seats: int
    unit_price: DecimalString
    amount: DecimalString


class OrderPlaced(EventData):
    """`request_id` or `quote_number` name the command or quote that caused it, where one did."""

    event_type: ClassVar[str] = "order.placed"
    order_id: OrderId
    csn: Csn
    currency: CurrencyCode
    purchase_method: PurchaseMethod
    lines: list[OrderLine]
    total: DecimalString
    request_id: RequestId | None = None
    quote_number: QuoteNumber | None = None


class PaymentSucceeded(EventData):
    event_type: ClassVar[str] = "payment.succeeded"
    order_id: OrderId
    amount: DecimalString
    currency: CurrencyCode
    payment_reference: str = Field(min_length=1)


class PaymentFailed(EventData):
    event_type: ClassVar[str] = "payment.failed"
    order_id: OrderId
    reason: str = Field(min_length=1)
    next_retry_on: date | None = Field(description="Null when no retry is left.")


class PaymentAwaitingManual(EventData):
    """The customer pays by bank transfer, convenience store or ATM by `pay_by`."""

    event_type: ClassVar[str] = "payment.awaiting_manual"
    order_id: OrderId
    amount: DecimalString
    currency: CurrencyCode
    payment_reference: str = Field(min_length=1)
    pay_by: date


class PaymentRejected(EventData):
    """A `payment.received` that matches no awaiting order, or not its amount or currency."""

    event_type: ClassVar[str] = "payment.rejected"
    payment_reference: str = Field(min_length=1)
    order_id: OrderId
    reasons: list[ReasonCode] = Field(min_length=1)


REGISTRY = EventRegistry(
    TOPIC.name,
    OrderPlaced,
    PaymentSucceeded,
    PaymentFailed,
    PaymentAwaitingManual,
    PaymentRejected,
)
