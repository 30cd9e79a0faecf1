"""NOTE-1, NOTE-2: what the notification service needs from the rules."""

from datetime import date, timedelta

import pytest

from shared.eligibility import (
    Flags,
    PaymentMethod,
    ReminderLook,
    ReminderOption,
    next_reminder,
    reminder_option,
)
from shared.eligibility.reminders import RenewalOption, reminder_days, renewal_options

from .builders import TODAY, policy, quote, renew, renewing_in

BANK_TRANSFER = PaymentMethod(type="bank_transfer", recurring=False, valid=True)


RENEWS = date(2026, 4, 15)  # reminder days 90, 30 and 7 before: 15 January, 16 March, 8 April


def test_note_1_reminders_before_the_renewal_date():
    assert reminder_days(RENEWS, policy()) == (
        (7, date(2026, 4, 8)),
        (30, date(2026, 3, 16)),
        (90, date(2026, 1, 15)),
    )
    # Each day once; the renewal date itself or after it is no reminder "before" it.
    assert reminder_days(RENEWS, policy(reminder_days_before=(7, 7, 1, 0))) == (
        (1, date(2026, 4, 14)),
        (7, date(2026, 4, 8)),
    )


@pytest.mark.parametrize(
    ("today", "look_from", "look"),
    [
        # Before the first day: none due, the 90-day reminder next.
        (date(2026, 1, 10), date(2026, 1, 1), ReminderLook(None, date(2026, 1, 15))),
        # On its day.
        (date(2026, 1, 15), date(2026, 1, 11), ReminderLook(90, date(2026, 3, 16))),
        # Looked at last on 14 January, next on 20 March: the 30-day reminder, the 90-day one
        # already sent.
        (date(2026, 3, 20), date(2026, 1, 16), ReminderLook(30, date(2026, 4, 8))),
        # After a downtime over two days: only the latest due, never a backlog.
        (date(2026, 4, 10), date(2026, 1, 16), ReminderLook(7, None)),
        # First seen late (look_from: the day it was first seen): only the reminders ahead.
        (date(2026, 3, 1), date(2026, 3, 1), ReminderLook(None, date(2026, 3, 16))),
        # Looked at already today: nothing due again, the next day stays.
        (date(2026, 3, 16), date(2026, 3, 17), ReminderLook(None, date(2026, 4, 8))),
        # On or after the renewal date: nothing due, nothing ahead.
        (RENEWS, date(2026, 4, 9), ReminderLook(None, None)),
        (date(2026, 4, 20), date(2026, 1, 16), ReminderLook(None, None)),
    ],
)  # fmt: skip
def test_note_1_the_reminder_due_today_and_the_next_day_to_look(today, look_from, look):
    assert next_reminder(RENEWS, today, look_from, policy()) == look


def test_note_1_a_changed_schedule_gives_its_own_days():
    """The 60-day reminder of a new schedule is due on its day, even after a 90-day one."""
    sixty = policy(reminder_days_before=(60, 30, 7))
    assert next_reminder(RENEWS, date(2026, 2, 14), date(2026, 1, 16), sixty) == ReminderLook(
        60, date(2026, 3, 16)
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


@pytest.mark.parametrize(
    ("days_to_renewal", "fields", "option"),
    [
        (30, {"auto_renew": True}, ReminderOption.AUTO_RENEW),
        (30, {}, ReminderOption.MANUAL),
        # AUTO-4: a payment method that can't renew by itself, paid by hand.
        (30, {"payment_method": BANK_TRANSFER, "auto_renew": True}, ReminderOption.MANUAL_ONLY),
        (30, {"purchase_method": "partner", "partner_csn": "P-7"}, ReminderOption.PARTNER),
        # SELF-1: no self-service for a legacy system: ask sales.
        (30, {"flags": Flags(legacy_system=True)}, ReminderOption.PARTNER),
        # Lapsed (LIFE-2): auto-renew no longer applies, the manual renewal still does.
        (-10, {"auto_renew": True}, ReminderOption.MANUAL),
        (-46, {}, None),  # expired (LIFE-3)
        (30, {"status": "trial"}, None),  # LIFE-1
    ],
)  # fmt: skip
def test_note_1_the_option_a_reminder_gives(days_to_renewal, fields, option):
    assert reminder_option(renewing_in(days_to_renewal, **fields), TODAY, policy()) == option


@pytest.mark.parametrize(
    ("partner_reminds", "purchase_method", "option"),
    [
        (True, "partner", None),  # the partner sends its own reminders
        (False, "partner", ReminderOption.PARTNER),
        (True, "direct_online", ReminderOption.MANUAL),
    ],
)
def test_note_1_a_partners_subscription_is_reminded_by_the_partner_when_it_reminds(
    partner_reminds, purchase_method, option
):
    partner_csn = "P-7" if purchase_method == "partner" else None
    sub = renewing_in(30, purchase_method=purchase_method, partner_csn=partner_csn)
    assert reminder_option(sub, TODAY, policy(), partner_reminds=partner_reminds) == option


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
