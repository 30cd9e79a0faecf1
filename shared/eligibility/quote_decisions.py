"""The quote actions (QUO-1..8): send a quote, cancel it, accept it.

Pure like `decisions.py`: a quote is one document, allowed only when every subscription is; a
quote's subscriptions are assessed with the skeleton of `assessment.py`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import date, timedelta

from shared.eligibility.assessment import (
    Asked,
    Finding,
    assess_each,
    decide_as_one,
    refused,
    resolve,
    strangers_among,
    unique_ids,
)
from shared.eligibility.checks import (
    alignment_method_reasons,
    alignment_reasons,
    alignment_target_reasons,
    current_term_reasons,
    one_charge_reasons,
    renewal_timing_reasons,
    request_size_reasons,
    same_customer_reasons,
    seat_count_reasons,
)
from shared.eligibility.dates import RenewalMethod, grace_ends, new_purchase_term
from shared.eligibility.identity import Sender, may_handle_quote
from shared.eligibility.model import (
    Actor,
    Channel,
    Person,
    Price,
    Promotion,
    Quote,
    QuoteRequest,
    Subscription,
)
from shared.eligibility.outcomes import Action, Advisory, Decision
from shared.eligibility.policy import Policy
from shared.eligibility.price_lines import Pricing, is_trial, renewed_until
from shared.eligibility.pricing import PriceLine
from shared.eligibility.reasons import Reason, in_contract_order
from shared.eligibility.self_service import self_service_reasons


def decide_quote(
    actor: Actor,
    subscriptions: Iterable[Subscription],
    request: QuoteRequest,
    *,
    prices: Iterable[Price],
    promotions: Iterable[Promotion],
    today: date,
    policy: Policy,
    sender: Sender | None = None,
) -> Decision:
    """A quote: renewal, new purchase or alignment, self-service, partner or sales (QUO-1, QUO-3).

    Request: INVALID_QUANTITY (no subscription, seats ≤ 0, negative seats to add), the bulk
    limit, QUO-3 (MIXED_CSN, MIXED_CURRENCY, MIXED_PARTNER), QUO-2 (TOO_MANY_RECIPIENTS),
    ALIGN-1 for an alignment, and for self-service only QUO-4 (CURRENCY_CHANGE, SEAT_ADDITION,
    SUCCESS_PLAN, NEW_CREDIT_LINE, FUTURE_START_DATE).
    Per subscription: ROLE-1 (for a partner quote, its agent of record too); a renewal quote
    follows the renewal window with the 45-day grace (WIN-1, WIN-2); a new-purchase quote has no
    window and converts a trial (LIFE-1); SELF-1/SELF-2 for self-service only; NO_PRICE.
    Promotions apply by themselves (QUO-6). A quote is one document: it is allowed only when
    every subscription is. AUTO-5: a renewal quote that changes a subscription with auto-renew
    on is allowed with the advisory AUTO_RENEW_SHOULD_BE_OFF.
    A proven sender of another channel than the request's, or one subscription the sender may
    not quote, refuses the whole quote with NOT_AUTHORIZED and nothing more (issue 16).
    """
    pricing = Pricing.of(prices, promotions, today=today, policy=policy)
    changes = request.changes
    ids = unique_ids(request.subscription_ids)
    resolved = resolve(subscriptions, ids)
    known = [s for _, s in resolved if s is not None]
    if sender is not None and sender.channel != request.channel:
        return refused(Action.QUOTE)
    partner = request.channel == "partner"  # the agent of record may quote for its customer
    if strangers := strangers_among(actor, known, sender, agent_of_record_may_act=partner):
        return refused(Action.QUOTE, strangers)
    target_date = alignment_target(known, request, today)

    def find(subscription: Subscription) -> Finding:
        term = changes.term or subscription.renewal_term
        seats = changes.seats if changes.seats is not None else subscription.renewal_seats
        currency = changes.currency or subscription.currency
        reasons = [
            # A bad `changes.seats` is the request's reason; a subscription's own seats are its.
            *seat_count_reasons(subscription.renewal_seats if changes.seats is None else None),
        ]
        line: PriceLine | None
        next_renewal_date: date | None
        if request.kind == "renewal":
            reasons += renewal_timing_reasons(subscription, today, RenewalMethod.QUOTE, policy)
            line = pricing.renewal(subscription, term=term, seats=seats, currency=currency)
            next_renewal_date = renewed_until(subscription, term, today, policy)
        elif request.kind == "new":
            starts_on = changes.start_date or today
            line = pricing.new_purchase(
                subscription, term=term, seats=seats, currency=currency, starts_on=starts_on
            )
            next_renewal_date = new_purchase_term(starts_on, term)[1]
        else:
            reasons += current_term_reasons(subscription, today)
            reasons += alignment_target_reasons(subscription, target_date)
            reasons += alignment_method_reasons(subscription)
            line = pricing.alignment(subscription, target_date=target_date, currency=currency)
            next_renewal_date = None if is_trial(subscription) else target_date
        if request.channel == "self_service":
            reasons += self_service_reasons(subscription, policy)
        changes_subscription = (term, seats, currency) != (
            subscription.renewal_term,
            subscription.renewal_seats,
            subscription.currency,
        )
        advisories: tuple[Advisory, ...] = ()
        if request.kind == "renewal" and subscription.auto_renew and changes_subscription:
            advisories = (Advisory.AUTO_RENEW_SHOULD_BE_OFF,)
        return Finding(
            reasons=reasons,
            line=line,
            price_needed=request.kind == "new" or not is_trial(subscription),
            next_renewal_date=next_renewal_date,
            advisories=advisories,
        )

    asked = Asked(actor=actor, sender=sender, today=today, policy=policy)
    tally = assess_each(resolved, find, asked)
    # A quote in another currency is a transaction in that currency (QUO-2 groups).
    quoted = [replace(s, currency=changes.currency or s.currency) for s in tally.charged]

    request_reasons = [
        *request_size_reasons(ids, policy),
        *seat_count_reasons(changes.seats),
        *same_customer_reasons(known, check_partner=True),
    ]
    if changes.add_seats is not None and changes.add_seats < 0:
        request_reasons.append(Reason.INVALID_QUANTITY)
    if len(request.recipients) > policy.max_quote_recipients:
        request_reasons.append(Reason.TOO_MANY_RECIPIENTS)
    if request.kind == "alignment":
        request_reasons += alignment_reasons(known)
    else:
        request_reasons += one_charge_reasons(known)
    if request.channel == "self_service":
        request_reasons += _not_self_service_reasons(request, known, today)

    expires_on = today + timedelta(days=policy.quote_validity_days)
    if request.kind == "renewal" and quoted:
        # A renewal quote can't be paid once grace is over (LIFE-3).
        expires_on = min([expires_on, *(grace_ends(s, policy) for s in quoted)])
    return decide_as_one(
        Action.QUOTE,
        tally,
        request_reasons,
        groups=tally.groups(quoted),
        preview=tally.preview(expires_on=expires_on),
    )


def alignment_target(
    subscriptions: Iterable[Subscription], request: QuoteRequest, today: date
) -> date:
    """QUO-3, ALIGN-1: the date an alignment quote moves the renewal dates to — the request's,
    else the latest of the subscriptions' renewal dates (`quote.requested` carries no target:
    the others are aligned on the one that renews last). `quote.sent` says it (`target_date`)."""
    return request.target_date or max((s.renewal_date for s in subscriptions), default=today)


def _not_self_service_reasons(
    request: QuoteRequest, subscriptions: Sequence[Subscription], today: date
) -> list[Reason]:
    """QUO-4: what a self-service quote can't do (a partner or the sales team can)."""
    changes = request.changes
    reasons: list[Reason] = []
    if changes.currency is not None and any(s.currency != changes.currency for s in subscriptions):
        reasons.append(Reason.CURRENCY_CHANGE)
    if changes.add_seats is not None and changes.add_seats > 0:
        reasons.append(Reason.SEAT_ADDITION)
    if changes.success_plan:
        reasons.append(Reason.SUCCESS_PLAN)
    if changes.new_credit_line:
        reasons.append(Reason.NEW_CREDIT_LINE)
    if changes.start_date is not None:
        if request.kind == "new":
            future = changes.start_date > today
        else:
            future = any(changes.start_date > s.renewal_date for s in subscriptions)
        if future:
            reasons.append(Reason.FUTURE_START_DATE)
    return reasons


