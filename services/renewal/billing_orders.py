"""The one place renewal builds what it asks billing to charge: `PlaceOrder` and its lines.

Every path that buys time (manual and bulk renewals, the due-date engine, seats and alignment)
prices its lines with the eligibility package, then orders them here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal

from services.renewal.subscriptions import Subscription
from shared.contracts.billing_commands import PlaceOrder
from shared.contracts.billing_events import OrderLine
from shared.eligibility import PriceLine


def order_line(line: PriceLine, subscription: Subscription) -> OrderLine:
    """A priced line as billing charges it, with the product's name for the customer's email."""
    return OrderLine(
        subscription_id=line.subscription_id,
        product_code=line.product_code,
        product_name=subscription.snapshot.product_name,
        term=line.term,
        seats=line.seats,
        unit_price=line.unit_price,
        amount=line.amount,
    )


def place_order(
    *,
    order_id: str,
    request_id: str | None,
    lines: Sequence[tuple[PriceLine, Subscription]],
    total: Decimal,
    next_retry_on: date | None = None,
) -> PlaceOrder:
    """An order for `lines`, charged to their customer's payment method: the subscriptions of
    one order share their CSN, currency, purchase method and payment method (MAN-2, decided by
    eligibility's grouping), so the first one's are everyone's."""
    first = lines[0][1].snapshot
    return PlaceOrder(
        request_id=request_id,
        order_id=order_id,
        csn=first.csn,
        currency=first.currency,
        purchase_method=first.purchase_method,
        payment_method=first.payment_method,
        lines=[order_line(line, subscription) for line, subscription in lines],
        total=total,
        next_retry_on=next_retry_on,
        timezone=first.timezone,  # billing counts the order's dates from the CSN's today
    )
