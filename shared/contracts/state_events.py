"""`subscription.state`: renewal's whole state of one subscription, after every change of it."""

from __future__ import annotations

from datetime import date
from typing import ClassVar, Literal

from pydantic import Field

from shared.contracts.common import Csn, OrderId, QuoteNumber, Seats, SubscriptionId, Term
from shared.contracts.envelope import EventData, EventRegistry
from shared.contracts.subscription_events import PaymentMethod
from shared.contracts.topics import SUBSCRIPTION_STATE

TOPIC = SUBSCRIPTION_STATE

StateStatus = Literal["trial", "active", "lapsed", "expired"]


class SubscriptionState(EventData):
    """The state as the product holds it (compacted, keyed by the subscription id): a reader
    keeps the highest `version` of each subscription and ignores an older one."""

    event_type: ClassVar[str] = "subscription.state"
    subscription_id: SubscriptionId
    csn: Csn
    status: StateStatus
    renewal_date: date
    grace_ends: date = Field(description="The last day of grace (LIFE-3, WIN-2).")
    term: Term
    seats: Seats
    next_term: Term | None = Field(description="The term the next renewal buys (TERM-1), or null.")
    next_seats: Seats | None = Field(
        description="The seats the next renewal buys (SEAT-2), or null."
    )
    auto_renew: bool
    payment_method: PaymentMethod
    open_quote: QuoteNumber | None = Field(description="An open quote covering it, or null.")
    pending_order: OrderId | None = Field(
        description="The order that holds its next term until it is settled, or null."
    )
    version: int = Field(ge=1, le=2**63 - 1, description="Grows with every change.")


REGISTRY = EventRegistry(TOPIC.name, SubscriptionState)
