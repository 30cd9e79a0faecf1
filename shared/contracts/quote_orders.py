"""`quote.orders` and `quote.order_answers` (internal): an accepted quote's order goes through
renewal, which reserves the terms it buys before billing charges anything (issue 14), and tells
the quote service when it refused the order, let it go unpaid, or billing's payment settled it
(paid; paid but every line's money given back; or failed): quote hears of its orders here only,
not from `billing.events` (issue 19)."""

from __future__ import annotations

from datetime import date
from typing import ClassVar

from pydantic import Field

from shared.contracts.billing_events import OrderLine
from shared.contracts.common import (
    MAX_IDS,
    MAX_REASONS,
    Amount,
    Csn,
    CurrencyCode,
    OrderId,
    PurchaseMethod,
    QuoteNumber,
    ReasonCode,
    RequestId,
    SubscriptionId,
)
from shared.contracts.envelope import Contract, EventData, EventRegistry
from shared.contracts.quote_commands import QuoteKind
from shared.contracts.subscription_events import PaymentMethod
from shared.contracts.topics import QUOTE_ORDER_ANSWERS, QUOTE_ORDERS

TOPIC = QUOTE_ORDERS
ANSWERS_TOPIC = QUOTE_ORDER_ANSWERS


class TermStart(Contract):
    """The renewal date a quote line was priced for: the term it buys starts there (LIFE-4)."""

    subscription_id: SubscriptionId
    term_start: date


class QuoteOrderRequested(EventData):
    """The buyer accepted the quote: reserve its terms and place its order, or refuse."""

    event_type: ClassVar[str] = "quote_order.requested"
    request_id: RequestId
    quote_number: QuoteNumber
    kind: QuoteKind
    order_id: OrderId
    csn: Csn
    currency: CurrencyCode
    purchase_method: PurchaseMethod
    payment_method: PaymentMethod
    lines: list[OrderLine] = Field(max_length=MAX_IDS)
    total: Amount
    term_starts: list[TermStart] = Field(max_length=MAX_IDS)
    target_date: date | None = Field(
        default=None, description="An alignment quote's target: the renewal dates move there."
    )


class QuoteOrderRefused(EventData):
    """Renewal placed no order: every reason (RENEWAL_IN_PROGRESS, ALREADY_RENEWED, EXPIRED);
    or its order, unpaid, was let go: its subscriptions expired meanwhile (EXPIRED, LIFE-3), or
    its manual payment did not come by its `pay_by` (PAYMENT_METHOD_INVALID,
    `eligibility.abandoned_refusal`; issue 19). Either way the quote is open again, not paid,
    and the acceptance is answered `quote.rejected`."""

    event_type: ClassVar[str] = "quote_order.refused"
    request_id: RequestId
    quote_number: QuoteNumber
    order_id: OrderId
    reasons: list[ReasonCode] = Field(min_length=1, max_length=MAX_REASONS)


class QuoteOrderReleased(EventData):
    """The quote's order was not paid by its `pay_by`: renewal let its terms go (money that
    still arrives goes back), and the quote is open again until it expires. Renewal now says
    it with `quote_order.refused`, which answers the acceptance too (issue 19); this one, from
    older renewals, may still be on the topic, and quote still reads it."""

    event_type: ClassVar[str] = "quote_order.released"
    quote_number: QuoteNumber
    order_id: OrderId


class QuoteOrderPaid(EventData):
    """Billing was paid for the quote's order (its first payment outcome): the quote is paid."""

    event_type: ClassVar[str] = "quote_order.paid"
    quote_number: QuoteNumber
    order_id: OrderId


class QuoteOrderRefunded(EventData):
    """Billing was paid for the quote's order but the money bought nothing and goes back (every
    line: the subscriptions expired meanwhile, LIFE-3/LIFE-5, or the terms were bought or let
    go): the quote is not paid; it is open again, and its acceptance `request_id` is answered
    `quote.rejected` with `reasons` (issue 19). An order with some lines renewed is paid."""

    event_type: ClassVar[str] = "quote_order.refunded"
    request_id: RequestId
    quote_number: QuoteNumber
    order_id: OrderId
    reasons: list[ReasonCode] = Field(min_length=1, max_length=MAX_REASONS)


class QuoteOrderPaymentFailed(EventData):
    """The quote's order was not paid (its first payment outcome): the quote is open again, to
    be accepted and paid again until it expires."""

    event_type: ClassVar[str] = "quote_order.payment_failed"
    quote_number: QuoteNumber
    order_id: OrderId


REGISTRY = EventRegistry(TOPIC.name, QuoteOrderRequested)
ANSWERS_REGISTRY = EventRegistry(
    ANSWERS_TOPIC.name,
    QuoteOrderRefused,
    QuoteOrderReleased,
    QuoteOrderPaid,
    QuoteOrderRefunded,
    QuoteOrderPaymentFailed,
)
