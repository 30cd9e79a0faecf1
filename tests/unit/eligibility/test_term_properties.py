"""Term arithmetic over generated dates (hypothesis): month ends, 29 February, and a paid
renewal never ending in the past (LIFE-4, LIFE-5, issue 14 item 3)."""

from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.eligibility import grace_ends, settle_paid_renewal, term_start
from shared.eligibility.dates import add_months, add_term

from .builders import policy, subscription

TERMS = st.sampled_from(["monthly", "annual", "three_year"])
DAYS = st.dates(min_value=date(2000, 1, 1), max_value=date(2090, 12, 31))
PROPERTIES = settings(max_examples=200, deadline=None)


@PROPERTIES
@given(day=DAYS, months=st.integers(min_value=0, max_value=120))
def test_a_month_end_stays_in_its_target_month_and_never_overflows(day, months):
    later = add_months(day, months)
    assert (later.year * 12 + later.month) - (day.year * 12 + day.month) == months
    assert later.day == day.day or later.day < day.day  # clamped to the month's last day
    if later.day < day.day:
        assert (later + timedelta(days=1)).day == 1  # only ever onto the last day


@PROPERTIES
@given(year=st.integers(min_value=2000, max_value=2090).filter(lambda y: y % 4 == 0), term=TERMS)
def test_29_february_lands_on_the_last_day_of_february_when_the_year_has_none(year, term):
    leap_day = date(year, 2, 29)
    later = add_term(leap_day, term)
    if term == "monthly":
        assert later == date(year, 3, 29)
    else:
        assert later.month == 2 and later.day in (28, 29)
        assert (later + timedelta(days=1)).month == 3


@PROPERTIES
@given(day=DAYS, term=TERMS)
def test_a_term_is_never_empty_and_its_start_is_before_its_end(day, term):
    assert term_start(day, term) < day < add_term(day, term)


@PROPERTIES
@given(renewal_date=DAYS, term=TERMS, days_after=st.integers(min_value=-90, max_value=400))
def test_life_4_life_5_a_paid_renewal_starts_at_the_renewal_date_and_ends_after_today(
    renewal_date, term, days_after
):
    sub = subscription(
        renewal_date=renewal_date, term=term, start_date=term_start(renewal_date, term)
    )
    today = renewal_date + timedelta(days=days_after)
    paid = settle_paid_renewal(sub, renewal_date, today, policy())
    if today > grace_ends(sub, policy()):
        assert paid.refund is not None and paid.renewal_date is None  # expired stays expired
    else:
        assert paid.starts_on == renewal_date  # LIFE-4, early or in grace
        assert paid.renewal_date == add_term(renewal_date, term)
        assert paid.renewal_date > today  # LIFE-5: never a term already over
