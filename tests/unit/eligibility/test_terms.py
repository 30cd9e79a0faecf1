"""One owner of a subscription's terms (issue 14): reservations, and what a paid renewal does
(LIFE-3, LIFE-4, LIFE-5), with properties over the term arithmetic (month ends, 29 February)."""

from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.eligibility import (
    Quote,
    Reason,
    RefundReason,
    Reservation,
    abandoned_refusal,
    decide_cancel_quote,
    decide_manual_renewal,
    grace_ends,
    quote_order_reasons,
    quote_took_effect,
    refund_answers_request,
    refund_refusal,
    reservation_reasons,
    settle_paid_quote,
    settle_paid_renewal,
)
from shared.eligibility.dates import add_term
from shared.eligibility.schedules import quote_holds_automatic_renewal

from .builders import ACTOR, PRICES, TODAY, policy, renewing_in, subscription

PROPERTIES = settings(max_examples=300, deadline=None)
terms = st.sampled_from(["monthly", "annual", "three_year"])
renewal_dates = st.dates(min_value=date(2023, 1, 1), max_value=date(2031, 12, 31))


def _reservation(sub, order_id="O-1"):
    return Reservation(
        subscription_id=sub.subscription_id, order_id=order_id, term_start=sub.renewal_date
    )


def test_renewal_in_progress_while_another_order_for_the_subscription_is_open():
    sub = renewing_in(10)
    assert reservation_reasons(sub, _reservation(sub)) == [Reason.RENEWAL_IN_PROGRESS]
    assert reservation_reasons(sub, None) == []


def test_already_renewed_once_the_renewal_date_moved_past_the_term_asked_for():
    sub = renewing_in(10)
    renewed = subscription(renewal_date=add_term(sub.renewal_date, "annual"))
    assert reservation_reasons(renewed, None, term_start=sub.renewal_date) == [
        Reason.ALREADY_RENEWED
    ]
    assert reservation_reasons(sub, None, term_start=sub.renewal_date) == []


def test_man_1_a_manual_renewal_is_refused_renewal_in_progress_while_an_order_is_open():
    sub = renewing_in(10)
    decision = decide_manual_renewal(
        ACTOR,
        [sub],
        ["S-1"],
        prices=PRICES,
        promotions=[],
        today=TODAY,
        policy=policy(),
        reservations={"S-1": _reservation(sub)},
    )
    assert not decision.allowed
    assert decision.outcome("S-1").reasons == (Reason.RENEWAL_IN_PROGRESS,)
    assert decision.groups == ()


def test_life_4_a_paid_renewal_in_grace_starts_at_the_old_renewal_date():
    sub = renewing_in(-10)
    paid = settle_paid_renewal(sub, sub.renewal_date, TODAY, policy())
    assert paid.refund is None
    assert (paid.starts_on, paid.renewal_date) == (
        sub.renewal_date,
        add_term(sub.renewal_date, "annual"),
    )


def test_life_3_life_5_money_after_grace_goes_back_and_the_subscription_stays_expired():
    sub = renewing_in(-31, term="monthly")
    assert settle_paid_renewal(sub, sub.renewal_date, TODAY, policy()).refund == (
        RefundReason.EXPIRED
    )


def test_money_for_a_released_reservation_or_a_term_bought_by_another_order_goes_back():
    sub = renewing_in(5)
    assert settle_paid_renewal(sub, None, TODAY, policy()).refund == (
        RefundReason.RESERVATION_RELEASED
    )
    earlier = sub.renewal_date - timedelta(days=365)
    assert settle_paid_renewal(sub, earlier, TODAY, policy()).refund == (
        RefundReason.ALREADY_RENEWED
    )


def test_life_5_monthly_grace_ends_the_day_before_the_missed_month_would_end():
    sub = subscription(term="monthly", renewal_date=date(2026, 1, 31))
    assert grace_ends(sub, policy()) == date(2026, 2, 27)
    annual = subscription(term="annual", renewal_date=date(2026, 1, 31))
    assert grace_ends(annual, policy()) == date(2026, 3, 17)  # 45 days: the policy's


