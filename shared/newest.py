"""The newest of each subscription's snapshots or states in a batch: a batch may hold several
of one subscription (replays, a busy subscription), and only the highest revision or version
counts — the first of equals, as one by one would keep it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol, TypeVar


class OfASubscription(Protocol):
    @property
    def subscription_id(self) -> str: ...


Item = TypeVar("Item", bound=OfASubscription)


def newest_per_subscription(items: Iterable[Item], rank: Callable[[Item], int]) -> dict[str, Item]:
    """Each subscription's item of the highest `rank`, by subscription id (in first-seen order)."""
    newest: dict[str, Item] = {}
    for item in items:
        held = newest.get(item.subscription_id)
        if held is None or rank(held) < rank(item):
            newest[item.subscription_id] = item
    return newest
