"""QUO-3: what a paid quote does, by its kind (renewal, alignment, new purchase)."""

from datetime import date

import pytest

from shared.eligibility import PaidRenewal, RefundReason, settle_paid_quote

from .builders import policy, subscription

RENEWAL_DATE = date(2026, 4, 15)


def _settle(kind, today, reserved=RENEWAL_DATE, **options):
    sub = subscription(renewal_date=RENEWAL_DATE, start_date=date(2025, 4, 15))
    return settle_paid_quote(kind, sub, reserved, today, policy(), **options)


def test_quo_3_a_renewal_quote_adds_a_term_of_its_own_from_the_renewal_date():
    paid = _settle("renewal", date(2026, 3, 1), term="three_year")
    assert paid == PaidRenewal(starts_on=RENEWAL_DATE, renewal_date=date(2029, 4, 15))


def test_quo_3_an_alignment_quote_moves_the_renewal_date_to_its_target_not_a_year_on():
    paid = _settle("alignment", date(2026, 3, 1), target_date=date(2026, 7, 1))
    assert paid == PaidRenewal(starts_on=RENEWAL_DATE, renewal_date=date(2026, 7, 1))


def test_quo_3_a_new_purchase_quote_starts_a_new_term_on_the_payment_day():
    paid = _settle("new", date(2026, 3, 10), term="annual")
    assert paid == PaidRenewal(starts_on=date(2026, 3, 10), renewal_date=date(2027, 3, 10))


def test_quo_3_a_new_purchase_after_expiry_is_a_purchase_not_a_refund():
    """LIFE-3: buying again after expiry is a new subscription, started on the payment day."""
    paid = _settle("new", date(2026, 9, 1), term="annual")
    assert paid == PaidRenewal(starts_on=date(2026, 9, 1), renewal_date=date(2027, 9, 1))


@pytest.mark.parametrize(
    ("kind", "today", "reserved", "refund"),
    [
        ("alignment", date(2026, 3, 1), None, RefundReason.RESERVATION_RELEASED),
        ("new", date(2026, 3, 1), None, RefundReason.RESERVATION_RELEASED),
        ("alignment", date(2026, 3, 1), date(2025, 4, 15), RefundReason.ALREADY_RENEWED),
        ("alignment", date(2026, 9, 1), RENEWAL_DATE, RefundReason.EXPIRED),
        ("renewal", date(2026, 9, 1), RENEWAL_DATE, RefundReason.EXPIRED),
    ],
)
def test_quo_3_a_quote_that_can_no_longer_take_effect_is_refunded(kind, today, reserved, refund):
    paid = _settle(kind, today, reserved, target_date=date(2026, 7, 1))
    assert paid == PaidRenewal(refund=refund)
