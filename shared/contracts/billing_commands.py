"""`billing.commands` (internal): the orders renewal and quote ask billing to place and charge."""

from __future__ import annotations

from datetime import date
from typing import ClassVar

from pydantic import Field

from shared.contracts.billing_events import OrderLine
from shared.contracts.common import (
    MAX_IDS,
    Amount,
    Csn,
    CurrencyCode,
    Note,
    OrderId,
    PurchaseMethod,
    QuoteNumber,
    RequestId,
    SubscriptionId,
    TimeZoneName,
)
from shared.contracts.envelope import EventData, EventRegistry
from shared.contracts.subscription_events import PaymentMethod
from shared.contracts.topics import BILLING_COMMANDS

TOPIC = BILLING_COMMANDS


class PlaceOrder(EventData):
    """`order_id` is chosen by the asker, so that asking twice places one order."""

    event_type: ClassVar[str] = "order.requested"
    request_id: RequestId | None  # null for an automatic renewal
    quote_number: QuoteNumber | None = None
    order_id: OrderId
    csn: Csn
    currency: CurrencyCode
    purchase_method: PurchaseMethod
    payment_method: PaymentMethod
    lines: list[OrderLine] = Field(max_length=MAX_IDS)
    total: Amount
    # For an automatic renewal: when renewal will try again should this charge fail (billing
    # repeats it in `payment.failed`); null when no try is left.
    next_retry_on: date | None = None
    timezone: TimeZoneName | None = Field(
        default=None,
        description="The CSN's time zone as renewal knows it (subscription.upserted): billing"
        " counts the order's dates (`pay_by`) from the CSN's today there. Null: UTC.",
    )


class RefundPayment(EventData):
    """Renewal asks billing to give back the money of a paid order that bought nothing: the
    lines of `subscription_ids` (every line when empty). Asked twice: one refund per order."""

    event_type: ClassVar[str] = "payment.refund_requested"
    order_id: OrderId
    csn: Csn
    subscription_ids: list[SubscriptionId] = Field(default_factory=list, max_length=MAX_IDS)
    reason: Note = Field(min_length=1)


REGISTRY = EventRegistry(TOPIC.name, PlaceOrder, RefundPayment)
