"""Term arithmetic and the boundaries of the window, grace, lapse and expiry."""

from datetime import date, timedelta

import pytest

from shared.eligibility import SubscriptionState, expires_on, grace_ends, state_of, term_start
from shared.eligibility.dates import add_term, days_in_term, window_opens

from .builders import TODAY, policy, renewing_in, subscription


@pytest.mark.parametrize(
    ("start", "term", "count", "expected"),
    [
        (date(2025, 1, 31), "monthly", 1, date(2025, 2, 28)),  # 31 January + one month
        (date(2024, 1, 31), "monthly", 1, date(2024, 2, 29)),  # … in a leap year
        (date(2025, 3, 31), "monthly", 1, date(2025, 4, 30)),
        (date(2025, 12, 31), "monthly", 1, date(2026, 1, 31)),
        (date(2025, 3, 31), "monthly", -1, date(2025, 2, 28)),
        (date(2024, 2, 29), "annual", 1, date(2025, 2, 28)),  # 29 February + one year
        (date(2024, 2, 29), "three_year", 1, date(2027, 2, 28)),
        (date(2024, 2, 29), "annual", 4, date(2028, 2, 29)),
        (date(2023, 2, 28), "annual", 1, date(2024, 2, 28)),
        (date(2025, 4, 15), "annual", 1, date(2026, 4, 15)),
        (date(2026, 4, 15), "three_year", 1, date(2029, 4, 15)),
        (date(2026, 4, 15), "annual", -1, date(2025, 4, 15)),
    ],
)
def test_term_arithmetic_by_calendar_month_with_end_of_month_clamping(start, term, count, expected):
    assert add_term(start, term, count) == expected


@pytest.mark.parametrize(
    ("renewal_date", "term", "days"),
    [
        (date(2025, 4, 15), "annual", 365),
        (date(2024, 4, 15), "annual", 366),  # the term holds 29 February 2024
        (date(2025, 3, 1), "monthly", 28),
        (date(2024, 3, 1), "monthly", 29),
        (date(2026, 4, 15), "three_year", 1096),
    ],
)
def test_days_in_term_count_leap_days(renewal_date, term, days):
    assert days_in_term(renewal_date, term) == days
    assert term_start(renewal_date, term) == renewal_date - timedelta(days=days)


@pytest.mark.parametrize(
    ("days_to_renewal", "state"),
    [
        (91, SubscriptionState.ACTIVE),
        (90, SubscriptionState.WINDOW_OPEN),
        (1, SubscriptionState.WINDOW_OPEN),
        (0, SubscriptionState.LAPSED),  # LIFE-2: the renewal date passes without a renewal
        (-45, SubscriptionState.LAPSED),  # the last day of grace
        (-46, SubscriptionState.EXPIRED),  # the day after
    ],
)
def test_state_from_dates(days_to_renewal, state):
    assert state_of(renewing_in(days_to_renewal), TODAY, policy()) is state


def test_a_trial_is_in_the_trial_state_whatever_its_dates():
    assert state_of(renewing_in(-400, status="trial"), TODAY, policy()) is SubscriptionState.TRIAL


def test_window_and_grace_dates():
    sub = subscription(renewal_date=date(2026, 4, 15))
    assert window_opens(sub.renewal_date, policy()) == date(2026, 1, 15)
    assert grace_ends(sub, policy()) == date(2026, 5, 30)
    assert expires_on(sub, policy()) == date(2026, 5, 31)


def test_policy_moves_the_window_and_grace():
    sub = subscription(renewal_date=date(2026, 4, 15))
    assert window_opens(sub.renewal_date, policy(window_opens_days_before=60)) == date(2026, 2, 14)
    assert grace_ends(sub, policy(grace_days_quote_or_manual=50)) == date(2026, 6, 4)
    # LIFE-3: grace ends with the longest-lasting method, here the automatic one.
    assert grace_ends(sub, policy(grace_days_quote_or_manual=10)) == date(2026, 5, 15)
