"""One function per action: who may do what, to which subscriptions, today, and at what price.

Every function is pure: the caller passes the subscriptions it holds, the ids asked for, the
price list, the promotions, today's date and the policy. Nothing raises on business input: an
impossible request is a refused `Decision` listing every reason that applies.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import date, timedelta

from shared.eligibility.checks import (
    alignment_method_reasons,
    alignment_reasons,
    alignment_target_reasons,
    authorization_reasons,
    automatic_payment_reasons,
    current_term_reasons,
    grace_reasons,
    one_charge_reasons,
    renewal_timing_reasons,
    request_size_reasons,
    same_customer_reasons,
    seat_count_reasons,
)
from shared.eligibility.dates import (
    RenewalMethod,
    SubscriptionState,
    add_term,
    grace_ends,
    new_purchase_term,
    renewed_term,
    state_of,
    window_opens,
)
from shared.eligibility.grouping import group_subscriptions
from shared.eligibility.identity import Sender, applies_self_service, may_handle_quote
from shared.eligibility.model import (
    Actor,
    Channel,
    Person,
    Price,
    Promotion,
    Quote,
    QuoteRequest,
    Subscription,
    Term,
)
from shared.eligibility.outcomes import Action, Advisory, Decision, SubscriptionOutcome
from shared.eligibility.policy import Policy
from shared.eligibility.pricing import (
    Money,
    PriceBasis,
    PriceLine,
    best_promotion,
    find_price,
    preview_of,
    price_line,
    prorated_days_left,
    unit_price,
)
from shared.eligibility.reasons import Reason, in_contract_order
from shared.eligibility.self_service import self_service_reasons
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
    prices, promotions = tuple(prices), tuple(promotions)
    ids = _unique(requested_ids)
    outcomes: list[SubscriptionOutcome] = []
    lines: dict[str, PriceLine] = {}
    renewable: list[Subscription] = []
    for subscription_id, subscription in _resolve(subscriptions, ids):
        if subscription is None:
            outcomes.append(_unknown(subscription_id, sender))
            continue
        if not _authorized(actor, subscription, sender):
            outcomes.append(_not_authorized(subscription_id))
            continue
        line = renewal_line(
            subscription,
            term=subscription.renewal_term,
            seats=subscription.renewal_seats,
            currency=subscription.currency,
            prices=prices,
            promotions=promotions,
            today=today,
            policy=policy,
        )
        reasons = [
            *seat_count_reasons(subscription.renewal_seats),
            *renewal_timing_reasons(subscription, today, RenewalMethod.MANUAL_ONLINE, policy),
            *_self_service_reasons(subscription, policy, sender),
            *_price_reasons(line, needed=not _is_trial(subscription)),
            *reservation_reasons(subscription, reservations.get(subscription_id)),
        ]
        line = _chargeable(line)
        outcome = _outcome(
            subscription,
            reasons,
            today=today,
            policy=policy,
            next_renewal_date=_renewed_until(
                subscription, subscription.renewal_term, today, policy
            ),
            line=line,
        )
        outcomes.append(outcome)
        if outcome.allowed and line is not None:
            lines[subscription_id] = line
            renewable.append(subscription)
    request_reasons = request_size_reasons(ids, policy)
    return Decision(
        action=Action.MANUAL_RENEWAL,
        allowed=not request_reasons and any(o.allowed for o in outcomes),
        reasons=tuple(request_reasons),
        subscriptions=tuple(outcomes),
        # MAN-2: one charge per group, with one method valid for every subscription in it.
        groups=group_subscriptions(renewable, _amounts(lines), by_payment_method=True),
        preview=preview_of(lines.values()),
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
    ids = _unique(requested_ids)
    outcomes: list[SubscriptionOutcome] = []
    for subscription_id, subscription in _resolve(subscriptions, ids):
        if subscription is None:
            outcomes.append(_unknown(subscription_id, sender))
            continue
        if not _authorized(actor, subscription, sender):
            outcomes.append(_not_authorized(subscription_id))
            continue
        reasons: list[Reason] = []
        if enabled:
            if _is_trial(subscription):
                reasons.append(Reason.TRIAL_NOT_RENEWABLE)
            else:
                reasons += grace_reasons(subscription, today, RenewalMethod.AUTOMATIC, policy)
            reasons += automatic_payment_reasons(subscription, policy)
        elif not _is_trial(subscription) and today > grace_ends(subscription, policy):
            reasons.append(Reason.EXPIRED)
        reasons += _self_service_reasons(subscription, policy, sender)
        outcomes.append(
            _outcome(
                subscription,
                reasons,
                today=today,
                policy=policy,
                next_renewal_date=subscription.renewal_date,
            )
        )
    request_reasons = request_size_reasons(ids, policy)
    return Decision(
        action=Action.AUTO_RENEW_ON if enabled else Action.AUTO_RENEW_OFF,
        allowed=not request_reasons and any(o.allowed for o in outcomes),
        reasons=tuple(request_reasons),
        subscriptions=tuple(outcomes),
    )


# ----------------------------------------------------------------------------------------------
# Quotes (QUO-1..8)


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
    prices, promotions = tuple(prices), tuple(promotions)
    changes = request.changes
    ids = _unique(request.subscription_ids)
    resolved = _resolve(subscriptions, ids)
    known = [s for _, s in resolved if s is not None]
    if sender is not None and sender.channel != request.channel:
        return _refused(Action.QUOTE)
    strangers = [
        s.subscription_id
        for s in known
        if not _authorized(actor, s, sender, agent_of_record_may_act=request.channel == "partner")
    ]
    if strangers:
        return _refused(Action.QUOTE, strangers)
    target_date = alignment_target(known, request, today)

    outcomes: list[SubscriptionOutcome] = []
    lines: dict[str, PriceLine] = {}
    quoted: list[Subscription] = []
    for subscription_id, subscription in resolved:
        if subscription is None:
            outcomes.append(_unknown(subscription_id, sender))
            continue
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
            line = renewal_line(
                subscription,
                term=term,
                seats=seats,
                currency=currency,
                prices=prices,
                promotions=promotions,
                today=today,
                policy=policy,
            )
            next_renewal_date = _renewed_until(subscription, term, today, policy)
        elif request.kind == "new":
            starts_on = changes.start_date or today
            line = _new_purchase_line(
                subscription,
                term=term,
                seats=seats,
                currency=currency,
                starts_on=starts_on,
                prices=prices,
                promotions=promotions,
                today=today,
            )
            next_renewal_date = new_purchase_term(starts_on, term)[1]
        else:
            reasons += current_term_reasons(subscription, today)
            reasons += alignment_target_reasons(subscription, target_date)
            reasons += alignment_method_reasons(subscription)
            line = _alignment_line(
                subscription,
                target_date=target_date,
                currency=currency,
                prices=prices,
                promotions=promotions,
                today=today,
                policy=policy,
            )
            next_renewal_date = None if _is_trial(subscription) else target_date
        if request.channel == "self_service":
            reasons += self_service_reasons(subscription, policy)
        reasons += _price_reasons(line, needed=request.kind == "new" or not _is_trial(subscription))
        line = _chargeable(line)
        changes_subscription = (term, seats, currency) != (
            subscription.renewal_term,
            subscription.renewal_seats,
            subscription.currency,
        )
        advisories: tuple[Advisory, ...] = ()
        if request.kind == "renewal" and subscription.auto_renew and changes_subscription:
            advisories = (Advisory.AUTO_RENEW_SHOULD_BE_OFF,)
        outcome = _outcome(
            subscription,
            reasons,
            today=today,
            policy=policy,
            next_renewal_date=next_renewal_date,
            line=line,
            advisories=advisories,
        )
        outcomes.append(outcome)
        if outcome.allowed and line is not None:
            lines[subscription_id] = line
            # A quote in another currency is a transaction in that currency (QUO-2 groups).
            quoted.append(replace(subscription, currency=currency))

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
    return Decision(
        action=Action.QUOTE,
        allowed=not request_reasons and bool(outcomes) and all(o.allowed for o in outcomes),
        reasons=tuple(request_reasons),
        subscriptions=tuple(outcomes),
        groups=group_subscriptions(quoted, _amounts(lines)),
        preview=preview_of(lines.values(), expires_on=expires_on),
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
        return _refused(Action.CANCEL_QUOTE)
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
        return _refused(Action.ACCEPT_QUOTE)
    reasons = [Reason.QUOTE_EXPIRED] if today > quote.expires_on or quote.closed else []
    reasons += one_charge_reasons(subscriptions)
    return Decision(action=Action.ACCEPT_QUOTE, allowed=not reasons, reasons=tuple(reasons))


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
    prices, promotions = tuple(prices), tuple(promotions)
    request_reasons = seat_count_reasons(seats)
    if term is None and seats is None:
        request_reasons.append(Reason.INVALID_QUANTITY)
    subscription = _find(subscriptions, subscription_id)
    if subscription is None:
        return _single(Action.CHANGE_TERMS, request_reasons, _unknown(subscription_id, sender))
    if not _authorized(actor, subscription, sender):
        return _single(Action.CHANGE_TERMS, [], _not_authorized(subscription_id))
    new_term = term or subscription.renewal_term
    new_seats = seats if seats is not None else subscription.renewal_seats
    line = renewal_line(
        subscription,
        term=new_term,
        seats=new_seats,
        currency=subscription.currency,
        prices=prices,
        promotions=promotions,
        today=max(today, subscription.renewal_date),  # charged on the renewal date
        policy=policy,
    )
    reasons: list[Reason] = []
    if _is_trial(subscription):
        reasons.append(Reason.TRIAL_NOT_RENEWABLE)
    elif today > grace_ends(subscription, policy):
        reasons.append(Reason.EXPIRED)
    reasons += _self_service_reasons(subscription, policy, sender)
    reasons += _price_reasons(line, needed=not _is_trial(subscription))
    line = _chargeable(line)
    outcome = _outcome(
        subscription,
        reasons,
        today=today,
        policy=policy,
        next_renewal_date=subscription.renewal_date,
        line=line,
    )
    return _single(Action.CHANGE_TERMS, request_reasons, outcome, line)


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
    prices, promotions = tuple(prices), tuple(promotions)
    request_reasons = seat_count_reasons(seats)
    subscription = _find(subscriptions, subscription_id)
    if subscription is None:
        return _single(Action.ADD_SEATS, request_reasons, _unknown(subscription_id, sender))
    if not _authorized(actor, subscription, sender):
        return _single(Action.ADD_SEATS, [], _not_authorized(subscription_id))
    price = find_price(prices, subscription.product_code, subscription.term, subscription.currency)
    line = None
    if price is not None and not _is_trial(subscription):
        days_left, term_days = prorated_days_left(
            today, subscription.renewal_date, subscription.term
        )
        line = price_line(
            subscription_id=subscription.subscription_id,
            product_code=subscription.product_code,
            currency=subscription.currency,
            term=subscription.term,
            seats=seats,
            basis=PriceBasis.RENEWAL,
            exact_unit_price=unit_price(price, PriceBasis.RENEWAL, policy),
            starts_on=today,
            ends_on=subscription.renewal_date,
            promotion=best_promotion(promotions, subscription.product_code, today),
            prorated_days=days_left,
            term_days=term_days,
        )
    reasons = [
        *seat_count_reasons(subscription.seats),
        *current_term_reasons(subscription, today),
    ]
    reasons += _self_service_reasons(subscription, policy, sender)
    reasons += _price_reasons(line, needed=not _is_trial(subscription))
    line = _chargeable(line)
    outcome = _outcome(
        subscription,
        reasons,
        today=today,
        policy=policy,
        next_renewal_date=subscription.renewal_date,
        line=line,
    )
    return _single(Action.ADD_SEATS, request_reasons, outcome, line)


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
    prices, promotions = tuple(prices), tuple(promotions)
    ids = _unique(requested_ids)
    resolved = _resolve(subscriptions, ids)
    known = [s for _, s in resolved if s is not None]
    strangers = [s.subscription_id for s in known if not _authorized(actor, s, sender)]
    if strangers:
        return _refused(Action.ALIGN_DATES, strangers)
    outcomes: list[SubscriptionOutcome] = []
    lines: dict[str, PriceLine] = {}
    aligned: list[Subscription] = []
    for subscription_id, subscription in resolved:
        if subscription is None:
            outcomes.append(_unknown(subscription_id, sender))
            continue
        line = _alignment_line(
            subscription,
            target_date=target_date,
            currency=subscription.currency,
            prices=prices,
            promotions=promotions,
            today=today,
            policy=policy,
        )
        reasons = [
            *seat_count_reasons(subscription.renewal_seats),
            *current_term_reasons(subscription, today),
            *alignment_target_reasons(subscription, target_date),
            *alignment_method_reasons(subscription),
            *_self_service_reasons(subscription, policy, sender),
            *_price_reasons(line, needed=not _is_trial(subscription)),
        ]
        line = _chargeable(line)
        outcome = _outcome(
            subscription,
            reasons,
            today=today,
            policy=policy,
            next_renewal_date=None if _is_trial(subscription) else target_date,
            line=line,
        )
        outcomes.append(outcome)
        if outcome.allowed and line is not None:
            lines[subscription_id] = line
            aligned.append(subscription)
    request_reasons = [
        *request_size_reasons(ids, policy),
        *same_customer_reasons(known, check_partner=False),
        *alignment_reasons(known),
    ]
    return Decision(
        action=Action.ALIGN_DATES,
        allowed=not request_reasons and bool(outcomes) and all(o.allowed for o in outcomes),
        reasons=tuple(request_reasons),
        subscriptions=tuple(outcomes),
        groups=group_subscriptions(aligned, _amounts(lines)),
        preview=preview_of(lines.values()),
    )


# ----------------------------------------------------------------------------------------------
# Helpers


def _unique(ids: Iterable[str]) -> tuple[str, ...]:
    """The ids once each, in the order asked (asking twice for one subscription renews it once)."""
    return tuple(dict.fromkeys(ids))


def _resolve(
    subscriptions: Iterable[Subscription], ids: Sequence[str]
) -> list[tuple[str, Subscription | None]]:
    by_id = {s.subscription_id: s for s in subscriptions}
    return [(subscription_id, by_id.get(subscription_id)) for subscription_id in ids]


def _find(subscriptions: Iterable[Subscription], subscription_id: str) -> Subscription | None:
    return next((s for s in subscriptions if s.subscription_id == subscription_id), None)


def _authorized(
    actor: Actor,
    subscription: Subscription,
    sender: Sender | None,
    *,
    agent_of_record_may_act: bool = False,
) -> bool:
    return not authorization_reasons(
        actor, subscription, agent_of_record_may_act=agent_of_record_may_act, sender=sender
    )


def _not_authorized(subscription_id: str) -> SubscriptionOutcome:
    """Issue 16 (OWASP API1): to whoever may not act on it, a subscription says nothing of
    itself — no other reason, no state, no dates, no price."""
    return SubscriptionOutcome(subscription_id=subscription_id, reasons=(Reason.NOT_AUTHORIZED,))


def _refused(action: Action, strangers: Sequence[str] = ()) -> Decision:
    """A whole request refused NOT_AUTHORIZED, and nothing more: on the subscriptions that are
    not the actor's when there are some (the others, its own, are not looked at), else on the
    request itself."""
    if strangers:
        outcomes = tuple(_not_authorized(subscription_id) for subscription_id in strangers)
        return Decision(action=action, allowed=False, subscriptions=outcomes)
    return Decision(action=action, allowed=False, reasons=(Reason.NOT_AUTHORIZED,))


def _self_service_reasons(
    subscription: Subscription, policy: Policy, sender: Sender | None
) -> tuple[Reason, ...]:
    return self_service_reasons(subscription, policy) if applies_self_service(sender) else ()


def _unknown(subscription_id: str, sender: Sender | None) -> SubscriptionOutcome:
    """A subscription the product does not hold: UNKNOWN_SUBSCRIPTION to whoever may act for
    every customer (sales; the rules run on their own, without a proven sender); to a
    self-service user or a partner the same NOT_AUTHORIZED as another tenant's subscription,
    so that no answer tells which ids exist (issue 16 item 3, OWASP API1)."""
    if sender is not None and sender.channel != "sales":
        return _not_authorized(subscription_id)
    return SubscriptionOutcome(
        subscription_id=subscription_id, reasons=(Reason.UNKNOWN_SUBSCRIPTION,)
    )


def _single(
    action: Action,
    request_reasons: list[Reason],
    outcome: SubscriptionOutcome,
    line: PriceLine | None = None,
) -> Decision:
    return Decision(
        action=action,
        allowed=not request_reasons and outcome.allowed,
        reasons=tuple(request_reasons),
        subscriptions=(outcome,),
        preview=preview_of([line] if line is not None and outcome.allowed else []),
    )


def _outcome(
    subscription: Subscription,
    reasons: Iterable[Reason],
    *,
    today: date,
    policy: Policy,
    next_renewal_date: date | None,
    line: PriceLine | None = None,
    advisories: tuple[Advisory, ...] = (),
) -> SubscriptionOutcome:
    trial = _is_trial(subscription)  # LIFE-1: no window and no grace for a trial
    return SubscriptionOutcome(
        subscription_id=subscription.subscription_id,
        reasons=tuple(reasons),
        state=state_of(subscription, today, policy),
        window_opens=None if trial else window_opens(subscription.renewal_date, policy),
        grace_ends=None if trial else grace_ends(subscription, policy),
        next_renewal_date=next_renewal_date,
        price_basis=line.basis if line is not None else None,
        unit_price=Money(line.unit_price, line.currency) if line is not None else None,
        total=Money(line.amount, line.currency) if line is not None else None,
        advisories=advisories,
    )


def _price_reasons(line: PriceLine | None, *, needed: bool) -> list[Reason]:
    """NO_PRICE when the action charges something and the price list has no price for it."""
    return [Reason.NO_PRICE] if needed and line is None else []


def _chargeable(line: PriceLine | None) -> PriceLine | None:
    """No amount for an impossible seat count (refused with INVALID_QUANTITY)."""
    return line if line is not None and line.seats > 0 else None


def _is_trial(subscription: Subscription) -> bool:
    return subscription.status == "trial"


def _amounts(lines: dict[str, PriceLine]) -> dict[str, Money]:
    return {i: Money(line.amount, line.currency) for i, line in lines.items()}


def _is_expired(subscription: Subscription, today: date, policy: Policy) -> bool:
    return state_of(subscription, today, policy) is SubscriptionState.EXPIRED


def _renewed_until(
    subscription: Subscription, term: Term, today: date, policy: Policy
) -> date | None:
    """LIFE-4: the next renewal date after renewing (from the current renewal date, early or in
    grace); after expiry, what a new purchase today would give (LIFE-3); none for a trial."""
    if _is_trial(subscription):
        return None
    if _is_expired(subscription, today, policy):
        return new_purchase_term(today, term)[1]
    return renewed_term(subscription, term)[1]


def renewal_line(
    subscription: Subscription,
    *,
    term: Term,
    seats: int,
    currency: str,
    prices: Sequence[Price],
    promotions: Sequence[Promotion],
    today: date,
    policy: Policy,
) -> PriceLine | None:
    """PRICE-1: before expiry the renewal price of the term renewed into (also after a term
    switch), from the current renewal date (LIFE-4); after expiry a new purchase at the list
    price, from today (LIFE-3). A trial renews at no price: it can't be renewed (LIFE-1)."""
    if _is_trial(subscription):
        return None
    if _is_expired(subscription, today, policy):
        return _new_purchase_line(
            subscription,
            term=term,
            seats=seats,
            currency=currency,
            starts_on=today,
            prices=prices,
            promotions=promotions,
            today=today,
        )
    price = find_price(prices, subscription.product_code, term, currency)
    if price is None:
        return None
    starts_on, ends_on = renewed_term(subscription, term)
    return price_line(
        subscription_id=subscription.subscription_id,
        product_code=subscription.product_code,
        currency=currency,
        term=term,
        seats=seats,
        basis=PriceBasis.RENEWAL,
        exact_unit_price=unit_price(price, PriceBasis.RENEWAL, policy),
        starts_on=starts_on,
        ends_on=ends_on,
        promotion=best_promotion(promotions, subscription.product_code, today),
    )


