"""WIN-1, WIN-2: the renewal window, from 90 days before to 30 or 45 days after."""

from datetime import timedelta

import pytest

from shared.eligibility import Actor

from .builders import TODAY, auto_renew, quote, reasons_of, renew, renewing_in


@pytest.mark.parametrize(
    ("days_to_renewal", "reasons"),
    [
        (91, {"TOO_EARLY"}),
        (90, set()),  # the window opens 90 days before
        (45, set()),
        (1, set()),
        (0, set()),
    ],
)
@pytest.mark.parametrize("action", ["manual_renewal", "quote"])
def test_win_1_any_renewal_opens_90_days_before(action, days_to_renewal, reasons):
    sub = renewing_in(days_to_renewal)
    decision = renew(sub) if action == "manual_renewal" else quote(sub)
    assert reasons_of(decision) == reasons
    assert decision.allowed is not reasons


@pytest.mark.parametrize(
    ("sold", "action", "days_after", "reasons"),
    [
        # Manual online payment: 45 days (004).
        ({}, "manual_renewal", 45, set()),
        ({}, "manual_renewal", 46, {"EXPIRED"}),
        # Quote: 45 days (000), from self-service, a partner or the sales team.
        ({}, "self_service_quote", 45, set()),
        ({}, "self_service_quote", 46, {"EXPIRED"}),
        ({"purchase_method": "partner", "partner_csn": "P-7"}, "partner_quote", 45, set()),
        ({"purchase_method": "partner", "partner_csn": "P-7"}, "partner_quote", 46, {"EXPIRED"}),
        ({"purchase_method": "direct_sales", "country": "JP"}, "sales_quote", 45, set()),
        # No quote nor manual payment open to it (not self-service, not sold by sales or a
        # partner): 30 days (LIFE-3).
        ({"country": "JP"}, "sales_quote", 30, set()),
        ({"country": "JP"}, "sales_quote", 31, {"EXPIRED"}),
        # Automatic renewal: 30 days, then only the 45-day methods remain.
        ({}, "auto_renew_on", 30, set()),
        ({}, "auto_renew_on", 31, {"GRACE_PERIOD_OVER"}),
        ({}, "auto_renew_on", 45, {"GRACE_PERIOD_OVER"}),
        ({}, "auto_renew_on", 46, {"EXPIRED"}),
    ],
)
def test_win_2_grace_is_45_days_for_quotes_and_manual_payment_30_otherwise(
    sold, action, days_after, reasons
):
    assert reasons_of(_renew_by(action, renewing_in(-days_after, **sold))) == reasons


def _renew_by(action, sub):
    if action == "manual_renewal":
        return renew(sub)
    if action == "auto_renew_on":
        return auto_renew(sub)
    if action == "partner_quote":
        return quote(sub, channel="partner", actor=Actor(user_id="PU-1", csn="P-7"))
    return quote(sub, channel=action.removesuffix("_quote"))


def test_win_2_the_grace_dates_are_in_every_outcome():
    outcome = renew(renewing_in(-10)).outcome("S-1")
    assert outcome.window_opens == TODAY + timedelta(days=-100)
    assert outcome.grace_ends == TODAY + timedelta(days=35)
