"""What happens when a renewal date comes (issue 14 item 3): the due-date engine's decision.

On the renewal date, and on each day it chose to look again, the engine asks `decide_due_date`:
renew automatically (AUTO-1, at the renewal price of the term and seats the renewal buys), try a
failed charge again on the policy's schedule inside grace, announce the lapse (LIFE-2) or the
expiry (LIFE-3) — and when to look next. The engine only reads, saves and announces.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from shared.eligibility.dates import expires_on, grace_ends
from shared.eligibility.model import Price, Subscription
from shared.eligibility.policy import Policy
from shared.eligibility.price_lines import Pricing
from shared.eligibility.pricing import PriceLine
from shared.eligibility.schedules import quote_holds_automatic_renewal, renews_automatically
from shared.eligibility.terms import Reservation, reservation_reasons


@dataclass(frozen=True, kw_only=True)
class AutomaticOrder:
    """AUTO-1: the charge to ask for now, the `attempt`-th for this renewal date."""

    attempt: int
    line: PriceLine
    next_retry_on: date | None
    """The day of the try after this one if it fails, inside grace; None when none is left."""


@dataclass(frozen=True, kw_only=True)
class DueDecision:
    order: AutomaticOrder | None
    announce_lapse: bool
    """LIFE-2: not renewed by its renewal date (announced once per renewal date)."""
    announce_expiry: bool
    """LIFE-3: still not renewed the day after grace ends (WIN-2)."""
    next_look: date
    """When the engine looks at the subscription again, should nothing else move its date."""
    unpriced: bool = False
    """AUTO-1 would renew it, but the catalog has no price for the term it buys: it lapses."""


def retry_on(renewal_date: date, attempt: int, policy: Policy) -> date | None:
    """The day of the try after `attempt`, on the policy's schedule; None when it has no more."""
    schedule = policy.payment_retry_days_after
    if attempt > len(schedule):
        return None
    return renewal_date + timedelta(days=schedule[attempt - 1])


def next_renewal_line(
    subscription: Subscription, today: date, prices: Sequence[Price], policy: Policy
) -> PriceLine | None:
    """PRICE-1, TERM-1, SEAT-2: what the next renewal buys — the next term and seats at that
    term's renewal price, from the renewal date (LIFE-4) — as the automatic renewal charges it
    and the reminders quote it: the line a manual renewal would get, without its promotions (a
    promotion is offered to a buyer, PRICE-3); None when the catalog has no such price."""
    pricing = Pricing(prices=prices, promotions=(), today=today, policy=policy)
    return pricing.next_renewal(subscription)


def decide_due_date(
    subscription: Subscription,
    today: date,
    policy: Policy,
    *,
    last_attempt: int,
    reservation: Reservation | None,
    quoted: Iterable[tuple[str, int]],
    prices: Sequence[Price],
    lapse_announced: bool,
) -> DueDecision:
    """The engine's decision for a subscription whose renewal date (or next look) has come.

    `last_attempt` counts the automatic charges already tried for this renewal date (their
    answers all failed: one in flight is never asked about); `reservation` is an open order of
    another path (manual, quote), which holds the term; `quoted` the (term, seats) of the open
    renewal quotes' lines for it (AUTO-5)."""
    expiry = expires_on(subscription, policy)
    looks = [expiry]
    unpriced = False
    # Issue 14: an order another path placed holds the term: leave it to that order, and look
    # again tomorrow in case it fails.
    in_progress = bool(reservation_reasons(subscription, reservation))
    if in_progress:
        looks.append(today + timedelta(days=1))
    automatic = (
        not in_progress
        and renews_automatically(subscription, policy)
        and not quote_holds_automatic_renewal(subscription, quoted)
    )  # AUTO-1, AUTO-5
    if automatic and today <= grace_ends(subscription, policy):
        due_on = (
            subscription.renewal_date
            if last_attempt == 0
            else retry_on(subscription.renewal_date, last_attempt, policy)
        )
        if due_on is not None and due_on > today:
            looks.append(due_on)  # look again on the day of the next try
        elif due_on is not None:
            line = next_renewal_line(subscription, today, prices, policy)
            unpriced = line is None  # without a price it lapses, as if it had no auto-renew
            if line is not None:
                return DueDecision(
                    order=_automatic_order(subscription, line, last_attempt + 1, policy),
                    announce_lapse=False,
                    announce_expiry=False,
                    # a charge in flight: billing's answer decides (a failure brings the look
                    # back); the expiry day bounds the wait should no answer ever come
                    next_look=expiry,
                )
    return DueDecision(
        order=None,
        announce_lapse=not lapse_announced,
        announce_expiry=today >= expiry,
        next_look=min(looks),
        unpriced=unpriced,
    )


def _automatic_order(
    subscription: Subscription, line: PriceLine, attempt: int, policy: Policy
) -> AutomaticOrder:
    next_try = retry_on(subscription.renewal_date, attempt, policy)
    if next_try is not None and next_try > grace_ends(subscription, policy):
        next_try = None
    return AutomaticOrder(attempt=attempt, line=line, next_retry_on=next_try)
