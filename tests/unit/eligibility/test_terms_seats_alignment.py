"""TERM-1, SEAT-1, SEAT-2, ALIGN-1: the next renewal's term and seats, seats now, aligned dates."""

from datetime import date, timedelta
from decimal import Decimal

import pytest

from shared.eligibility import PaymentMethod, seats_after_addition

from .builders import (
    TODAY,
    add_seats,
    align,
    change_terms,
    codes,
    promotion,
    reasons_of,
    renewing_in,
    subscription,
)


@pytest.mark.parametrize(
    ("term", "unit_price", "ends_on"),
    [
        ("monthly", Decimal("60.00"), date(2026, 5, 15)),  # PRICE-3: monthly at the list price
        ("annual", Decimal("420.00"), date(2027, 4, 15)),
        ("three_year", Decimal("1179.00"), date(2029, 4, 15)),
    ],
)
def test_term_1_the_next_renewal_can_switch_to_monthly_annual_or_three_year(
    term, unit_price, ends_on
):
    sub = subscription(renewal_date=date(2026, 4, 15))
    decision = change_terms(sub, term=term)
    assert decision.allowed
    line = decision.preview.lines[0]
    assert (line.term, line.unit_price, line.starts_on, line.ends_on) == (
        term,
        unit_price,
        date(2026, 4, 15),
        ends_on,
    )
    assert decision.outcome("S-1").next_renewal_date == date(2026, 4, 15)  # unchanged until then


def test_term_1_no_price_for_the_new_term_is_refused():
    sub = renewing_in(30, currency="EUR", country="FR")  # EUR has only an annual price
    assert reasons_of(change_terms(sub, term="three_year")) == {"NO_PRICE"}


@pytest.mark.parametrize(
    ("seats", "request_reasons", "total"),
    [
        (5, [], Decimal("2100.00")),
        (1, [], Decimal("420.00")),  # seats can be reduced for the next renewal
        (0, ["INVALID_QUANTITY"], None),
        (-2, ["INVALID_QUANTITY"], None),
    ],
)
def test_seat_2_seats_can_be_changed_for_the_next_renewal(seats, request_reasons, total):
    decision = change_terms(renewing_in(30, seats=3), seats=seats)
    assert codes(decision.reasons) == request_reasons
    if total is not None:
        assert decision.outcome("S-1").total.amount == total


def test_seat_2_changing_nothing_is_an_invalid_quantity():
    assert codes(change_terms(renewing_in(30)).reasons) == ["INVALID_QUANTITY"]


@pytest.mark.parametrize(
    ("today", "renewal_date", "seats", "days", "total"),
    [
        # 45 of 365 days left: 420.00 × 2 × 45 / 365 = 103.561… → 103.56
        (date(2026, 3, 1), date(2026, 4, 15), 2, (45, 365), Decimal("103.56")),
        # The first day of the term: a full term.
        (date(2025, 4, 15), date(2026, 4, 15), 1, (365, 365), Decimal("420.00")),
        # The last day of the term: one day.
        (date(2026, 4, 14), date(2026, 4, 15), 1, (1, 365), Decimal("1.15")),
        # A leap year's term has 366 days.
        (date(2024, 3, 1), date(2024, 4, 15), 1, (45, 366), Decimal("51.64")),
    ],
)
def test_seat_1_added_seats_are_charged_pro_rata_for_the_days_left(
    today, renewal_date, seats, days, total
):
    sub = subscription(renewal_date=renewal_date, start_date=renewal_date - timedelta(days=365))
    decision = add_seats(sub, seats, today=today)
    assert decision.allowed
    outcome = decision.outcome("S-1")
    assert outcome.unit_price.amount == Decimal("420.00")  # one seat, a full term
    assert outcome.total.amount == total
    line = decision.preview.lines[0]
    assert (line.prorated_days, line.term_days) == days
    assert (line.starts_on, line.ends_on) == (today, renewal_date)
    assert outcome.next_renewal_date == renewal_date  # all seats renew together


def test_seat_1_in_yen_there_is_no_minor_unit():
    sub = renewing_in(213, currency="JPY", country="US", seats=4)
    total = add_seats(sub, 3).outcome("S-1").total
    assert (total.amount, total.currency) == (Decimal("103991"), "JPY")  # 59400×3×213/365


def test_seat_1_promotions_apply_to_added_seats():
    sub = subscription(renewal_date=date(2026, 4, 15))
    decision = add_seats(sub, 2, today=date(2026, 3, 1), promotions=(promotion("10"),))
    # Rounded once: 103.5616… × 0.9 = 93.205… → 93.21, where rounding twice would give 93.20.
    assert decision.outcome("S-1").total.amount == Decimal("93.21")


@pytest.mark.parametrize(
    ("sub", "seats", "reasons", "request_reasons"),
    [
        (renewing_in(30), 0, set(), ["INVALID_QUANTITY"]),
        (renewing_in(30), -1, set(), ["INVALID_QUANTITY"]),
        (renewing_in(0), 1, {"EXPIRED"}, []),  # the term has ended: renew first
        (renewing_in(-50), 1, {"EXPIRED"}, []),
        (renewing_in(30, status="trial"), 1, {"TRIAL_NOT_RENEWABLE"}, []),
        (renewing_in(30, country="CN"), 1, {"SELF_SERVICE_UNAVAILABLE_COUNTRY"}, []),
        (renewing_in(30, product_code="REVIT"), 1, {"NO_PRICE"}, []),
    ],
)
def test_seat_1_only_an_eligible_running_term_takes_seats(sub, seats, reasons, request_reasons):
    decision = add_seats(sub, seats)
    assert reasons_of(decision) == reasons
    assert codes(decision.reasons) == request_reasons


