"""The skeleton every `decide_*` shares: one answer per subscription asked for, and the request's.

An action says only what is particular to it, a `Finding` per subscription (its reasons, the
line it would charge, the renewal date it leaves); `assess` adds what every action does the
same way (NO_PRICE, no amount for an impossible seat count, the state, window and grace), and
`assess_each` walks the ids asked for: unknown, not the actor's, or assessed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date

from shared.eligibility.checks import authorization_reasons, request_size_reasons
from shared.eligibility.dates import grace_ends, state_of, window_opens
from shared.eligibility.grouping import Group, group_subscriptions
from shared.eligibility.identity import Sender, applies_self_service
from shared.eligibility.model import Actor, Subscription
from shared.eligibility.outcomes import Action, Advisory, Decision, SubscriptionOutcome
from shared.eligibility.policy import Policy
from shared.eligibility.price_lines import is_trial
from shared.eligibility.pricing import Money, Preview, PriceLine, preview_of
from shared.eligibility.reasons import Reason
from shared.eligibility.self_service import self_service_reasons


@dataclass(frozen=True, kw_only=True)
class Finding:
    """What one action finds about one subscription the actor may act on."""

    reasons: Sequence[Reason]
    next_renewal_date: date | None
    line: PriceLine | None = None
    """What the action would charge; None when there is no price for it (or nothing to charge)."""
    price_needed: bool = False
    """NO_PRICE when this is true and `line` is None: the action charges something."""
    advisories: tuple[Advisory, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Assessed:
    """One subscription's outcome, and the line it is charged when it is allowed."""

    outcome: SubscriptionOutcome
    charged: PriceLine | None


def assess(
    subscription: Subscription, finding: Finding, *, today: date, policy: Policy
) -> Assessed:
    """The outcome of a finding: with NO_PRICE when a needed price is missing, and no amount for
    an impossible seat count (refused with INVALID_QUANTITY)."""
    reasons = list(finding.reasons)
    if finding.price_needed and finding.line is None:
        reasons.append(Reason.NO_PRICE)
    line = finding.line if finding.line is not None and finding.line.seats > 0 else None
    trial = is_trial(subscription)  # LIFE-1: no window and no grace for a trial
    outcome = SubscriptionOutcome(
        subscription_id=subscription.subscription_id,
        reasons=tuple(reasons),
        state=state_of(subscription, today, policy),
        window_opens=None if trial else window_opens(subscription.renewal_date, policy),
        grace_ends=None if trial else grace_ends(subscription, policy),
        next_renewal_date=finding.next_renewal_date,
        price_basis=line.basis if line is not None else None,
        unit_price=Money(line.unit_price, line.currency) if line is not None else None,
        total=Money(line.amount, line.currency) if line is not None else None,
        advisories=finding.advisories,
    )
    return Assessed(outcome=outcome, charged=line if outcome.allowed else None)


@dataclass
class Tally:
    """The outcomes of a request, in the order asked, and the allowed subscriptions it charges."""

    outcomes: list[SubscriptionOutcome] = field(default_factory=list)
    lines: dict[str, PriceLine] = field(default_factory=dict)
    charged: list[Subscription] = field(default_factory=list)

    def add(self, subscription: Subscription, assessed: Assessed) -> None:
        self.outcomes.append(assessed.outcome)
        if assessed.charged is not None:
            self.lines[subscription.subscription_id] = assessed.charged
            self.charged.append(subscription)

    @property
    def any_allowed(self) -> bool:
        return any(o.allowed for o in self.outcomes)

    @property
    def all_allowed(self) -> bool:
        return bool(self.outcomes) and all(o.allowed for o in self.outcomes)

    def groups(
        self,
        subscriptions: Sequence[Subscription] | None = None,
        *,
        by_payment_method: bool = False,
    ) -> tuple[Group, ...]:
        """MAN-2, QUO-2: the charged subscriptions (or these, as they are charged) in groups."""
        amounts = {i: Money(line.amount, line.currency) for i, line in self.lines.items()}
        charged = self.charged if subscriptions is None else subscriptions
        return group_subscriptions(charged, amounts, by_payment_method=by_payment_method)

    def preview(self, expires_on: date | None = None) -> Preview:
        return preview_of(self.lines.values(), expires_on=expires_on)


@dataclass(frozen=True, kw_only=True)
class Asked:
    """Who asks (the actor, and the sender when proven), on which day, under which policy."""

    actor: Actor
    sender: Sender | None
    today: date
    policy: Policy

    def may_act(self, subscription: Subscription) -> bool:
        """ROLE-1 for this actor and sender (the agent of record aside)."""
        return authorized(self.actor, subscription, self.sender)


def assess_each(
    resolved: Sequence[tuple[str, Subscription | None]],
    find: Callable[[Subscription], Finding],
    asked: Asked,
    *,
    one_by_one: bool = False,
) -> Tally:
    """Every id asked for: unknown, NOT_AUTHORIZED `one_by_one` when the actor may not act on it,
    else its finding assessed. (A request refused whole for a stranger has checked already.)"""
    tally = Tally()
    for subscription_id, subscription in resolved:
        if subscription is None:
            tally.outcomes.append(unknown(subscription_id, asked.sender))
        elif one_by_one and not asked.may_act(subscription):
            tally.outcomes.append(not_authorized(subscription_id))
        else:
            assessed = assess(
                subscription, find(subscription), today=asked.today, policy=asked.policy
            )
            tally.add(subscription, assessed)
    return tally


