"""`payment.events`: manual payments (bank transfer, convenience store, ATM) from the provider."""

from __future__ import annotations

from typing import ClassVar

from shared.contracts.common import CurrencyCode, OrderId, PaidAmount, PaymentReference
from shared.contracts.envelope import EventData, EventRegistry
from shared.contracts.topics import PAYMENT_EVENTS

TOPIC = PAYMENT_EVENTS


class PaymentReceived(EventData):
    """A payment that arrived for an order awaiting manual payment."""

    event_type: ClassVar[str] = "payment.received"
    payment_reference: PaymentReference
    order_id: OrderId
    amount: PaidAmount
    currency: CurrencyCode


REGISTRY = EventRegistry(TOPIC.name, PaymentReceived)
