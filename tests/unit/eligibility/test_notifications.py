"""NOTE-1, NOTE-2: what the notification service needs from the rules."""

from datetime import date, timedelta

import pytest

from shared.eligibility import (
    Flags,
    PaymentMethod,
    RenewalOption,
    reminder_dates,
    renewal_options,
)

from .builders import TODAY, policy, quote, renew, renewing_in, subscription

BANK_TRANSFER = PaymentMethod(type="bank_transfer", recurring=False, valid=True)


def test_note_1_reminders_before_the_renewal_date():
    sub = subscription(renewal_date=date(2026, 4, 15))
    assert reminder_dates(sub, policy()) == (date(2026, 1, 15), date(2026, 3, 16), date(2026, 4, 8))
    assert reminder_dates(sub, policy(reminder_days_before=(7, 7, 1))) == (
        date(2026, 4, 8),
        date(2026, 4, 14),
    )


@pytest.mark.parametrize(
    ("days_to_renewal", "fields", "options"),
    [
        (
            30,
            {"auto_renew": True},
            ["automatic", "manual_online", "self_service_quote", "sales_quote"],
        ),
        (30, {"payment_method": BANK_TRANSFER}, ["manual_online", "self_service_quote",
                                                 "sales_quote"]),
        (30, {"purchase_method": "partner", "partner_csn": "P-7"}, ["partner_quote"]),
        (30, {"flags": Flags(legacy_system=True)}, ["sales_quote"]),
        (-10, {"auto_renew": True}, ["manual_online", "self_service_quote", "sales_quote"]),
        (-46, {}, []),  # expired
        (30, {"status": "trial"}, []),
    ],
)  # fmt: skip
def test_note_1_the_reminder_lists_the_renewal_options_open_today(days_to_renewal, fields, options):
    sub = renewing_in(days_to_renewal, **fields)
    assert [o.value for o in renewal_options(sub, TODAY, policy())] == options
    assert all(isinstance(o, RenewalOption) for o in renewal_options(sub, TODAY, policy()))


def test_note_2_one_order_confirmation_per_transaction():
    decision = renew(
        renewing_in(30, "S-1"),
        renewing_in(30, "S-2"),
        renewing_in(30, "S-3", currency="EUR", country="DE"),
    )
    assert len(decision.groups) == 2  # two transactions, two confirmations (MAN-3)


def test_note_2_the_quote_email_has_what_it_needs():
    decision = quote(renewing_in(30))
    assert decision.preview.expires_on == TODAY + timedelta(days=30)
    assert decision.preview.totals[0].total > 0
