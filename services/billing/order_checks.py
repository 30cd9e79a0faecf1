"""What billing checks of an order's money before placing it (issue 16 item 4, OWASP API3: no
client-set money): billing recomputes the total from the lines instead of charging the total it
was told. Pure: no I/O, every reason that applies, in a stable order.

Every line is in the order's currency by construction (a line has no currency of its own, and a
contract with extra fields is malformed), so one currency check covers them all.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from functools import lru_cache
from typing import get_args

from babel.numbers import is_currency

from shared.contracts.billing_commands import PlaceOrder
from shared.contracts.billing_events import OrderRefusal
from shared.eligibility.pricing import minor_unit

REFUSALS: tuple[OrderRefusal, ...] = get_args(OrderRefusal)
"""Every reason, in the contract's order: the order in which they are given."""


def order_refusals(order: PlaceOrder) -> list[OrderRefusal]:
    """Why billing must not place `order`; empty when its money holds together."""
    found: set[OrderRefusal] = set()
    if not order.lines:
        found.add("NO_LINES")
    if any(line.seats <= 0 for line in order.lines):
        found.add("INVALID_QUANTITY")
    if any(line.unit_price <= 0 for line in order.lines):
        found.add("INVALID_PRICE")
    if sum((line.amount for line in order.lines), Decimal(0)) != order.total:
        found.add("TOTAL_MISMATCH")
    if not _known_currency(order.currency):
        found.add("UNKNOWN_CURRENCY")
    elif not all(_in_minor_units(amount, order.currency) for amount in _amounts(order)):
        found.add("AMOUNT_PRECISION")
    return [reason for reason in REFUSALS if reason in found]


@lru_cache(maxsize=512)  # bounded: the code comes from a message (3 letters by the contract)
def _known_currency(code: str) -> bool:
    # Babel's `is_currency` builds a set of every currency on each call (4 % of billing, #19).
    return is_currency(code)


def refusal_reason(refusals: Iterable[OrderRefusal]) -> str:
    """The human-readable `reason` of the `payment.failed` that answers a refused order."""
    return "order refused: " + ", ".join(refusals)


def _amounts(order: PlaceOrder) -> Iterable[Decimal]:
    yield order.total
    for line in order.lines:
        yield line.unit_price
        yield line.amount


def _in_minor_units(amount: Decimal, currency: str) -> bool:
    # "420.00" JPY is 420 yen: a whole number of minor units, whatever its written decimals.
    return amount % minor_unit(currency) == 0
