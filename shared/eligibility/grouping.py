"""Transactions of a bulk request: one per CSN, currency and purchase method (MAN-2, QUO-2)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from shared.eligibility.model import PurchaseMethod, Subscription
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


def group_key(subscription: Subscription) -> GroupKey:
    return subscription.csn, subscription.currency, subscription.purchase_method


def group_subscriptions(
    subscriptions: Iterable[Subscription], amounts: Mapping[str, Money] | None = None
) -> tuple[Group, ...]:
    """MAN-2, QUO-2: partition the subscriptions by CSN, currency and purchase method, in the
    order each group first appears; each group is one transaction (MAN-3: one confirmation)."""
    amounts = amounts or {}
    members: dict[GroupKey, list[Subscription]] = {}
    for subscription in subscriptions:
        members.setdefault(group_key(subscription), []).append(subscription)
    groups = []
    for (csn, currency, purchase_method), subs in members.items():
        ids = tuple(s.subscription_id for s in subs)
        groups.append(
            Group(
                csn=csn,
                currency=currency,
                purchase_method=purchase_method,
                subscription_ids=ids,
                total=_sum(ids, amounts),
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