@PROPERTIES
@given(term=terms, renewal_date=renewal_dates, late=st.integers(min_value=-120, max_value=60))
def test_life_5_a_paid_renewal_never_ends_on_or_before_today(term, renewal_date, late):
    """Whatever the term, month end or 29 February: renewed means ending after today."""
    sub = subscription(term=term, renewal_date=renewal_date)
    today = renewal_date + timedelta(days=late)
    paid = settle_paid_renewal(sub, renewal_date, today, policy())
    if paid.refund is None:
        assert paid.starts_on == renewal_date  # LIFE-4
        assert paid.renewal_date is not None and paid.renewal_date > today  # LIFE-5
    else:
        assert paid.refund == RefundReason.EXPIRED and today > grace_ends(sub, policy())


@PROPERTIES
@given(term=terms, renewal_date=renewal_dates)
def test_a_term_ends_on_the_same_day_of_month_or_the_last_day_of_a_shorter_month(
    term, renewal_date
):
    ends = add_term(renewal_date, term)
    months = {"monthly": 1, "annual": 12, "three_year": 36}[term]
    assert (ends.year * 12 + ends.month) - (renewal_date.year * 12 + renewal_date.month) == months
    if ends.day != renewal_date.day:  # 31 Jan → 28/29 Feb, 29 Feb → 28 Feb
        assert ends.day < renewal_date.day
        assert (ends + timedelta(days=1)).day == 1  # the last day of its month
    assert ends > renewal_date


def test_29_february_renewed_annually_ends_on_28_february_then_back_on_29():
    leap = date(2028, 2, 29)
    assert add_term(leap, "annual") == date(2029, 2, 28)
    assert add_term(date(2027, 2, 28), "annual") == date(2028, 2, 28)
    assert add_term(leap, "three_year") == date(2031, 2, 28)
    assert add_term(date(2028, 1, 29), "monthly") == leap


def test_quo_8_a_quote_order_is_refused_when_its_term_was_bought_or_is_being_bought():
    sub = renewing_in(10)
    start = {"S-1": sub.renewal_date}
    kwargs = {"kind": "renewal", "today": TODAY, "policy": policy()}
    assert quote_order_reasons({"S-1": sub}, {}, start, **kwargs) == []
    assert quote_order_reasons({"S-1": sub}, {"S-1": _reservation(sub)}, start, **kwargs) == [
        Reason.RENEWAL_IN_PROGRESS
    ]
    renewed = subscription(renewal_date=add_term(sub.renewal_date, "annual"))
    assert quote_order_reasons({"S-1": renewed}, {}, start, **kwargs) == [Reason.ALREADY_RENEWED]
    expired = renewing_in(-60)
    assert quote_order_reasons({"S-1": expired}, {}, {"S-1": expired.renewal_date}, **kwargs) == [
        Reason.EXPIRED
    ]
    assert quote_order_reasons({"S-2": None}, {}, {}, **kwargs) == [Reason.UNKNOWN_SUBSCRIPTION]


def test_quo_3_an_alignment_order_is_refused_once_its_dates_moved_a_new_purchase_is_not():
    """QUO-3: an alignment was priced for the renewal date it extends; a new purchase buys a
    new subscription, so the quoted one having been renewed or having expired holds it not."""
    sub = renewing_in(10)
    start = {"S-1": sub.renewal_date}
    renewed = subscription(renewal_date=add_term(sub.renewal_date, "annual"))
    expired = renewing_in(-60)
    by_kind = {"today": TODAY, "policy": policy()}
    assert quote_order_reasons({"S-1": renewed}, {}, start, kind="alignment", **by_kind) == [
        Reason.ALREADY_RENEWED
    ]
    assert quote_order_reasons(
        {"S-1": expired}, {}, {"S-1": expired.renewal_date}, kind="alignment", **by_kind
    ) == [Reason.EXPIRED]
    assert quote_order_reasons({"S-1": renewed}, {}, start, kind="new", **by_kind) == []
    assert quote_order_reasons({"S-1": expired}, {}, start, kind="new", **by_kind) == []
    assert quote_order_reasons(
        {"S-1": sub}, {"S-1": _reservation(sub)}, start, kind="new", **by_kind
    ) == [Reason.RENEWAL_IN_PROGRESS]


