"""One function per action on subscriptions: who may do what, to which, today, at what price.

Every function is pure: the caller passes the subscriptions it holds, the ids asked for, the
price list, the promotions, today's date and the policy. Nothing raises on business input: an
impossible request is a refused `Decision` listing every reason that applies. Each says only
what is particular to its action, a `Finding` per subscription; `assessment` does the rest.
Quotes are decided in `quote_decisions.py`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import date

from shared.eligibility.assessment import (
    Asked,
    Finding,
    assess_each,
    decide_as_one,
    decide_one,
    decide_one_by_one,
    refused,
    resolve,
    sender_self_service_reasons,
    strangers_among,
    unique_ids,
)
from shared.eligibility.checks import (
    alignment_method_reasons,
    alignment_reasons,
    alignment_target_reasons,
    automatic_payment_reasons,
    current_term_reasons,
    grace_reasons,
    renewal_timing_reasons,
    request_size_reasons,
    same_customer_reasons,
    seat_count_reasons,
)
from shared.eligibility.dates import RenewalMethod, grace_ends
from shared.eligibility.identity import Sender
from shared.eligibility.model import Actor, Price, Promotion, Subscription, Term
from shared.eligibility.outcomes import Action, Decision
from shared.eligibility.policy import Policy
from shared.eligibility.price_lines import Pricing, is_trial, renewed_until
from shared.eligibility.reasons import Reason
from shared.eligibility.terms import Reservation, reservation_reasons

# ----------------------------------------------------------------------------------------------
# Manual renewal (MAN-1..4)


def decide_manual_renewal(
    actor: Actor,
    subscriptions: Iterable[Subscription],
    requested_ids: Sequence[str],
    *,
    prices: Iterable[Price],
    promotions: Iterable[Promotion],
    today: date,
    policy: Policy,
    reservations: Mapping[str, Reservation] | None = None,
    sender: Sender | None = None,
) -> Decision:
    """Renew now, paid online, one subscription or up to the bulk limit (MAN-1).

    Per subscription: ROLE-1, LIFE-1, WIN-1, WIN-2/LIFE-3, ALREADY_RENEWED, SELF-1/SELF-2 (a
    self-service action), NO_PRICE, and RENEWAL_IN_PROGRESS while another order for it is open
    (`reservations`, by subscription id). A subscription the actor may not act on gets
    NOT_AUTHORIZED and nothing more (issue 16: nothing about another tenant's subscription). The new term starts on the current renewal date
    (LIFE-4, MAN-4). Allowed subscriptions are grouped into transactions (MAN-2), one per CSN,
    currency, purchase method and payment method (a card and a bank transfer are two charges). The request is
    allowed when it has no reason of its own and at least one subscription is allowed; the
    others are refused one by one.
    """
    reservations = reservations or {}
    pricing = Pricing.of(prices, promotions, today=today, policy=policy)

    def find(subscription: Subscription) -> Finding:
        return Finding(
            reasons=[
                *seat_count_reasons(subscription.renewal_seats),
                *renewal_timing_reasons(subscription, today, RenewalMethod.MANUAL_ONLINE, policy),
                *sender_self_service_reasons(subscription, policy, sender),
                *reservation_reasons(subscription, reservations.get(subscription.subscription_id)),
            ],
            line=pricing.next_renewal(subscription),
            price_needed=not is_trial(subscription),
            next_renewal_date=renewed_until(subscription, subscription.renewal_term, today, policy),
        )

    asked = Asked(actor=actor, sender=sender, today=today, policy=policy)
    return decide_one_by_one(
        Action.MANUAL_RENEWAL, asked, subscriptions, requested_ids, find, charges=True
    )


# ----------------------------------------------------------------------------------------------
# Automatic renewal (AUTO-1..4)


def decide_auto_renew(
    actor: Actor,
    subscriptions: Iterable[Subscription],
    requested_ids: Sequence[str],
    *,
    enabled: bool,
    today: date,
    policy: Policy,
    sender: Sender | None = None,
) -> Decision:
    """Switch auto-renew on or off, one subscription or up to the bulk limit (AUTO-2).

    On: ROLE-1, LIFE-1, AUTO-4 (MANUAL_RENEWAL_REQUIRED), AUTO-1 (PAYMENT_METHOD_INVALID),
    SELF-1/SELF-2, and grace: an automatic renewal has the short grace (WIN-2), so a lapsed
    subscription past it gets GRACE_PERIOD_OVER, past its own grace EXPIRED (LIFE-3). No
    window: switching on early is fine, the renewal happens on the renewal date.
    Off (AUTO-3): any time before the renewal date, and during grace (it stops further
    attempts); only ROLE-1, SELF-1/SELF-2 and EXPIRED apply.
    The request is allowed when it has no reason of its own and one subscription is allowed.
    """

    def find(subscription: Subscription) -> Finding:
        reasons: list[Reason] = []
        if enabled:
            if is_trial(subscription):
                reasons.append(Reason.TRIAL_NOT_RENEWABLE)
            else:
                reasons += grace_reasons(subscription, today, RenewalMethod.AUTOMATIC, policy)
            reasons += automatic_payment_reasons(subscription, policy)
        elif not is_trial(subscription) and today > grace_ends(subscription, policy):
            reasons.append(Reason.EXPIRED)
        reasons += sender_self_service_reasons(subscription, policy, sender)
        return Finding(reasons=reasons, next_renewal_date=subscription.renewal_date)

    action = Action.AUTO_RENEW_ON if enabled else Action.AUTO_RENEW_OFF
    asked = Asked(actor=actor, sender=sender, today=today, policy=policy)
    return decide_one_by_one(action, asked, subscriptions, requested_ids, find, charges=False)


# ----------------------------------------------------------------------------------------------
# Term, seats, alignment (TERM-1, SEAT-1, SEAT-2, ALIGN-1)


def decide_change_terms(
    actor: Actor,
    subscriptions: Iterable[Subscription],
    subscription_id: str,
    *,
    term: Term | None = None,
    seats: int | None = None,
    prices: Iterable[Price],
    promotions: Iterable[Promotion],
    today: date,
    policy: Policy,
    sender: Sender | None = None,
) -> Decision:
    """Change the next renewal's term (TERM-1) and/or seats, up or down (SEAT-2).

    Request: INVALID_QUANTITY when neither is given or seats ≤ 0. Subscription: ROLE-1, LIFE-1,
    EXPIRED (LIFE-3; a lapsed subscription may still change what it renews with), SELF-1/SELF-2,
    NO_PRICE for the new term. The preview is the next renewal at the renewal price of the new
    term (PRICE-1: the renewal price holds across a term switch); the renewal date is unchanged.
    """
    pricing = Pricing.of(prices, promotions, today=today, policy=policy)
    request_reasons = seat_count_reasons(seats)
    if term is None and seats is None:
        request_reasons.append(Reason.INVALID_QUANTITY)

    def find(subscription: Subscription) -> Finding:
        reasons: list[Reason] = []
        if is_trial(subscription):
            reasons.append(Reason.TRIAL_NOT_RENEWABLE)
        elif today > grace_ends(subscription, policy):
            reasons.append(Reason.EXPIRED)
        reasons += sender_self_service_reasons(subscription, policy, sender)
        return Finding(
            reasons=reasons,
            # Charged on the renewal date: priced (promotions, expiry) as of that day.
            line=replace(pricing, today=max(today, subscription.renewal_date)).renewal(
                subscription,
                term=term or subscription.renewal_term,
                seats=seats if seats is not None else subscription.renewal_seats,
                currency=subscription.currency,
            ),
            price_needed=not is_trial(subscription),
            next_renewal_date=subscription.renewal_date,
        )

    asked = Asked(actor=actor, sender=sender, today=today, policy=policy)
    return decide_one(
        Action.CHANGE_TERMS, asked, subscriptions, subscription_id, request_reasons, find
    )


def decide_add_seats(
    actor: Actor,
    subscriptions: Iterable[Subscription],
    subscription_id: str,
    *,
    seats: int,
    prices: Iterable[Price],
    promotions: Iterable[Promotion],
    today: date,
    policy: Policy,
    sender: Sender | None = None,
) -> Decision:
    """Add seats now, charged pro rata for the days left in the term (SEAT-1).

    Request: INVALID_QUANTITY when seats ≤ 0. Subscription: ROLE-1, LIFE-1 (a trial can't be
    extended), EXPIRED once the term has ended (lapsed or expired: renew first),
    SELF-1/SELF-2, NO_PRICE. The unit price is the renewal price of one seat for a full term;
    the total is the pro-rata amount for the seats added. They renew with the others. SEAT-1
    "at any time": after an early renewal too, when they are charged for the rest of the running
    term plus the term already paid ahead (`prorated_days_left`).
    """
    pricing = Pricing.of(prices, promotions, today=today, policy=policy)

    def find(subscription: Subscription) -> Finding:
        return Finding(
            reasons=[
                *seat_count_reasons(subscription.seats),
                *current_term_reasons(subscription, today),
                *sender_self_service_reasons(subscription, policy, sender),
            ],
            line=pricing.seat_addition(subscription, seats=seats),
            price_needed=not is_trial(subscription),
            next_renewal_date=subscription.renewal_date,
        )

    asked = Asked(actor=actor, sender=sender, today=today, policy=policy)
    request_reasons = seat_count_reasons(seats)
    return decide_one(
        Action.ADD_SEATS, asked, subscriptions, subscription_id, request_reasons, find
    )


def decide_align_dates(
    actor: Actor,
    subscriptions: Iterable[Subscription],
    requested_ids: Sequence[str],
    *,
    target_date: date,
    prices: Iterable[Price],
    promotions: Iterable[Promotion],
    today: date,
    policy: Policy,
    sender: Sender | None = None,
) -> Decision:
    """Align renewal dates on `target_date` (ALIGN-1): same term, same payment method (the same
    method, not only its type), valid (PAYMENT_METHOD_INVALID otherwise).

    Each renewal date moves forward to the target, by at most one term; the extension is
    charged now, pro rata, at the renewal price. Request: INVALID_QUANTITY, the bulk limit, one
    CSN and one currency (one transaction), TERM_MISMATCH, PAYMENT_METHOD_MISMATCH.
    Subscription: ROLE-1, LIFE-1, EXPIRED once its term has ended, a target out of range
    (INVALID_QUANTITY), SELF-1/SELF-2, NO_PRICE. Allowed only when every subscription is.
    One subscription the actor may not act on refuses it with NOT_AUTHORIZED and nothing more.
    """
    pricing = Pricing.of(prices, promotions, today=today, policy=policy)
    ids = unique_ids(requested_ids)
    resolved = resolve(subscriptions, ids)
    known = [s for _, s in resolved if s is not None]
    if strangers := strangers_among(actor, known, sender):
        return refused(Action.ALIGN_DATES, strangers)

    def find(subscription: Subscription) -> Finding:
        return Finding(
            reasons=[
                *seat_count_reasons(subscription.renewal_seats),
                *current_term_reasons(subscription, today),
                *alignment_target_reasons(subscription, target_date),
                *alignment_method_reasons(subscription),
                *sender_self_service_reasons(subscription, policy, sender),
            ],
            line=pricing.alignment(
                subscription, target_date=target_date, currency=subscription.currency
            ),
            price_needed=not is_trial(subscription),
            next_renewal_date=None if is_trial(subscription) else target_date,
        )

    asked = Asked(actor=actor, sender=sender, today=today, policy=policy)
    tally = assess_each(resolved, find, asked)
    request_reasons = [
        *request_size_reasons(ids, policy),
        *same_customer_reasons(known, check_partner=False),
        *alignment_reasons(known),
    ]
    return decide_as_one(
        Action.ALIGN_DATES, tally, request_reasons, groups=tally.groups(), preview=tally.preview()
    )
