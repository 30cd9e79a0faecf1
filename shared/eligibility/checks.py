"""The reasons shared by several decisions, each function one rule or one family of rules."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from shared.eligibility.dates import (
    RenewalMethod,
    add_term,
    grace_ends,
    is_already_renewed,
    method_grace_ends,
    window_opens,
)
from shared.eligibility.identity import Sender, sender_may_act_for
from shared.eligibility.model import Actor, Subscription
from shared.eligibility.policy import Policy
from shared.eligibility.reasons import Reason
from shared.eligibility.roles import is_agent_of_record, may_act_for


def request_size_reasons(subscription_ids: Sequence[str], policy: Policy) -> list[Reason]:
    """No subscription at all (INVALID_QUANTITY), or more than the bulk limit (AUTO-2, MAN-1)."""
    if not subscription_ids:
        return [Reason.INVALID_QUANTITY]
    if len(subscription_ids) > policy.bulk_limit:
        return [Reason.BULK_LIMIT_EXCEEDED]
    return []


def seat_count_reasons(seats: int | None) -> list[Reason]:
    """A seat count, when there is one, is at least 1."""
    return [Reason.INVALID_QUANTITY] if seats is not None and seats <= 0 else []


def authorization_reasons(
    actor: Actor,
    subscription: Subscription,
    *,
    agent_of_record_may_act: bool = False,
    sender: Sender | None = None,
) -> list[Reason]:
    """ROLE-1 (and for a partner's quote, the agent of record: QUO-1). With a proven sender
    (issue 16) its channel decides: see `identity.sender_may_act_for`."""
    if sender is not None:
        return [] if sender_may_act_for(sender, actor, subscription) else [Reason.NOT_AUTHORIZED]
    if may_act_for(actor, subscription):
        return []
    if agent_of_record_may_act and is_agent_of_record(actor, subscription):
        return []
    return [Reason.NOT_AUTHORIZED]


def renewal_timing_reasons(
    subscription: Subscription, today: date, method: RenewalMethod, policy: Policy
) -> list[Reason]:
    """Whether a renewal by `method` is possible today.

    LIFE-1: a trial is never renewable (and then timing says nothing more). WIN-1: not before
    the window opens. ALREADY_RENEWED: the current term was paid ahead (LIFE-4). LIFE-3: not
    after grace (EXPIRED); WIN-2: not after this method's own grace (GRACE_PERIOD_OVER), while
    another method may still renew it.
    """
    if subscription.status == "trial":
        return [Reason.TRIAL_NOT_RENEWABLE]
    reasons: list[Reason] = []
    if today < window_opens(subscription.renewal_date, policy):
        reasons.append(Reason.TOO_EARLY)
    if is_already_renewed(subscription, today):
        reasons.append(Reason.ALREADY_RENEWED)
    reasons.extend(grace_reasons(subscription, today, method, policy))
    return reasons


def grace_reasons(
    subscription: Subscription, today: date, method: RenewalMethod, policy: Policy
) -> list[Reason]:
    """LIFE-3 (EXPIRED) and WIN-2 (GRACE_PERIOD_OVER), without the window's opening."""
    if today > grace_ends(subscription, policy):
        return [Reason.EXPIRED]
    if today > method_grace_ends(subscription.renewal_date, method, policy):
        return [Reason.GRACE_PERIOD_OVER]
    return []


def current_term_reasons(subscription: Subscription, today: date) -> list[Reason]:
    """Changes to the running term (SEAT-1 seats, ALIGN-1 alignment) need a term still running.

    LIFE-1: a trial can't be extended. From the renewal date on, the term has ended (lapsed or
    expired): it must be renewed first, reported as EXPIRED.
    """
    if subscription.status == "trial":
        return [Reason.TRIAL_NOT_RENEWABLE]
    if today >= subscription.renewal_date:
        return [Reason.EXPIRED]
    return []


def automatic_payment_reasons(subscription: Subscription, policy: Policy) -> list[Reason]:
    """AUTO-4: a manual-only method can't renew automatically; AUTO-1: the recurring payment
    method must be valid (a method not set up as recurring is not a valid recurring method)."""
    method = subscription.payment_method
    reasons: list[Reason] = []
    manual_only = method.type in policy.manual_only_payment_methods
    if manual_only:
        reasons.append(Reason.MANUAL_RENEWAL_REQUIRED)
    if not method.valid or (not method.recurring and not manual_only):
        reasons.append(Reason.PAYMENT_METHOD_INVALID)
    return reasons


def same_customer_reasons(
    subscriptions: Sequence[Subscription], *, check_partner: bool
) -> list[Reason]:
    """QUO-3: one customer CSN, one currency and, when an agent of record is involved, one
    partner CSN."""
    reasons: list[Reason] = []
    if len({s.csn for s in subscriptions}) > 1:
        reasons.append(Reason.MIXED_CSN)
    if len({s.currency for s in subscriptions}) > 1:
        reasons.append(Reason.MIXED_CURRENCY)
    if check_partner and len({s.partner_csn for s in subscriptions}) > 1:
        reasons.append(Reason.MIXED_PARTNER)
    return reasons


def alignment_reasons(subscriptions: Sequence[Subscription]) -> list[Reason]:
    """ALIGN-1: the same term and the same payment method — the same method, not only the same
    type: a card set up as recurring and one that is not, or a valid card and an invalid one,
    are two methods (the contract names a method by its type, `recurring` and `valid`)."""
    reasons: list[Reason] = []
    if len({s.renewal_term for s in subscriptions}) > 1:
        reasons.append(Reason.TERM_MISMATCH)
    return reasons + one_charge_reasons(subscriptions)


def one_charge_reasons(subscriptions: Sequence[Subscription]) -> list[Reason]:
    """MAN-2: one order is one charge, on one payment method valid for all its subscriptions.
    Subscriptions whose methods differ (a card and a bank transfer, two cards) can't share it,
    and none is ever charged to another's method: a quote of them is refused, not split (a
    quote is one document, one order)."""
    if len({s.payment_method for s in subscriptions}) > 1:
        return [Reason.PAYMENT_METHOD_MISMATCH]
    return []


def alignment_method_reasons(subscription: Subscription) -> list[Reason]:
    """ALIGN-1: the shared payment method must be valid, or the dates would move on a method
    that can't pay the next renewal."""
    return [] if subscription.payment_method.valid else [Reason.PAYMENT_METHOD_INVALID]


def alignment_target_reasons(subscription: Subscription, target_date: date) -> list[Reason]:
    """ALIGN-1: the renewal date moves forward, by at most one term (the extension is charged
    pro rata); a target before the renewal date or beyond a term is out of range."""
    latest = add_term(subscription.renewal_date, subscription.renewal_term)
    if subscription.renewal_date <= target_date <= latest:
        return []
    return [Reason.INVALID_QUANTITY]
