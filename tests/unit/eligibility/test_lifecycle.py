"""LIFE-1..4: trials, lapse, expiry, and renewal dates that early renewal never moves."""

from datetime import date
from decimal import Decimal

import pytest

from shared.eligibility import QuoteChanges, Reason, SubscriptionState
from shared.eligibility.dates import add_term

from .builders import (
    TODAY,
    add_seats,
    align,
    auto_renew,
    change_terms,
    quote,
    reasons_of,
    renew,
    renewing_in,
)


@pytest.mark.parametrize(
    "decide",
    [
        pytest.param(lambda s: renew(s), id="manual_renewal"),
        pytest.param(lambda s: auto_renew(s), id="auto_renew_on"),
        pytest.param(lambda s: quote(s), id="renewal_quote"),
        pytest.param(lambda s: change_terms(s, term="three_year"), id="change_terms"),
        pytest.param(lambda s: add_seats(s, 2), id="add_seats"),
        pytest.param(lambda s: align(s, target_date=s.renewal_date), id="align_dates"),
    ],
)
def test_life_1_a_trial_can_be_neither_renewed_nor_extended(decide):
    decision = decide(renewing_in(10, status="trial", term="monthly"))
    assert reasons_of(decision) == {"TRIAL_NOT_RENEWABLE"}
    assert not decision.allowed
    assert decision.outcome("S-1").state is SubscriptionState.TRIAL


def test_life_1_a_trial_is_converted_by_a_new_purchase():
    decision = quote(renewing_in(10, status="trial", term="monthly"), kind="new")
    assert decision.allowed
    line = decision.preview.lines[0]
    assert (line.basis, line.unit_price, line.starts_on) == ("list", 60, TODAY)


@pytest.mark.parametrize(
    ("days_after", "state", "renewable"),
    [
        (0, SubscriptionState.LAPSED, True),  # on the renewal date, not renewed: access ends
        (20, SubscriptionState.LAPSED, True),
        (45, SubscriptionState.LAPSED, True),
    ],
)
def test_life_2_a_lapsed_subscription_can_still_be_renewed_during_grace(
    days_after, state, renewable
):
    decision = renew(renewing_in(-days_after))
    assert decision.outcome("S-1").state is state
    assert decision.allowed is renewable


@pytest.mark.parametrize(
    ("sold", "days_after", "expired"),
    [
        ({}, 45, False),
        ({}, 46, True),  # the day after the last day of grace
        ({"country": "JP"}, 30, False),  # only 30 days when no quote nor manual payment applies
        ({"country": "JP"}, 31, True),
    ],
)
def test_life_3_after_grace_the_subscription_is_expired_for_good(sold, days_after, expired):
    sub = renewing_in(-days_after, **sold)
    decision = quote(sub, channel="sales")
    assert (decision.outcome("S-1").state is SubscriptionState.EXPIRED) is expired
    assert ("EXPIRED" in reasons_of(decision)) is expired


def test_life_3_an_expired_subscription_is_bought_again_at_the_new_purchase_price():
    expired = renewing_in(-46)
    refused = renew(expired)
    assert reasons_of(refused) == {"EXPIRED"}
    # What the customer would pay instead: a new purchase, from today, at the list price.
    outcome = refused.outcome("S-1")
    assert (outcome.price_basis, outcome.unit_price.amount) == ("list", Decimal("466.67"))
    bought = quote(expired, kind="new")
    assert bought.allowed
    line = bought.preview.lines[0]
    assert (line.basis, line.amount, line.starts_on) == ("list", Decimal("466.67"), TODAY)
    assert bought.outcome("S-1").next_renewal_date == date(2027, 3, 2)


@pytest.mark.parametrize(
    ("term", "days_to_renewal"),
    [
        *[("annual", days) for days in (90, 60, 1, 0, -1, -45)],
        *[("three_year", days) for days in (90, 1, 0, -45)],
        *[("monthly", days) for days in (28, 1, 0, -25)],
    ],
)
def test_life_4_a_renewal_early_or_in_grace_starts_at_the_current_renewal_date(
    term, days_to_renewal
):
    sub = renewing_in(days_to_renewal, term=term)
    decision = renew(sub)
    assert decision.allowed
    line = decision.preview.lines[0]
    assert line.starts_on == sub.renewal_date
    assert line.ends_on == add_term(sub.renewal_date, term)
    assert decision.outcome("S-1").next_renewal_date == add_term(sub.renewal_date, term)


def test_life_5_a_monthly_renewal_45_days_late_would_end_in_the_past_and_is_refused_expired():
    """LIFE-5: monthly grace ends the day before the missed month would end."""
    sub = renewing_in(-45, term="monthly")
    decision = renew(sub)
    assert not decision.allowed
    assert decision.outcome("S-1").reasons == (Reason.EXPIRED,)


def test_life_4_a_renewal_quote_starts_at_the_renewal_date_too():
    sub = renewing_in(30)
    decision = quote(sub, changes=QuoteChanges(term="three_year"))
    assert decision.preview.lines[0].starts_on == sub.renewal_date
    assert decision.outcome("S-1").next_renewal_date == add_term(sub.renewal_date, "three_year")


@pytest.mark.parametrize(
    ("term", "days_to_renewal", "reasons"),
    [
        ("monthly", 29, set()),  # the term ending in 29 days started two days ago
        ("monthly", 40, {"ALREADY_RENEWED"}),  # it starts in 9 days: it was paid ahead
        ("annual", 300, {"TOO_EARLY"}),
        ("annual", 400, {"TOO_EARLY", "ALREADY_RENEWED"}),
    ],
)
def test_already_renewed_when_the_term_ending_on_the_renewal_date_has_not_started(
    term, days_to_renewal, reasons
):
    assert reasons_of(renew(renewing_in(days_to_renewal, term=term))) == reasons


def test_life_4_renewing_twice_does_not_pay_a_second_term_ahead():
    sub = renewing_in(20, term="monthly")
    renewed_until = renew(sub).outcome("S-1").next_renewal_date
    after_renewal = renewing_in((renewed_until - TODAY).days, term="monthly")
    assert reasons_of(renew(after_renewal)) == {"ALREADY_RENEWED"}
