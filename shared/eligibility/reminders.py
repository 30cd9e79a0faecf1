"""NOTE-1: the buyer's renewal reminders — which reminder is due, the next day to look, and the
renewal options a reminder gives."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from shared.eligibility.dates import (
    RenewalMethod,
    SubscriptionState,
    method_grace_ends,
    state_of,
)
from shared.eligibility.model import Subscription
from shared.eligibility.policy import Policy
from shared.eligibility.schedules import renews_automatically
from shared.eligibility.self_service import self_service_available


def reminder_days(renewal_date: date, policy: Policy) -> tuple[tuple[int, date], ...]:
    """NOTE-1: the reminder days before `renewal_date`, as (days before, day), latest first.

    The schedule is the policy's `reminder_days_before`, each once; a day on or after the
    renewal date is no reminder ("before the renewal date")."""
    days = sorted({d for d in policy.reminder_days_before if d > 0})
    return tuple((d, renewal_date - timedelta(days=d)) for d in days)


@dataclass(frozen=True)
class ReminderLook:
    """What a scheduler looking at one subscription today does.

    `due`: the reminder to send now, as its days before the renewal date — the latest reminder
    day come since the scheduler last looked (the older ones are past, never a backlog); None
    when no reminder day came. `next_on`: the next reminder day to look at, None when none is
    left for this renewal date."""

    due: int | None
    next_on: date | None


def next_reminder(renewal_date: date, today: date, look_from: date, policy: Policy) -> ReminderLook:
    """NOTE-1: the reminder due today and the next reminder day, for a scheduler that has looked
    at the subscription up to the day before `look_from` (a subscription first seen late gets
    only the reminders still ahead). None is due once the renewal date is reached."""
    days = reminder_days(renewal_date, policy)
    come = [d for d, day in days if look_from <= day <= today and today < renewal_date]
    after = max(look_from, today + timedelta(days=1))
    ahead = [day for _, day in days if day >= after]
    return ReminderLook(due=come[0] if come else None, next_on=min(ahead, default=None))


class RenewalOption(StrEnum):
    AUTOMATIC = "automatic"
    MANUAL_ONLINE = "manual_online"
    SELF_SERVICE_QUOTE = "self_service_quote"
    PARTNER_QUOTE = "partner_quote"
    SALES_QUOTE = "sales_quote"


def renewal_options(
    subscription: Subscription, today: date, policy: Policy
) -> tuple[RenewalOption, ...]:
    """NOTE-1: the renewal options open today.

    Automatic when it will renew by itself (AUTO-1) and the renewal date has not passed;
    manual online payment and a self-service quote where self-service is open (SELF-1, SELF-2)
    until their grace ends (WIN-2); a partner quote for a partner's subscription, a sales quote
    for a direct one, until grace ends. None for a trial or an expired subscription.
    """
    state = state_of(subscription, today, policy)
    if state in (SubscriptionState.TRIAL, SubscriptionState.EXPIRED):
        return ()
    options: list[RenewalOption] = []
    if renews_automatically(subscription, policy) and today < subscription.renewal_date:
        options.append(RenewalOption.AUTOMATIC)
    self_service = self_service_available(subscription, policy)
    if self_service and today <= method_grace_ends(
        subscription.renewal_date, RenewalMethod.MANUAL_ONLINE, policy
    ):
        options.append(RenewalOption.MANUAL_ONLINE)
    quote_open = today <= method_grace_ends(subscription.renewal_date, RenewalMethod.QUOTE, policy)
    if self_service and quote_open:
        options.append(RenewalOption.SELF_SERVICE_QUOTE)
    if quote_open:
        if subscription.purchase_method == "partner":
            options.append(RenewalOption.PARTNER_QUOTE)
        else:
            options.append(RenewalOption.SALES_QUOTE)
    return tuple(options)


class ReminderOption(StrEnum):
    """The one way to renew a reminder tells the buyer about (its template's `option`)."""

    AUTO_RENEW = "auto_renew"  # it renews by itself, with the payment method named
    MANUAL = "manual"  # pay online from the link, until grace ends
    MANUAL_ONLY = "manual_only"  # a payment method that can't renew by itself (AUTO-4)
    PARTNER = "partner"  # ask the partner, or sales


def reminder_option(
    subscription: Subscription, today: date, policy: Policy, *, partner_reminds: bool = False
) -> ReminderOption | None:
    """NOTE-1: what a reminder sent today tells the buyer to do, from the options open today
    (renewal_options); None when no reminder goes: nothing is left to renew (a trial, an
    expired subscription), or a partner's subscription whose partner sends its own reminders
    (`partner_reminds`, the notification service's setting)."""
    if partner_reminds and subscription.purchase_method == "partner":
        return None
    options = renewal_options(subscription, today, policy)
    if not options:
        return None
    if RenewalOption.AUTOMATIC in options:
        return ReminderOption.AUTO_RENEW
    if subscription.purchase_method == "partner" or RenewalOption.MANUAL_ONLINE not in options:
        return ReminderOption.PARTNER
    if subscription.payment_method.type in policy.manual_only_payment_methods:
        return ReminderOption.MANUAL_ONLY  # AUTO-4
    return ReminderOption.MANUAL
