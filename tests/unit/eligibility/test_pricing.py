"""PRICE-1..3: renewal price vs list price, the worked example, rounding to minor units."""

from datetime import date, timedelta
from decimal import Decimal

import pytest

from shared.eligibility import Price, PriceBasis, QuoteChanges
from shared.eligibility.pricing import find_price, price_line, renewal_unit_price, round_money

from .builders import PRICES, TODAY, change_terms, policy, quote, renew, subscription


def test_price_2_the_worked_example_takes_each_price_from_the_price_list_when_it_applies():
    one_year = subscription(term="annual", renewal_date=date(2026, 4, 15))

    # A 1-year AutoCAD LT renews at 420 a seat a year…
    renewal = renew(one_year, today=date(2026, 3, 1)).outcome("S-1")
    assert (renewal.price_basis, renewal.unit_price.amount) == ("renewal", Decimal("420.00"))

    # …switched to 3-year it renews at 1,179 a seat every 3 years (the renewal price holds)…
    switched = change_terms(one_year, term="three_year", today=date(2026, 3, 1)).outcome("S-1")
    assert (switched.price_basis, switched.unit_price.amount) == ("renewal", Decimal("1179.00"))
    switched_by_quote = quote(
        one_year, changes=QuoteChanges(term="three_year"), today=date(2026, 3, 1)
    ).outcome("S-1")
    assert switched_by_quote.unit_price.amount == Decimal("1179.00")

    # …let lapse past grace and bought new on 3-year it costs 1,310 a seat.
    after_expiry = date(2026, 6, 1)
    assert "EXPIRED" in renew(one_year, today=after_expiry).outcome("S-1").reasons
    bought_new = quote(
        one_year, kind="new", changes=QuoteChanges(term="three_year"), today=after_expiry
    ).outcome("S-1")
    assert (bought_new.price_basis, bought_new.unit_price.amount) == ("list", Decimal("1310.00"))


@pytest.mark.parametrize(
    ("price", "renewal"),
    [
        # The catalog's renewal price wins.
        (Price(product_code="P", term="annual", currency="USD", list_price=Decimal("466.67"),
               renewal_price=Decimal("420.00")), Decimal("420.00")),
        # None published: 10 % off the list price.
        (Price(product_code="P", term="annual", currency="USD", list_price=Decimal("500.00")),
         Decimal("450.00")),
        (Price(product_code="P", term="three_year", currency="USD",
               list_price=Decimal("1310.00")), Decimal("1179.00")),
        # PRICE-3: monthly subscriptions are outside the renewal price.
        (Price(product_code="P", term="monthly", currency="USD", list_price=Decimal("60.00")),
         Decimal("60.00")),
    ],
)  # fmt: skip
def test_price_1_renewing_keeps_the_renewal_price_derived_10_percent_below_the_list_price(
    price, renewal
):
    assert renewal_unit_price(price, policy()) == renewal


def test_price_1_the_renewal_discount_is_a_policy_value():
    price = Price(product_code="P", term="annual", currency="USD", list_price=Decimal("500.00"))
    assert renewal_unit_price(price, policy(renewal_discount_percent=Decimal("12.5"))) == Decimal(
        "437.5"
    )


@pytest.mark.parametrize(
    ("days_to_renewal", "basis", "unit"),
    [
        (30, "renewal", Decimal("420.00")),
        (-45, "renewal", Decimal("420.00")),  # renewing in grace is still before expiry
        (-46, "list", Decimal("466.67")),  # after expiry, bought new: about 10 % more
    ],
)
def test_price_1_an_expired_subscription_bought_again_pays_the_list_price(
    days_to_renewal, basis, unit
):
    sub = subscription(renewal_date=TODAY + timedelta(days=days_to_renewal))
    outcome = renew(sub).outcome("S-1")
    assert (outcome.price_basis, outcome.unit_price.amount) == (basis, unit)


@pytest.mark.parametrize(
    ("currency", "exact", "rounded"),
    [
        ("USD", Decimal("103.565"), Decimal("103.57")),  # half up
        ("USD", Decimal("103.5649"), Decimal("103.56")),
        ("EUR", Decimal("0.005"), Decimal("0.01")),
        ("JPY", Decimal("103990.5"), Decimal("103991")),  # no minor unit
        ("JPY", Decimal("99.4"), Decimal("99")),
        ("KWD", Decimal("1.2345"), Decimal("1.235")),  # three decimals
    ],
)
def test_price_3_amounts_round_once_half_up_to_the_currencys_minor_unit(currency, exact, rounded):
    assert round_money(exact, currency) == rounded
    assert str(round_money(exact, currency)) == str(rounded)


def test_price_3_a_line_computes_exactly_and_rounds_once():
    # 3 seats at 466.67 × 0.9 = 420.003: rounding the unit first would charge 1260.00.
    line = price_line(
        subscription_id="S-1",
        product_code="P",
        currency="USD",
        term="annual",
        seats=3,
        basis=PriceBasis.RENEWAL,
        exact_unit_price=Decimal("466.67") * Decimal("0.9"),
        starts_on=TODAY,
        ends_on=TODAY,
    )
    assert (line.unit_price, line.amount) == (Decimal("420.00"), Decimal("1260.01"))


def test_price_lookup_is_by_product_term_and_currency():
    assert find_price(PRICES, "ACDLT", "annual", "EUR").list_price == Decimal("500.00")
    assert find_price(PRICES, "ACDLT", "three_year", "EUR") is None
    assert find_price(PRICES, "REVIT", "annual", "USD") is None


def test_no_price_refuses_the_renewal():
    decision = renew(subscription(product_code="REVIT", renewal_date=date(2026, 4, 15)))
    assert [r.value for r in decision.outcome("S-1").reasons] == ["NO_PRICE"]
    assert decision.outcome("S-1").total is None