def test_seat_1_seats_can_be_added_after_an_early_renewal_for_the_term_left_and_the_one_ahead():
    """SEAT-1 "at any time": renewed early (LIFE-4), the renewal date is a term ahead of the
    running one; the seats added now are charged for the rest of the running term plus the
    whole term paid ahead, and renew with the others on the renewal date."""
    # Renewed early: the running term ends 2026-04-15, the paid one on 2027-04-15.
    sub = subscription(renewal_date=date(2027, 4, 15), start_date=date(2025, 4, 15))
    decision = add_seats(sub, 2, today=date(2026, 3, 1))
    assert decision.allowed
    line = decision.preview.lines[0]
    assert (line.prorated_days, line.term_days) == (365 + 45, 365)
    # 420.00 × 2 × 410 / 365 = 943.56…
    assert decision.outcome("S-1").total.amount == Decimal("943.56")
    assert decision.outcome("S-1").next_renewal_date == date(2027, 4, 15)


@pytest.mark.parametrize(
    ("seats", "next_seats", "added", "after"),
    [
        (5, None, 2, (7, None)),  # no change set for the next term: it renews with all 7
        (5, 3, 2, (7, 5)),  # SEAT-2: reduced to 3 for the next term, the 2 paid now stay
    ],
)
def test_seat_2_seats_added_after_a_reduction_are_added_to_the_next_term_too(
    seats, next_seats, added, after
):
    sub = subscription(seats=seats, next_seats=next_seats)
    assert seats_after_addition(sub, added) == after


@pytest.mark.parametrize(
    ("second", "reasons"),
    [
        ({}, []),
        ({"term": "monthly"}, ["TERM_MISMATCH"]),
        ({"payment_method": PaymentMethod(type="paypal", recurring=True, valid=True)},
         ["PAYMENT_METHOD_MISMATCH"]),
        ({"term": "three_year", "payment_method": PaymentMethod(type="invoice", recurring=True,
                                                                valid=True)},
         ["TERM_MISMATCH", "PAYMENT_METHOD_MISMATCH"]),
        ({"currency": "EUR", "country": "FR"}, ["MIXED_CURRENCY"]),
        # ALIGN-1: the same method, not only the same type.
        ({"payment_method": PaymentMethod(type="card", recurring=False, valid=True)},
         ["PAYMENT_METHOD_MISMATCH"]),
        ({"payment_method": PaymentMethod(type="card", recurring=True, valid=False)},
         ["PAYMENT_METHOD_MISMATCH"]),
    ],
)  # fmt: skip
def test_align_1_payment_dates_align_only_with_the_same_term_and_payment_method(second, reasons):
    first = renewing_in(30, "S-1")
    other = renewing_in(20, "S-2", **second)
    decision = align(first, other, target_date=first.renewal_date)
    assert codes(decision.reasons) == reasons
    assert decision.allowed is not reasons


def test_align_1_the_shared_method_must_be_valid():
    broken = PaymentMethod(type="card", recurring=True, valid=False)
    decision = align(
        renewing_in(30, "S-1", payment_method=broken),
        renewing_in(20, "S-2", payment_method=broken),
        target_date=TODAY + timedelta(days=30),
    )
    assert not decision.allowed
    assert codes(decision.reasons) == []  # one method: no mismatch, but not a valid one
    assert reasons_of(decision, "S-1") == reasons_of(decision, "S-2") == {"PAYMENT_METHOD_INVALID"}


def test_align_1_the_extension_is_charged_pro_rata_and_moves_the_renewal_date():
    early = subscription("S-1", seats=2, renewal_date=date(2026, 4, 15))
    late = subscription("S-2", renewal_date=date(2026, 7, 15))
    decision = align(early, late, target_date=date(2026, 7, 15))
    assert decision.allowed
    # 91 of 365 days at 420.00 for 2 seats = 209.424… → 209.42; the other one is the anchor.
    assert [(line.subscription_id, line.amount) for line in decision.preview.lines] == [
        ("S-1", Decimal("209.42")),
        ("S-2", Decimal("0.00")),
    ]
    assert decision.outcome("S-1").next_renewal_date == date(2026, 7, 15)
    assert [g.total.amount for g in decision.groups] == [Decimal("209.42")]


@pytest.mark.parametrize(
    ("target_date", "reasons"),
    [
        (date(2026, 4, 14), {"INVALID_QUANTITY"}),  # before the renewal date
        (date(2026, 4, 15), set()),
        (date(2027, 4, 15), set()),  # one full term
        (date(2027, 4, 16), {"INVALID_QUANTITY"}),  # more than a term
    ],
)
def test_align_1_the_target_is_within_one_term_after_the_renewal_date(target_date, reasons):
    sub = subscription(renewal_date=date(2026, 4, 15))
    assert reasons_of(align(sub, target_date=target_date)) == reasons


def test_align_1_no_subscription_is_an_invalid_quantity():
    assert codes(align(target_date=TODAY, ids=[]).reasons) == ["INVALID_QUANTITY"]
