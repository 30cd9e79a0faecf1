"""Renewal's one builder of what it asks billing (services/renewal/billing_orders.py): a priced
line says the same wherever it goes — the order billing charges and a change's answer (issue 17
item 2: one rendering of a price line)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from deploy.local.samples import subscription
from services.renewal.billing_orders import order_line, place_order, priced_line
from services.renewal.subscriptions import Subscription
from shared.eligibility import PriceLine
from shared.eligibility.pricing import PriceBasis

RENEWAL_DATE = date(2026, 4, 1)


def held() -> Subscription:
    snapshot = subscription("S-1", "C-1", renewal_date=RENEWAL_DATE, product_name="AutoCAD LT")
    return Subscription(snapshot, RENEWAL_DATE, "annual", 2, True)


def a_line(discount: Decimal = Decimal("0")) -> PriceLine:
    return PriceLine(
        subscription_id="S-1",
        product_code="ACDLT",
        currency="USD",
        term="annual",
        seats=2,
        basis=PriceBasis.RENEWAL,
        unit_price=Decimal("100.00"),
        prorated_days=None,
        term_days=None,
        promotion_code=None,
        percent_off=None,
        subtotal=Decimal("200.00"),
        discount=discount,
        amount=Decimal("200.00") - discount,
        starts_on=RENEWAL_DATE,
        ends_on=date(2027, 4, 1),
    )


def test_a_line_says_the_same_to_billing_and_in_a_changes_answer() -> None:
    line = a_line(Decimal("20.00"))
    ordered = order_line(line, held()).model_dump(exclude={"product_name"})
    answered = priced_line(line).model_dump(exclude={"discount"})
    assert ordered == answered
    assert ordered["amount"] == Decimal("180.00")
    assert priced_line(line).discount == Decimal("20.00")


def test_the_order_names_the_product_and_charges_the_customers_method() -> None:
    """MAN-2: the order's method, currency and CSN are its subscriptions' (the first one's)."""
    placed = place_order(
        order_id="O-1", request_id="R-1", lines=[(a_line(), held())], total=Decimal("200.00")
    )
    assert [line.product_name for line in placed.lines] == ["AutoCAD LT"]
    assert (placed.csn, placed.currency, placed.total) == ("C-1", "USD", Decimal("200.00"))
    assert placed.payment_method == held().snapshot.payment_method