def test_quo_5_an_accepted_quote_can_not_be_cancelled():
    quote = Quote(quote_number="Q-1", csn="CSN-100", expires_on=TODAY, accepted=True)
    decision = decide_cancel_quote(ACTOR, quote, channel="sales", today=TODAY)
    assert not decision.allowed
    assert decision.reasons == (Reason.QUOTE_ALREADY_ACCEPTED,)


def test_auto_5_only_an_open_quote_that_changes_the_renewal_holds_the_automatic_renewal():
    sub = renewing_in(10, auto_renew=True, seats=3)
    assert not quote_holds_automatic_renewal(sub, [])
    assert not quote_holds_automatic_renewal(sub, [("annual", 3)])  # QUO-7: changes nothing
    assert quote_holds_automatic_renewal(sub, [("three_year", 3)])
    assert quote_holds_automatic_renewal(sub, [("annual", 2)])


def test_life_3_issue_19_the_refusal_for_money_that_went_back_says_why_it_went_back():
    """Only money after expiry is refused EXPIRED (LIFE-3); an order abandoned by its pay-by
    date is refused as a payment that did not go through, the subscription still renewable."""
    assert refund_refusal(RefundReason.EXPIRED) == Reason.EXPIRED
    assert refund_refusal(RefundReason.ALREADY_RENEWED) == Reason.ALREADY_RENEWED
    assert refund_refusal(RefundReason.RESERVATION_RELEASED) == Reason.PAYMENT_METHOD_INVALID
    assert refund_refusal(RefundReason.UNKNOWN_SUBSCRIPTION) == Reason.UNKNOWN_SUBSCRIPTION


def test_issue_19_an_abandoned_order_is_answered_at_its_release_and_its_late_money_not_again():
    """Released unpaid at its pay-by date: the request is refused as a payment that did not go
    through; money after that goes back without a second answer (one answer per command);
    every other cause of a refund is the request's answer."""
    assert abandoned_refusal() == Reason.PAYMENT_METHOD_INVALID
    assert refund_refusal(RefundReason.RESERVATION_RELEASED) == abandoned_refusal()
    assert not refund_answers_request(RefundReason.RESERVATION_RELEASED, held=False)


def test_life_3_issue_19_money_for_an_order_let_go_is_not_answered_again():
    """The order was let go before its money came (abandoned, or at expiry): its release
    answered the request. Money for an order still held is answered; so is a subscription the
    product does not hold, which held nothing and heard nothing."""
    assert not refund_answers_request(RefundReason.EXPIRED, held=False)  # let go at expiry
    for refund in (RefundReason.EXPIRED, RefundReason.ALREADY_RENEWED):
        assert refund_answers_request(refund, held=True)
    assert refund_answers_request(RefundReason.UNKNOWN_SUBSCRIPTION, held=False)


def test_issue_19_money_for_a_subscription_not_held_goes_back_whatever_the_kind():
    """An order naming a subscription the product does not hold bought nothing."""
    assert settle_paid_renewal(None, TODAY, TODAY, policy()).refund == (
        RefundReason.UNKNOWN_SUBSCRIPTION
    )
    for kind in ("renewal", "alignment", "new"):
        paid = settle_paid_quote(kind, None, TODAY, TODAY, policy(), target_date=TODAY)
        assert paid.refund == RefundReason.UNKNOWN_SUBSCRIPTION


def test_quo_3_a_quote_is_paid_when_its_money_bought_something():
    """Every line's money went back: the quote is not paid; one line took effect: it is."""
    assert not quote_took_effect(["S-1", "S-2"], {"S-1", "S-2"})
    assert quote_took_effect(["S-1", "S-2"], {"S-2"})
    assert quote_took_effect(["S-1"], set())
