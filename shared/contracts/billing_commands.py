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
    OrderId,
    PurchaseMethod,
    QuoteNumber,
    RequestId,
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


REGISTRY = EventRegistry(TOPIC.name, PlaceOrder)
