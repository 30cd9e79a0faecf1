"""What a decision answers: per subscription and for the request as a whole, with every reason."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from shared.eligibility.dates import SubscriptionState
from shared.eligibility.grouping import Group
from shared.eligibility.pricing import Money, Preview, PriceBasis
from shared.eligibility.reasons import Reason, in_contract_order


class Action(StrEnum):
    MANUAL_RENEWAL = "manual_renewal"
    AUTO_RENEW_ON = "auto_renew_on"
    AUTO_RENEW_OFF = "auto_renew_off"
    QUOTE = "quote"
    CHANGE_TERMS = "change_terms"
    ADD_SEATS = "add_seats"
    ALIGN_DATES = "align_dates"
    CANCEL_QUOTE = "cancel_quote"
    ACCEPT_QUOTE = "accept_quote"


class Advisory(StrEnum):
    """Not a refusal: something the caller should do alongside an allowed action."""

    AUTO_RENEW_SHOULD_BE_OFF = "AUTO_RENEW_SHOULD_BE_OFF"
    """AUTO-5: a renewal quote changes the subscription while auto-renew is on."""


@dataclass(frozen=True, kw_only=True)
class SubscriptionOutcome:
    """One subscription's answer. `next_renewal_date` is its renewal date once the action is
    done; `unit_price` is per seat per term before promotions; `total` what the action charges."""

    subscription_id: str
    reasons: tuple[Reason, ...] = ()
    state: SubscriptionState | None = None
    window_opens: date | None = None
    grace_ends: date | None = None
    next_renewal_date: date | None = None
    price_basis: PriceBasis | None = None
    unit_price: Money | None = None
    total: Money | None = None
    advisories: tuple[Advisory, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "reasons", in_contract_order(self.reasons))

    @property
    def allowed(self) -> bool:
        return not self.reasons


@dataclass(frozen=True, kw_only=True)
class Decision:
    """The answer to one request.

    `reasons` are the request's own (bulk limit, mixed CSN, recipients, quantities…); each
    subscription's are in its outcome. A refused request always has a reason in one or the other.
    """

    action: Action
    allowed: bool
    reasons: tuple[Reason, ...] = ()
    subscriptions: tuple[SubscriptionOutcome, ...] = ()
    groups: tuple[Group, ...] = ()
    preview: Preview | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "reasons", in_contract_order(self.reasons))

    def outcome(self, subscription_id: str) -> SubscriptionOutcome:
        for outcome in self.subscriptions:
            if outcome.subscription_id == subscription_id:
                return outcome
        raise KeyError(subscription_id)

    @property
    def allowed_ids(self) -> tuple[str, ...]:
        return tuple(o.subscription_id for o in self.subscriptions if o.allowed)

    @property
    def refused_ids(self) -> tuple[str, ...]:
        return tuple(o.subscription_id for o in self.subscriptions if not o.allowed)

    @property
    def all_reasons(self) -> tuple[Reason, ...]:
        """The request's reasons and every subscription's, once each, in the contract's order."""
        reasons = list(self.reasons)
        for outcome in self.subscriptions:
            reasons.extend(outcome.reasons)
        return in_contract_order(reasons)
