"""Renewal's one builder of what it asks billing (services/renewal/billing_orders.py): a priced
line says the same wherever it goes — the order billing charges and a change's answer (issue 17
item 2: one rendering of a price line)."""

from __future__ import annotations

from datetime import date

from deploy.local.samples import subscription
from services.renewal.billing_orders import order_line, place_order, priced_line
from services.renewal.subscriptions import Subscription
from shared.eligibility import PriceLine, Promotion
from tests.unit.eligibility import builders
from tests.unit.eligibility.builders import renew

RENEWAL_DATE = date(2026, 4, 1)


def held() -> Subscription:
    snapshot = subscription("S-1", "C-1", renewal_date=RENEWAL_DATE, product_name="AutoCAD LT")
    return Subscription(snapshot, RENEWAL_DATE, "annual", 2, True)


def a_line(*promotions: Promotion) -> PriceLine:
    """The line a manual renewal of S-1 (2 seats) is priced at, under these promotions."""
    decision = renew(builders.renewing_in(30, seats=2), promotions=promotions)
    assert decision.preview is not None
    [line] = decision.preview.lines
    return line


def test_a_line_says_the_same_to_billing_and_in_a_changes_answer() -> None:
    line = a_line(builders.promotion(starts_on=builders.TODAY, ends_on=builders.TODAY))
    assert line.discount > 0
    ordered = order_line(line, held()).model_dump(exclude={"product_name"})
    answered = priced_line(line).model_dump(exclude={"discount"})
    assert ordered == answered
    assert (ordered["seats"], ordered["amount"]) == (2, line.amount)
    assert priced_line(line).discount == line.discount


def test_the_order_names_the_product_and_charges_the_customers_method() -> None:
    """MAN-2: the order's method, currency and CSN are its subscriptions' (the first one's)."""
    line = a_line()
    placed = place_order(
        order_id="O-1", request_id="R-1", lines=[(line, held())], total=line.amount
    )
    assert [line.product_name for line in placed.lines] == ["AutoCAD LT"]
    assert (placed.csn, placed.currency, placed.total) == ("C-1", "USD", line.amount)
    assert placed.payment_method == held().snapshot.payment_method
