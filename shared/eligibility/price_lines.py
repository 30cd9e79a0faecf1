"""What an action charges one subscription (PRICE-1, LIFE-3, LIFE-4, SEAT-1, ALIGN-1), and the
renewal date it leaves behind."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from shared.eligibility.dates import (
    SubscriptionState,
    add_term,
    new_purchase_term,
    renewed_term,
    state_of,
)
from shared.eligibility.model import Price, Promotion, Subscription, Term
from shared.eligibility.policy import Policy
from shared.eligibility.pricing import (
    PriceBasis,
    PriceLine,
    best_promotion,
    find_price,
    price_line,
    prorated_days_left,
    unit_price,
)


def is_trial(subscription: Subscription) -> bool:
    return subscription.status == "trial"


def _is_expired(subscription: Subscription, today: date, policy: Policy) -> bool:
    return state_of(subscription, today, policy) is SubscriptionState.EXPIRED


def renewed_until(
    subscription: Subscription, term: Term, today: date, policy: Policy
) -> date | None:
    """LIFE-4: the next renewal date after renewing (from the current renewal date, early or in
    grace); after expiry, what a new purchase today would give (LIFE-3); none for a trial."""
    if is_trial(subscription):
        return None
    if _is_expired(subscription, today, policy):
        return new_purchase_term(today, term)[1]
    return renewed_term(subscription, term)[1]


@dataclass(frozen=True, kw_only=True)
class Pricing:
    """What every line is priced with: the price list, the promotions on offer, the day the
    line is priced on (promotions, expiry) and the policy (renewal discount, PRICE-3). Each
    method gives None when the price list has no price for the line (NO_PRICE)."""

    prices: Sequence[Price]
    promotions: Sequence[Promotion]
    today: date
    policy: Policy

    @classmethod
    def of(
        cls,
        prices: Iterable[Price],
        promotions: Iterable[Promotion],
        *,
        today: date,
        policy: Policy,
    ) -> Pricing:
        """Priced on `today`, from a price list and promotions read once (they may be iterators)."""
        return cls(prices=tuple(prices), promotions=tuple(promotions), today=today, policy=policy)

    def next_renewal(self, subscription: Subscription) -> PriceLine | None:
        """TERM-1, SEAT-2: the next renewal as recorded, its term and seats, in its currency."""
        return self.renewal(
            subscription,
            term=subscription.renewal_term,
            seats=subscription.renewal_seats,
            currency=subscription.currency,
        )

    def renewal(
        self, subscription: Subscription, *, term: Term, seats: int, currency: str
    ) -> PriceLine | None:
        """PRICE-1: before expiry the renewal price of the term renewed into (also after a term
        switch), from the current renewal date (LIFE-4); after expiry a new purchase at the list
        price, from today (LIFE-3). A trial renews at no price: it can't be renewed (LIFE-1)."""
        if is_trial(subscription):
            return None
        if _is_expired(subscription, self.today, self.policy):
            return self.new_purchase(
                subscription, term=term, seats=seats, currency=currency, starts_on=self.today
            )
        starts_on, ends_on = renewed_term(subscription, term)
        return self._line(
            subscription, PriceBasis.RENEWAL, term, seats, currency, starts_on, ends_on
        )

    def new_purchase(
        self, subscription: Subscription, *, term: Term, seats: int, currency: str, starts_on: date
    ) -> PriceLine | None:
        """PRICE-1, LIFE-3: a new subscription pays the list price."""
        ends_on = add_term(starts_on, term)
        return self._line(subscription, PriceBasis.LIST, term, seats, currency, starts_on, ends_on)

    def seat_addition(self, subscription: Subscription, *, seats: int) -> PriceLine | None:
        """SEAT-1: seats added today, at the renewal price of a full term, pro rata for the days
        left until the renewal date (after an early renewal, the term paid ahead too); none for
        a trial, which can't be extended."""
        if is_trial(subscription):
            return None
        term, renewal_date = subscription.term, subscription.renewal_date
        days_left, term_days = prorated_days_left(self.today, renewal_date, term)
        return self._line(
            subscription,
            PriceBasis.RENEWAL,
            term,
            seats,
            subscription.currency,
            self.today,
            renewal_date,
            prorated=(days_left, term_days),
        )

    def alignment(
        self, subscription: Subscription, *, target_date: date, currency: str
    ) -> PriceLine | None:
        """ALIGN-1: the extension from the renewal date to the target, pro rata of the term that
        would start on the renewal date, at the renewal price (never more than a full term)."""
        if is_trial(subscription):
            return None
        term, starts_on = subscription.renewal_term, subscription.renewal_date
        term_days = (add_term(starts_on, term) - starts_on).days
        extension_days = min(max((target_date - starts_on).days, 0), term_days)
        return self._line(
            subscription,
            PriceBasis.RENEWAL,
            term,
            subscription.renewal_seats,
            currency,
            starts_on,
            target_date,
            prorated=(extension_days, term_days),
        )

    def _line(
        self,
        subscription: Subscription,
        basis: PriceBasis,
        term: Term,
        seats: int,
        currency: str,
        starts_on: date,
        ends_on: date,
        *,
        prorated: tuple[int, int] | None = None,
    ) -> PriceLine | None:
        """`seats` of the subscription's product for `term` at the price list's `basis` price,
        with the best promotion of the day (QUO-6); `prorated` is (days charged, days in term)."""
        price = find_price(self.prices, subscription.product_code, term, currency)
        if price is None:
            return None
        prorated_days, term_days = prorated if prorated is not None else (None, None)
        return price_line(
            subscription_id=subscription.subscription_id,
            product_code=subscription.product_code,
            currency=currency,
            term=term,
            seats=seats,
            basis=basis,
            exact_unit_price=unit_price(price, basis, self.policy),
            starts_on=starts_on,
            ends_on=ends_on,
            promotion=best_promotion(self.promotions, subscription.product_code, self.today),
            prorated_days=prorated_days,
            term_days=term_days,
        )
