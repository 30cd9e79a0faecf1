"""`billing.events`: orders placed and what became of their payment."""

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
    PaymentReference,
    ProductCode,
    PurchaseMethod,
    QuoteNumber,
    ReasonCode,
    RequestId,
    SeatCount,
    SubscriptionId,
    Term,
    Text,
)
from shared.contracts.envelope import Contract, EventData, EventRegistry
from shared.contracts.topics import BILLING_EVENTS

TOPIC = BILLING_EVENTS


class OrderLine(Contract):
    """One subscription in an order, in the order's currency, tax excluded (PRICE-3)."""

    subscription_id: SubscriptionId
    product_code: ProductCode
    product_name: Text | None = None
    term: Term
    seats: SeatCount
    unit_price: Amount
    amount: Amount


class OrderPlaced(EventData):
    """`request_id` or `quote_number` name the command or quote that caused it, where one did."""

    event_type: ClassVar[str] = "order.placed"
    order_id: OrderId
    csn: Csn
    currency: CurrencyCode
    purchase_method: PurchaseMethod
    lines: list[OrderLine] = Field(max_length=MAX_IDS)
    total: Amount
    request_id: RequestId | None = None
    quote_number: QuoteNumber | None = None


class PaymentSucceeded(EventData):
    event_type: ClassVar[str] = "payment.succeeded"
    order_id: OrderId
    amount: Amount
    currency: CurrencyCode
    payment_reference: PaymentReference


OrderRefusal = Literal[
    "NO_LINES",
    "INVALID_QUANTITY",
    "INVALID_PRICE",
    "TOTAL_MISMATCH",
    "AMOUNT_PRECISION",
    "UNKNOWN_CURRENCY",
]
"""Why billing refused to place an order (issue 16 item 4, no client-set money): no lines; a
line's seats not positive; a line's unit price not positive; a total that is not the sum of its
lines; an amount finer than its currency's minor unit (JPY has none, USD two); a currency that
is not ISO 4217's."""


# What a payment event says of its order, so that its email needs no other event (issue 17
# item 3): absent only on events published before billing set it.
ORDER_CSN = "The order's customer. Null only on events published before billing named it."
ORDER_SUBSCRIPTIONS = (
    "The order's subscriptions, in the order of its lines, each once. Empty only on events"
    " published before billing named them."
)


class PaymentFailed(EventData):
    """A charge that failed; or, with `refusals`, an order billing refused to place: nothing
    was charged, no `order.placed` was announced, and none will be retried. It names the order's
    customer, subscriptions and amount, so that its email needs no other event."""

    event_type: ClassVar[str] = "payment.failed"
    order_id: OrderId
    reason: Note = Field(min_length=1)
    next_retry_on: date | None = Field(description="Null when no retry is left.")
    refusals: list[OrderRefusal] = Field(
        default_factory=list,
        max_length=MAX_REASONS,
        description="Empty for a charge that failed; for an order billing refused to place,"
        " every reason: NO_LINES, INVALID_QUANTITY, INVALID_PRICE, TOTAL_MISMATCH,"
        " AMOUNT_PRECISION, UNKNOWN_CURRENCY.",
    )
    csn: Csn | None = Field(default=None, description=ORDER_CSN)
    subscription_ids: list[SubscriptionId] = Field(
        default_factory=list, max_length=MAX_IDS, description=ORDER_SUBSCRIPTIONS
    )
    amount: Amount | None = Field(
        default=None, description="The order's total. Null only on events published before."
    )
    currency: CurrencyCode | None = None


class PaymentAwaitingManual(EventData):
    """The customer pays by bank transfer, convenience store or ATM by `pay_by` (a date of the
    CSN's today: its time zone, or its test clock). It names the order's customer and
    subscriptions, so that its email needs no other event."""

    event_type: ClassVar[str] = "payment.awaiting_manual"
    order_id: OrderId
    amount: Amount
    currency: CurrencyCode
    payment_reference: PaymentReference
    pay_by: date
    csn: Csn | None = Field(default=None, description=ORDER_CSN)
    subscription_ids: list[SubscriptionId] = Field(
        default_factory=list, max_length=MAX_IDS, description=ORDER_SUBSCRIPTIONS
    )


class PaymentRejected(EventData):
    """A `payment.received` that matches no awaiting order, or not its amount or currency."""

    event_type: ClassVar[str] = "payment.rejected"
    payment_reference: PaymentReference
    order_id: OrderId
    reasons: list[ReasonCode] = Field(min_length=1, max_length=MAX_REASONS)


class PaymentRefunded(EventData):
    """Money that arrived for an order that can no longer take effect (a manual payment after
    expiry, LIFE-3/LIFE-5; an order whose reservation was released) went back through the
    payment provider, once per order. `reason`: EXPIRED, RESERVATION_RELEASED, ALREADY_RENEWED
    or UNKNOWN_SUBSCRIPTION (the order names a subscription the product does not hold)."""

    event_type: ClassVar[str] = "payment.refunded"
    order_id: OrderId
    amount: Amount
    currency: CurrencyCode
    reason: Note = Field(min_length=1)
    refund_reference: PaymentReference | None = None


REGISTRY = EventRegistry(
    TOPIC.name,
    OrderPlaced,
    PaymentSucceeded,
    PaymentFailed,
    PaymentAwaitingManual,
    PaymentRejected,
    PaymentRefunded,
)
