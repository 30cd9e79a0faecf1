"""Time-driven helpers for the services' schedulers: automatic renewal (AUTO-1, AUTO-5) and
automatic quotes (QUO-7). The buyer's reminders are in reminders.py."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta

from shared.eligibility.checks import automatic_payment_reasons
from shared.eligibility.dates import is_already_renewed
from shared.eligibility.model import Subscription
from shared.eligibility.policy import Policy


def renews_automatically(subscription: Subscription, policy: Policy) -> bool:
    """AUTO-1: auto-renew on and a valid recurring payment method that can renew by itself
    (AUTO-4); never a trial (LIFE-1)."""
    return (
        subscription.status != "trial"
        and subscription.auto_renew
        and not automatic_payment_reasons(subscription, policy)
    )


def quote_holds_automatic_renewal(
    subscription: Subscription, quoted: Iterable[tuple[str, int]]
) -> bool:
    """AUTO-5: an open renewal quote holds the automatic renewal back only when it changes what
    the renewal buys (its term or seats, `quoted` as (term, seats) per open quote line); an
    automatic quote (QUO-7) or one that changes nothing never stops an automatic renewal."""
    buys = (subscription.renewal_term, subscription.renewal_seats)
    return any((term, seats) != buys for term, seats in quoted)


def quote_suspends_auto_renew(
    subscription: Subscription, quoted: Iterable[tuple[str, int]]
) -> bool:
    """AUTO-5: a renewal quote that changes what the renewal buys switches auto-renew off while
    it is open (and back on once it is paid, expired or cancelled) — only where it was on."""
    return subscription.auto_renew and quote_holds_automatic_renewal(subscription, quoted)


def automatic_quote_date(subscription: Subscription, policy: Policy) -> date | None:
    """QUO-7: the day an automatic quote goes to the buyer, or None when it gets none.

    "Some subscriptions, by term and eligibility": a term of the policy's list (annual and
    three-year by default), not a trial, and one that will not renew automatically (AUTO-1).
    """
    if (
        subscription.status == "trial"
        or subscription.term not in policy.automatic_quote_terms
        or renews_automatically(subscription, policy)
    ):
        return None
    return subscription.renewal_date - timedelta(days=policy.automatic_quote_days_before)


def automatic_quote_due(subscription: Subscription, today: date, policy: Policy) -> bool:
    """QUO-7: from its day until the renewal date, unless the current term was renewed ahead.

    A scheduler that missed the day catches up; the quote service sends one quote per term.
    """
    quote_date = automatic_quote_date(subscription, policy)
    return (
        quote_date is not None
        and quote_date <= today < subscription.renewal_date
        and not is_already_renewed(subscription, today)
    )