def decide_cancel_quote(
    actor: Actor, quote: Quote, *, channel: Channel, today: date, sender: Sender | None = None
) -> Decision:
    """QUO-5: a quote can't be cancelled self-service; its partner (the agent of record named on
    the quote) or the vendor's sales team may cancel it, while it has not expired and has not
    been accepted (QUOTE_ALREADY_ACCEPTED: its order is placed; cancelling would leave the money
    taken and nothing renewed) nor closed (QUOTE_EXPIRED: expired, or cancelled already). Anyone else (another customer, another partner, a body channel
    its proven sender contradicts) gets NOT_AUTHORIZED and nothing more (issue 16)."""
    if not may_handle_quote(actor, quote, channel=channel, sender=sender):
        return refused(Action.CANCEL_QUOTE)
    reasons: list[Reason] = []
    if quote.accepted:
        reasons.append(Reason.QUOTE_ALREADY_ACCEPTED)
    if channel == "self_service":
        reasons.append(Reason.QUOTE_CANCELLATION_NOT_SELF_SERVICE)
    if today > quote.expires_on or quote.closed:
        reasons.append(Reason.QUOTE_EXPIRED)
    return Decision(
        action=Action.CANCEL_QUOTE, allowed=not reasons, reasons=in_contract_order(reasons)
    )


def decide_accept_quote(
    actor: Actor,
    quote: Quote,
    *,
    buyer: Person,
    channel: Channel,
    today: date,
    sender: Sender | None = None,
    subscriptions: Sequence[Subscription] = (),
) -> Decision:
    """QUO-8, ROLE-1: the buyer accepts and pays, before the quote expires or is cancelled
    (QUOTE_EXPIRED), in one charge on one payment method (MAN-2: `subscriptions` as they are
    now, PAYMENT_METHOD_MISMATCH when their methods changed apart since the quote was sent).
    Through a partner, only the quote's agent of record relays it. Anyone else gets
    NOT_AUTHORIZED and nothing more: not whether it expired, nor whether it was accepted."""
    if not may_handle_quote(actor, quote, channel=channel, sender=sender) or (
        actor.csn != quote.csn or actor.user_id != buyer.user_id
    ):
        return refused(Action.ACCEPT_QUOTE)
    reasons = [Reason.QUOTE_EXPIRED] if today > quote.expires_on or quote.closed else []
    reasons += one_charge_reasons(subscriptions)
    return Decision(action=Action.ACCEPT_QUOTE, allowed=not reasons, reasons=tuple(reasons))
