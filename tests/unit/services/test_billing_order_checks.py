"""Billing recomputes an order's money from its lines (issue 16 item 4, OWASP API3: no
client-set money): what it refuses, and that a real order passes."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from services.billing.order_checks import REFUSALS, order_refusals, refusal_reason
from shared.contracts.billing_commands import PlaceOrder
from shared.contracts.billing_events import OrderLine
from shared.contracts.subscription_events import PaymentMethod


def line(subscription_id: str = "S-1", **changes: Any) -> OrderLine:
    fields: dict[str, Any] = {
        "subscription_id": subscription_id,
        "product_code": "ACDLT",
        "term": "annual",
        "seats": 2,
        "unit_price": Decimal("420.00"),
        "amount": Decimal("840.00"),
        **changes,
    }
    return OrderLine(**fields)


def order(lines: list[OrderLine], total: str, currency: str = "USD") -> PlaceOrder:
    return PlaceOrder(
        request_id="R-1",
        order_id="O-1",
        csn="5100000001",
        currency=currency,
        purchase_method="direct_online",
        payment_method=PaymentMethod(type="card", recurring=True, valid=True),
        lines=lines,
        total=Decimal(total),
    )


def test_an_order_whose_total_is_the_sum_of_its_lines_passes() -> None:
    lines = [line("S-1"), line("S-2", seats=1, unit_price=Decimal("420.00"), amount=Decimal("378"))]
    assert order_refusals(order(lines, "1218.00")) == []


def test_a_line_may_cost_less_than_its_seats_at_its_unit_price() -> None:
    """Promotions and pro rata (SEAT-1, ALIGN-1) take money off a line; a 100 % promotion leaves
    nothing to pay, and an order of such lines totals zero."""
    assert order_refusals(order([line(amount=Decimal("0.00"))], "0")) == []
    assert order_refusals(order([line(amount=Decimal("123.45"))], "123.45")) == []


@pytest.mark.parametrize(
    "total",
    ["1.00", "839.99", "840.01", "1680.00", "0"],
)
def test_issue_16_a_total_other_than_the_sum_of_the_lines_is_refused(total: str) -> None:
    assert order_refusals(order([line()], total)) == ["TOTAL_MISMATCH"]


def test_an_order_without_lines_is_refused() -> None:
    assert order_refusals(order([], "0")) == ["NO_LINES"]
    assert order_refusals(order([], "10.00")) == ["NO_LINES", "TOTAL_MISMATCH"]


def test_a_line_without_seats_is_refused() -> None:
    assert order_refusals(order([line(seats=0, amount=Decimal(0))], "0")) == ["INVALID_QUANTITY"]


@pytest.mark.parametrize("unit_price", ["0", "0.00"])
def test_a_line_without_a_price_is_refused(unit_price: str) -> None:
    refused = order([line(unit_price=Decimal(unit_price), amount=Decimal(0))], "0")
    assert order_refusals(refused) == ["INVALID_PRICE"]


@pytest.mark.parametrize(
    ("currency", "unit_price", "amount", "expected"),
    [
        ("JPY", "420", "840", []),
        ("JPY", "420.00", "840.00", []),  # written with decimals, still whole yen
        ("JPY", "420.50", "841", ["AMOUNT_PRECISION"]),
        ("USD", "420.005", "840.01", ["AMOUNT_PRECISION"]),
        ("USD", "420.00", "840.001", ["AMOUNT_PRECISION"]),
        ("BHD", "420.005", "840.010", []),  # three decimals in Bahraini dinars
    ],
)
def test_amounts_are_whole_minor_units_of_their_currency(
    currency: str, unit_price: str, amount: str, expected: list[str]
) -> None:
    checked = order(
        [line(unit_price=Decimal(unit_price), amount=Decimal(amount))], amount, currency
    )
    assert order_refusals(checked) == expected


def test_a_currency_iso_4217_does_not_know_is_refused() -> None:
    assert order_refusals(order([line()], "840.00", currency="XYZ")) == ["UNKNOWN_CURRENCY"]


def test_every_reason_that_applies_is_given_in_the_contract_s_order() -> None:
    lines = [line(seats=0, unit_price=Decimal(0), amount=Decimal("1.001"))]
    refusals = order_refusals(order(lines, "5.00"))
    assert refusals == ["INVALID_QUANTITY", "INVALID_PRICE", "TOTAL_MISMATCH", "AMOUNT_PRECISION"]
    assert list(REFUSALS).index("INVALID_QUANTITY") < list(REFUSALS).index("TOTAL_MISMATCH")
    assert refusal_reason(refusals).startswith("order refused: INVALID_QUANTITY, INVALID_PRICE")
