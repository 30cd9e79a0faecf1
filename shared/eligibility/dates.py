"""State from dates: term arithmetic, the renewal window, grace, lapse and expiry."""

from __future__ import annotations

import calendar
import functools
from datetime import date, timedelta
from enum import StrEnum

from shared.eligibility.model import GraceFacts, Subscription, Term
from shared.eligibility.policy import Policy
from shared.eligibility.self_service import renewable_by_quote_or_manual_payment

TERM_MONTHS: dict[Term, int] = {"monthly": 1, "annual": 12, "three_year": 36}


class SubscriptionState(StrEnum):
    TRIAL = "trial"
    ACTIVE = "active"
    """Before the renewal window opens."""
    WINDOW_OPEN = "window_open"
    """Inside the renewal window, before the renewal date (WIN-1)."""
    LAPSED = "lapsed"
    """On or after the renewal date, not renewed, inside grace (LIFE-2)."""
    EXPIRED = "expired"
    """After the last day of grace: only a new purchase (LIFE-3)."""


class RenewalMethod(StrEnum):
    AUTOMATIC = "automatic"
    MANUAL_ONLINE = "manual_online"
    QUOTE = "quote"


# Pure functions of a few hashable values, asked again and again for the same ones (one decision
# asks a subscription's grace up to five times; a batch's subscriptions share their dates):
# cached on those values (#19 plan item 9). Bounded, so a long-running service stays small.
CACHED = 4096


@functools.lru_cache(maxsize=CACHED)
def add_months(day: date, months: int) -> date:
    """Calendar months; a day the target month lacks becomes its last day (31 Jan + 1 = 28/29 Feb)."""
    month_index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(month_index, 12)
    last_day = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last_day))


def add_term(day: date, term: Term, count: int = 1) -> date:
    """`count` terms after `day` (before it when negative): 1, 12 or 36 calendar months."""
    return add_months(day, TERM_MONTHS[term] * count)


def term_start(renewal_date: date, term: Term) -> date:
    """The first day of the term that ends on `renewal_date`."""
    return add_term(renewal_date, term, -1)


def days_in_term(renewal_date: date, term: Term) -> int:
    """Days of the term that ends on `renewal_date` (365 or 366 for a year, 28 to 31 for a month)."""
    return (renewal_date - term_start(renewal_date, term)).days


def window_opens(renewal_date: date, policy: Policy) -> date:
    """WIN-1: the first day any renewal is possible."""
    return renewal_date - timedelta(days=policy.window_opens_days_before)


def method_grace_days(method: RenewalMethod, policy: Policy) -> int:
    """WIN-2: 45 days for a quote or a manual online payment, 30 otherwise."""
    if method in (RenewalMethod.QUOTE, RenewalMethod.MANUAL_ONLINE):
        return policy.grace_days_quote_or_manual
    return policy.grace_days_otherwise


def method_grace_ends(renewal_date: date, method: RenewalMethod, policy: Policy) -> date:
    """WIN-2: the last day this renewal method still works after the renewal date."""
    return renewal_date + timedelta(days=method_grace_days(method, policy))


def grace_days(subscription: GraceFacts, policy: Policy) -> int:
    """LIFE-3: the longest grace of the renewal methods still open to the subscription."""
    if renewable_by_quote_or_manual_payment(subscription, policy):
        return max(policy.grace_days_quote_or_manual, policy.grace_days_otherwise)
    return policy.grace_days_otherwise


def grace_ends(subscription: GraceFacts, policy: Policy) -> date:
    """LIFE-3: the last day of grace; the subscription is expired from the day after."""
    return last_day_of_grace(
        subscription.renewal_date, subscription.renewal_term, grace_days(subscription, policy)
    )


@functools.lru_cache(maxsize=CACHED)
def last_day_of_grace(renewal_date: date, term: Term, days: int) -> date:
    """LIFE-3: `days` of grace after the renewal date of a `term`.

    LIFE-5: where grace is longer than the term (monthly), it ends the day before the missed
    term would end, so that a renewal in grace (which starts at the old date, LIFE-4) always
    ends after today: nobody pays for a term already over.
    """
    by_policy = renewal_date + timedelta(days=days)
    missed_term_ends = add_term(renewal_date, term)
    return min(by_policy, missed_term_ends - timedelta(days=1))


def expires_on(subscription: GraceFacts, policy: Policy) -> date:
    """LIFE-3: the day the subscription expires for good if it is not renewed."""
    return grace_ends(subscription, policy) + timedelta(days=1)


def state_of(subscription: Subscription, today: date, policy: Policy) -> SubscriptionState:
    if subscription.status == "trial":
        return SubscriptionState.TRIAL
    if today > grace_ends(subscription, policy):
        return SubscriptionState.EXPIRED
    if today >= subscription.renewal_date:
        return SubscriptionState.LAPSED
    if today >= window_opens(subscription.renewal_date, policy):
        return SubscriptionState.WINDOW_OPEN
    return SubscriptionState.ACTIVE


def is_already_renewed(subscription: Subscription, today: date) -> bool:
    """The term ending on the renewal date has not started yet: it was paid in advance.

    After an early renewal the renewal date moves one term on (LIFE-4), so the term it ends
    starts in the future. Renewing again would pay a second term ahead.
    """
    return term_start(subscription.renewal_date, subscription.term) > today


def renewed_term(subscription: Subscription, term: Term | None = None) -> tuple[date, date]:
    """LIFE-4: a renewal, early or inside grace, starts on the current renewal date.

    Returns the first day of the new term and the renewal date after it (the next renewal
    date), for `term` or else the term the next renewal buys.
    """
    starts_on = subscription.renewal_date
    return starts_on, add_term(starts_on, term or subscription.renewal_term)


def new_purchase_term(start: date, term: Term) -> tuple[date, date]:
    """LIFE-3: a subscription bought again after expiry starts on the day it is bought."""
    return start, add_term(start, term)