def _new_purchase_line(
    subscription: Subscription,
    *,
    term: Term,
    seats: int,
    currency: str,
    starts_on: date,
    prices: Sequence[Price],
    promotions: Sequence[Promotion],
    today: date,
) -> PriceLine | None:
    """PRICE-1, LIFE-3: a new subscription pays the list price."""
    price = find_price(prices, subscription.product_code, term, currency)
    if price is None:
        return None
    return price_line(
        subscription_id=subscription.subscription_id,
        product_code=subscription.product_code,
        currency=currency,
        term=term,
        seats=seats,
        basis=PriceBasis.LIST,
        exact_unit_price=price.list_price,
        starts_on=starts_on,
        ends_on=add_term(starts_on, term),
        promotion=best_promotion(promotions, subscription.product_code, today),
    )


def _alignment_line(
    subscription: Subscription,
    *,
    target_date: date,
    currency: str,
    prices: Sequence[Price],
    promotions: Sequence[Promotion],
    today: date,
    policy: Policy,
) -> PriceLine | None:
    """ALIGN-1: the extension from the renewal date to the target, pro rata of the term that
    would start on the renewal date, at the renewal price (never more than a full term)."""
    if _is_trial(subscription):
        return None
    term = subscription.renewal_term
    price = find_price(prices, subscription.product_code, term, currency)
    if price is None:
        return None
    starts_on = subscription.renewal_date
    term_days = (add_term(starts_on, term) - starts_on).days
    extension_days = min(max((target_date - starts_on).days, 0), term_days)
    return price_line(
        subscription_id=subscription.subscription_id,
        product_code=subscription.product_code,
        currency=currency,
        term=term,
        seats=subscription.renewal_seats,
        basis=PriceBasis.RENEWAL,
        exact_unit_price=unit_price(price, PriceBasis.RENEWAL, policy),
        starts_on=starts_on,
        ends_on=target_date,
        promotion=best_promotion(promotions, subscription.product_code, today),
        prorated_days=extension_days,
        term_days=term_days,
    )