def decide_one_by_one(
    action: Action,
    asked: Asked,
    subscriptions: Iterable[Subscription],
    requested_ids: Sequence[str],
    find: Callable[[Subscription], Finding],
    *,
    charges: bool,
) -> Decision:
    """A bulk request (MAN-1, AUTO-2), each subscription on its own: one the actor may not act
    on is refused NOT_AUTHORIZED and nothing more, the others are assessed. Allowed when the
    request is within the bulk limit and at least one subscription is allowed. One that
    `charges` groups them into transactions (MAN-2: one charge per group, with one method valid
    for every subscription in it) and previews the charge."""
    ids = unique_ids(requested_ids)
    tally = assess_each(resolve(subscriptions, ids), find, asked, one_by_one=True)
    request_reasons = request_size_reasons(ids, asked.policy)
    return Decision(
        action=action,
        allowed=not request_reasons and tally.any_allowed,
        reasons=tuple(request_reasons),
        subscriptions=tuple(tally.outcomes),
        groups=tally.groups(by_payment_method=True) if charges else (),
        preview=tally.preview() if charges else None,
    )


def decide_as_one(
    action: Action,
    tally: Tally,
    request_reasons: Sequence[Reason],
    *,
    groups: tuple[Group, ...],
    preview: Preview,
) -> Decision:
    """A request that is one thing (a quote, an alignment): allowed only when it has no reason
    of its own and every subscription is allowed."""
    return Decision(
        action=action,
        allowed=not request_reasons and tally.all_allowed,
        reasons=tuple(request_reasons),
        subscriptions=tuple(tally.outcomes),
        groups=groups,
        preview=preview,
    )


def decide_one(
    action: Action,
    asked: Asked,
    subscriptions: Iterable[Subscription],
    subscription_id: str,
    request_reasons: list[Reason],
    find: Callable[[Subscription], Finding],
) -> Decision:
    """An action on one subscription: allowed when the request and the subscription have no
    reason; to whoever may not act on it, NOT_AUTHORIZED and nothing more (not even the
    request's own reasons)."""
    subscription = next((s for s in subscriptions if s.subscription_id == subscription_id), None)
    if subscription is None:
        return _single(action, request_reasons, unknown(subscription_id, asked.sender))
    if not asked.may_act(subscription):
        return _single(action, [], not_authorized(subscription_id))
    assessed = assess(subscription, find(subscription), today=asked.today, policy=asked.policy)
    return _single(action, request_reasons, assessed.outcome, assessed.charged)


def _single(
    action: Action,
    request_reasons: list[Reason],
    outcome: SubscriptionOutcome,
    charged: PriceLine | None = None,
) -> Decision:
    return Decision(
        action=action,
        allowed=not request_reasons and outcome.allowed,
        reasons=tuple(request_reasons),
        subscriptions=(outcome,),
        preview=preview_of([charged] if charged is not None else []),
    )


def unique_ids(ids: Iterable[str]) -> tuple[str, ...]:
    """The ids once each, in the order asked (asking twice for one subscription renews it once)."""
    return tuple(dict.fromkeys(ids))


def resolve(
    subscriptions: Iterable[Subscription], ids: Sequence[str]
) -> list[tuple[str, Subscription | None]]:
    by_id = {s.subscription_id: s for s in subscriptions}
    return [(subscription_id, by_id.get(subscription_id)) for subscription_id in ids]


def authorized(
    actor: Actor,
    subscription: Subscription,
    sender: Sender | None,
    *,
    agent_of_record_may_act: bool = False,
) -> bool:
    return not authorization_reasons(
        actor, subscription, agent_of_record_may_act=agent_of_record_may_act, sender=sender
    )


def strangers_among(
    actor: Actor,
    subscriptions: Iterable[Subscription],
    sender: Sender | None,
    *,
    agent_of_record_may_act: bool = False,
) -> list[str]:
    """The ids of the subscriptions the actor may not act on (ROLE-1): one refuses a request
    that is one thing as a whole."""
    return [
        s.subscription_id
        for s in subscriptions
        if not authorized(actor, s, sender, agent_of_record_may_act=agent_of_record_may_act)
    ]


def not_authorized(subscription_id: str) -> SubscriptionOutcome:
    """Issue 16 (OWASP API1): to whoever may not act on it, a subscription says nothing of
    itself — no other reason, no state, no dates, no price."""
    return SubscriptionOutcome(subscription_id=subscription_id, reasons=(Reason.NOT_AUTHORIZED,))


def refused(action: Action, strangers: Sequence[str] = ()) -> Decision:
    """A whole request refused NOT_AUTHORIZED, and nothing more: on the subscriptions that are
    not the actor's when there are some (the others, its own, are not looked at), else on the
    request itself."""
    if strangers:
        outcomes = tuple(not_authorized(subscription_id) for subscription_id in strangers)
        return Decision(action=action, allowed=False, subscriptions=outcomes)
    return Decision(action=action, allowed=False, reasons=(Reason.NOT_AUTHORIZED,))


def unknown(subscription_id: str, sender: Sender | None) -> SubscriptionOutcome:
    """A subscription the product does not hold: UNKNOWN_SUBSCRIPTION to whoever may act for
    every customer (sales; the rules run on their own, without a proven sender); to a
    self-service user or a partner the same NOT_AUTHORIZED as another tenant's subscription,
    so that no answer tells which ids exist (issue 16 item 3, OWASP API1)."""
    if sender is not None and sender.channel != "sales":
        return not_authorized(subscription_id)
    return SubscriptionOutcome(
        subscription_id=subscription_id, reasons=(Reason.UNKNOWN_SUBSCRIPTION,)
    )


def sender_self_service_reasons(
    subscription: Subscription, policy: Policy, sender: Sender | None
) -> tuple[Reason, ...]:
    """SELF-1, SELF-2 when self-service applies to the sender (`applies_self_service`)."""
    return self_service_reasons(subscription, policy) if applies_self_service(sender) else ()
