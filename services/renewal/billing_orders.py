"""The one place renewal builds what it asks billing to charge: `PlaceOrder` and its lines.

Every path that buys time (manual and bulk renewals, the due-date engine, seats and alignment)
prices its lines with the eligibility package, then orders them here; a change's priced line as
its order keeps it and its answer says it is rendered here too. An accepted quote's order comes
priced by the quote service (`quote.orders`) and is passed on here as it was asked.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from services.renewal.subscriptions import Subscription
from shared.contracts.billing_commands import PlaceOrder
from shared.contracts.billing_events import OrderLine
from shared.contracts.common import PriceLine as ContractPriceLine
from shared.contracts.quote_orders import QuoteOrderRequested
from shared.eligibility import PriceLine

# What every rendering of a priced line says of it, under the eligibility package's own names.
SAID_OF_A_LINE = ("subscription_id", "product_code", "term", "seats", "unit_price", "amount")


def _said_of(line: PriceLine) -> dict[str, Any]:
    return {name: getattr(line, name) for name in SAID_OF_A_LINE}


def order_line(line: PriceLine, subscription: Subscription) -> OrderLine:
    """A priced line as billing charges it, with the product's name for the customer's email."""
    return OrderLine(**_said_of(line), product_name=subscription.snapshot.product_name)


def priced_line(line: PriceLine) -> ContractPriceLine:
    """A change's priced line, with its discount, as its order keeps it and its answer says it."""
    return ContractPriceLine(**_said_of(line), discount=line.discount)


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


def place_quote_order(command: QuoteOrderRequested, held: Sequence[Subscription]) -> PlaceOrder:
    """A quote's order as the quote service priced it (QUO-3), charged once renewal reserved
    the terms of `held`, its subscriptions."""
    return PlaceOrder(
        request_id=command.request_id,
        quote_number=command.quote_number,
        order_id=command.order_id,
        csn=command.csn,
        currency=command.currency,
        purchase_method=command.purchase_method,
        payment_method=command.payment_method,
        lines=command.lines,
        total=command.total,
        timezone=next((s.snapshot.timezone for s in held), None),  # as `place_order`'s
    )
