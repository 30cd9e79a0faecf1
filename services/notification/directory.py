"""The notification service's directory: who the buyer of a subscription is and what it renews
on — kept from the events, in notification's own schema (store.py)."""

from __future__ import annotations

from typing import Any

from services.notification import store
from shared.contracts.state_events import SubscriptionState
from shared.contracts.subscription_events import SubscriptionUpserted
from shared.messaging.consumer import BatchEventHandler, Delivery, UnitOfWork, handles_batch
from shared.newest import newest_per_subscription
from shared.state_following import follow_states
from shared.test_clocks import save_time_zones


def save_snapshots(today_of: Any) -> BatchEventHandler:
    """`subscription.upserted`: the newest snapshot of each subscription of the batch kept."""

    async def save(unit: UnitOfWork, deliveries: list[Delivery[SubscriptionUpserted]]) -> None:
        snapshots: list[SubscriptionUpserted] = [delivery.data for delivery in deliveries]
        latest = newest_per_subscription(snapshots, lambda s: s.revision)
        await save_time_zones(unit.connection, latest.values())  # before today: it reads them
        today = await today_of(unit.connection, {s.csn for s in latest.values()})
        await store.save_subscriptions(unit.connection, latest.values(), today)

    return handles_batch(save)


async def _follow(unit: UnitOfWork, deliveries: list[Delivery[SubscriptionState]]) -> None:
    await store.move_renewal_dates(
        unit.connection, await follow_states(unit.connection, deliveries)
    )


follow_state: BatchEventHandler = handles_batch(_follow)
"""`subscription.state`: the newest state of each subscription kept, its renewal date moved."""
