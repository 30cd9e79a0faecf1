"""AUTO-1..5: automatic renewal and its switch."""

from datetime import timedelta

import pytest

from shared.eligibility import PaymentMethod, QuoteChanges, quote_suspends_auto_renew
from shared.eligibility.schedules import renews_automatically

from .builders import TODAY, auto_renew, codes, policy, quote, reasons_of, renewing_in


@pytest.mark.parametrize(
    ("auto_renew_on", "payment_method", "renews"),
    [
        (True, PaymentMethod(type="card", recurring=True, valid=True), True),
        (False, PaymentMethod(type="card", recurring=True, valid=True), False),
        (True, PaymentMethod(type="card", recurring=True, valid=False), False),
        (True, PaymentMethod(type="paypal", recurring=False, valid=True), False),
        (True, PaymentMethod(type="direct_debit", recurring=True, valid=True), True),
        (True, PaymentMethod(type="bank_transfer", recurring=True, valid=True), False),
    ],
)
def test_auto_1_renews_automatically_only_when_on_with_a_valid_recurring_method(
    auto_renew_on, payment_method, renews
):
    sub = renewing_in(10, auto_renew=auto_renew_on, payment_method=payment_method)
    assert renews_automatically(sub, policy()) is renews


@pytest.mark.parametrize(
    ("payment_method", "reasons"),
    [
        (PaymentMethod(type="card", recurring=True, valid=True), set()),
        (PaymentMethod(type="card", recurring=True, valid=False), {"PAYMENT_METHOD_INVALID"}),
        (PaymentMethod(type="card", recurring=False, valid=True), {"PAYMENT_METHOD_INVALID"}),
    ],
)
def test_auto_1_switching_on_needs_a_valid_recurring_payment_method(payment_method, reasons):
    assert reasons_of(auto_renew(renewing_in(200, payment_method=payment_method))) == reasons


@pytest.mark.parametrize(
    ("count", "reasons"),
    [
        (1, []),
        (100, []),
        (101, ["BULK_LIMIT_EXCEEDED"]),
        (0, ["INVALID_QUANTITY"]),
    ],
)
def test_auto_2_one_subscription_or_up_to_100_at_once(count, reasons):
    subs = [renewing_in(30, f"S-{i}") for i in range(count)]
    decision = auto_renew(*subs)
    assert codes(decision.reasons) == reasons
    assert decision.allowed is not reasons


@pytest.mark.parametrize(
    ("days_to_renewal", "reasons"),
    [
        (400, set()),  # any time before the renewal date, even before the window
        (1, set()),
        (0, set()),  # on the renewal date, during grace: stops further attempts
        (-45, set()),
        (-46, {"EXPIRED"}),
    ],
)
def test_auto_3_auto_renew_can_be_cancelled_at_any_time_before_the_renewal_date(
    days_to_renewal, reasons
):
    sub = renewing_in(days_to_renewal, auto_renew=True)
    decision = auto_renew(sub, enabled=False)
    assert reasons_of(decision) == reasons
    assert decision.outcome("S-1").next_renewal_date == sub.renewal_date


@pytest.mark.parametrize(
    ("method", "reasons"),
    [
        ("alipay", {"MANUAL_RENEWAL_REQUIRED"}),
        ("convenience_store", {"MANUAL_RENEWAL_REQUIRED"}),
        ("bank_transfer", {"MANUAL_RENEWAL_REQUIRED"}),
        ("atm_transfer", {"MANUAL_RENEWAL_REQUIRED"}),
        ("card", set()),
        ("paypal", set()),
        ("direct_debit", set()),
        ("invoice", set()),
    ],
)
def test_auto_4_some_payment_methods_require_manual_renewal(method, reasons):
    sub = renewing_in(30, payment_method=PaymentMethod(type=method, recurring=True, valid=True))
    assert reasons_of(auto_renew(sub)) == reasons


def test_auto_4_a_manual_only_method_that_is_also_invalid_gets_both_reasons():
    sub = renewing_in(30, payment_method=PaymentMethod(type="alipay", recurring=False, valid=False))
    assert codes(auto_renew(sub).outcome("S-1").reasons) == [
        "MANUAL_RENEWAL_REQUIRED",
        "PAYMENT_METHOD_INVALID",
    ]


@pytest.mark.parametrize(
    ("auto_renew_on", "changes", "advised"),
    [
        (True, QuoteChanges(term="three_year"), True),
        (True, QuoteChanges(seats=4), True),
        (True, QuoteChanges(), False),  # the same renewal: nothing to process wrongly
        (False, QuoteChanges(term="three_year"), False),
    ],
)
def test_auto_5_a_renewal_quote_that_changes_the_subscription_advises_auto_renew_off(
    auto_renew_on, changes, advised
):
    decision = quote(renewing_in(30, auto_renew=auto_renew_on), changes=changes)
    assert decision.allowed
    advisories = codes(decision.outcome("S-1").advisories)
    assert advisories == (["AUTO_RENEW_SHOULD_BE_OFF"] if advised else [])


def test_auto_renew_on_for_a_lapsed_subscription_within_the_automatic_grace():
    sub = renewing_in(-30)
    assert auto_renew(sub).allowed
    assert auto_renew(renewing_in(-31)).outcome("S-1").grace_ends == TODAY + timedelta(days=14)


@pytest.mark.parametrize(
    ("auto_renew_on", "quoted", "suspends"),
    [
        (True, [("annual", 5)], True),  # more seats than the renewal buys
        (True, [("three_year", 1)], True),  # another term
        (True, [("annual", 1)], False),  # QUO-7's automatic quote: changes nothing
        (False, [("annual", 5)], False),  # nothing to switch off
    ],
)
def test_auto_5_a_quote_switches_auto_renew_off_only_when_it_changes_what_the_renewal_buys(
    auto_renew_on, quoted, suspends
):
    sub = renewing_in(20, auto_renew=auto_renew_on)
    assert quote_suspends_auto_renew(sub, quoted) is suspends
