"""Transactions of a bulk request: one per CSN, currency and purchase method (MAN-2, QUO-2), and
for a manual renewal one per payment method too (MAN-2: one charge, one method)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from shared.eligibility.model import PaymentMethod, PurchaseMethod, Subscription
from shared.eligibility.pricing import Money

GroupKey = tuple[str, str, PurchaseMethod]


@dataclass(frozen=True, kw_only=True)
class Group:
    csn: str
    currency: str
    purchase_method: PurchaseMethod
    subscription_ids: tuple[str, ...]
    total: Money | None
    """The sum of the subscriptions' amounts; None when one of them has no amount."""
    payment_method: PaymentMethod | None = None
    """The one method every subscription of the group is charged with (MAN-2); None when the
    grouping was not by payment method (a quote is paid by whoever accepts it)."""


def group_key(subscription: Subscription) -> GroupKey:
    return subscription.csn, subscription.currency, subscription.purchase_method


def group_subscriptions(
    subscriptions: Iterable[Subscription],
    amounts: Mapping[str, Money] | None = None,
    *,
    by_payment_method: bool = False,
) -> tuple[Group, ...]:
    """MAN-2, QUO-2: partition the subscriptions by CSN, currency and purchase method, in the
    order each group first appears; each group is one transaction (MAN-3: one confirmation).

    `by_payment_method` (MAN-2, a charge): subscriptions whose payment methods can't share one
    charge (a card and a bank transfer, a valid card and an invalid one) are split too, so no
    subscription is ever charged to another's method. The contract names a method by its type,
    whether it is recurring and whether it is valid: two methods equal in these are one method.
    """
    amounts = amounts or {}
    members: dict[tuple[GroupKey, PaymentMethod | None], list[Subscription]] = {}
    for subscription in subscriptions:
        method = subscription.payment_method if by_payment_method else None
        members.setdefault((group_key(subscription), method), []).append(subscription)
    groups = []
    for ((csn, currency, purchase_method), method), subs in members.items():
        ids = tuple(s.subscription_id for s in subs)
        groups.append(
            Group(
                csn=csn,
                currency=currency,
                purchase_method=purchase_method,
                subscription_ids=ids,
                total=_sum(ids, amounts),
                payment_method=method,
            )
        )
    return tuple(groups)


def _sum(ids: tuple[str, ...], amounts: Mapping[str, Money]) -> Money | None:
    if not ids or any(i not in amounts for i in ids):
        return None
    currencies = {amounts[i].currency for i in ids}
    if len(currencies) != 1:
        return None
    return Money(sum((amounts[i].amount for i in ids), Decimal(0)), currencies.pop())
