"""Renewal dates (LIFE-4) and money (PRICE-1, PRICE-2) as the first renewal flow computes them."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from services.renewal.checks import (
    add_term,
    decide_item,
    renewal_unit_price,
    request_reasons,
    round_money,
)
from services.renewal.subscriptions import Subscription
from shared.catalog.store import StoredPrice
from shared.contracts.common import Actor
from shared.samples import subscription

D = Decimal


@pytest.mark.parametrize(
    ("renewal_date", "term", "next_renewal_date"),
    [
        (date(2025, 3, 15), "monthly", date(2025, 4, 15)),
        (date(2025, 3, 15), "annual", date(2026, 3, 15)),
        (date(2025, 3, 15), "three_year", date(2028, 3, 15)),
        (date(2025, 12, 31), "monthly", date(2026, 1, 31)),
        (date(2025, 11, 30), "monthly", date(2025, 12, 30)),
    ],
)
def test_life_4_the_new_term_starts_at_the_current_renewal_date(
    renewal_date: date, term: str, next_renewal_date: date
) -> None:
    assert add_term(renewal_date, term) == next_renewal_date


@pytest.mark.parametrize(
    ("renewal_date", "term", "next_renewal_date"),
    [
        (date(2025, 1, 31), "monthly", date(2025, 2, 28)),
        (date(2024, 1, 31), "monthly", date(2024, 2, 29)),  # leap year
        (date(2025, 3, 31), "monthly", date(2025, 4, 30)),
        (date(2025, 8, 31), "monthly", date(2025, 9, 30)),
        (date(2024, 2, 29), "annual", date(2025, 2, 28)),
        (date(2024, 2, 29), "three_year", date(2027, 2, 28)),
        (date(2023, 2, 28), "annual", date(2024, 2, 28)),  # not moved to the new leap day
        (date(2025, 2, 28), "three_year", date(2028, 2, 28)),
        (date(2027, 2, 28), "monthly", date(2027, 3, 28)),
    ],
)
def test_life_4_a_day_the_target_month_lacks_is_clamped_to_its_last_day(
    renewal_date: date, term: str, next_renewal_date: date
) -> None:
    assert add_term(renewal_date, term) == next_renewal_date


def test_an_unknown_term_is_refused() -> None:
    with pytest.raises(KeyError):
        add_term(date(2025, 1, 1), "weekly")


@pytest.mark.parametrize(
    ("amount", "currency", "rounded"),
    [
        (D("1179"), "USD", D("1179.00")),
        (D("10.005"), "USD", D("10.01")),  # half up, not banker's rounding
        (D("10.004"), "USD", D("10.00")),
        (D("419.445"), "EUR", D("419.45")),
        (D("1234.5"), "JPY", D("1235")),
        (D("1234.4999"), "JPY", D("1234")),
        (D("46600"), "JPY", D("46600")),
        (D("1.0005"), "KWD", D("1.001")),
    ],
)
def test_money_is_rounded_half_up_to_the_currency_minor_unit(
    amount: Decimal, currency: str, rounded: Decimal
) -> None:
    result = round_money(amount, currency)

    assert result == rounded
    assert result.as_tuple().exponent == rounded.as_tuple().exponent


def test_jpy_has_no_decimals_and_usd_two() -> None:
    assert str(round_money(D("420"), "JPY")) == "420"
    assert str(round_money(D("420"), "USD")) == "420.00"


def stored_price(
    list_price: str = "466.00", renewal_price: str | None = "420.00", currency: str = "USD"
) -> StoredPrice:
    return StoredPrice(
        product_code="ACDLT",
        term="annual",
        currency=currency,
        list_price=D(list_price),
        renewal_price=D(renewal_price) if renewal_price is not None else None,
    )


def test_price_1_the_published_renewal_price_is_the_renewal_price() -> None:
    assert renewal_unit_price(stored_price(renewal_price="420.00")) == D("420.00")


def test_price_1_without_a_renewal_price_the_list_price_less_10_percent() -> None:
    assert renewal_unit_price(stored_price(list_price="466.00", renewal_price=None)) == D("419.40")


def held(seats: int, currency: str = "USD", csn: str = "CSN-1") -> Subscription:
    snapshot = subscription(
        "sub-1", csn, renewal_date=date(2026, 3, 1), seats=seats, currency=currency
    )
    return Subscription(snapshot, snapshot.renewal_date, snapshot.term, seats)


def test_price_2_an_annual_autocad_lt_seat_renews_at_420() -> None:
    prices = {("ACDLT", "annual", "USD"): stored_price()}

    decision = decide_item(Actor(user_id="CSN-1-buyer", csn="CSN-1"), "sub-1", held(3), prices)

    assert decision.allowed
    assert decision.unit_price == D("420.00")
    assert decision.amount == D("1260.00")


@pytest.mark.xfail(
    strict=True,
    reason="bug: services/renewal/checks.py decide_item rounds unit*seats, not the rounded unit",
)
@pytest.mark.parametrize(
    ("list_price", "currency", "seats"),
    [("466.05", "USD", 3), ("1000.50", "JPY", 3)],
)
def test_price_1_a_line_costs_its_shown_unit_price_times_its_seats(
    list_price: str, currency: str, seats: int
) -> None:
    prices = {("ACDLT", "annual", currency): stored_price(list_price, None, currency)}
    actor = Actor(user_id="CSN-1-buyer", csn="CSN-1")

    decision = decide_item(actor, "sub-1", held(seats, currency), prices)

    assert decision.unit_price is not None
    assert decision.amount == decision.unit_price * seats


def test_role_1_only_the_buyer_of_the_subscription_may_renew_it() -> None:
    prices = {("ACDLT", "annual", "USD"): stored_price()}

    stranger = decide_item(Actor(user_id="someone", csn="CSN-1"), "sub-1", held(1), prices)
    other_csn = decide_item(Actor(user_id="CSN-1-buyer", csn="CSN-2"), "sub-1", held(1), prices)

    assert stranger.reasons == ("NOT_AUTHORIZED",)
    assert other_csn.reasons == ("NOT_AUTHORIZED",)


def test_an_unknown_subscription_and_a_missing_price_are_refusals() -> None:
    actor = Actor(user_id="CSN-1-buyer", csn="CSN-1")

    assert decide_item(actor, "sub-9", None, {}).reasons == ("UNKNOWN_SUBSCRIPTION",)
    assert decide_item(actor, "sub-1", held(1), {}).reasons == ("NO_PRICE",)


def test_man_1_up_to_100_subscriptions_at_once() -> None:
    assert request_reasons([f"sub-{i}" for i in range(100)]) == ()
    assert request_reasons([f"sub-{i}" for i in range(101)]) == ("BULK_LIMIT_EXCEEDED",)
    assert request_reasons([]) == ("INVALID_QUANTITY",)
