"""The notification service: queues the emails events call for, and delivers them once."""

from __future__ import annotations

from collections.abc import Mapping

import asyncpg
from faststream import FastStream

from services.notification.directory import follow_state, save_snapshots
from services.notification.notices import notice_handlers
from services.notification.queue import renewal_events_handler
from services.notification.quotes import quote_events_handler
from services.notification.reminders import ReminderScheduler
from services.notification.sender import EmailSender
from services.notification.settings import NotificationSettings
from services.notification.templates import EmailRenderer
from shared.catalog.store import catalog_handler
from shared.clock import Clock, SystemClock
from shared.contracts import (
    billing_events,
    catalog_events,
    notification_events,
    quote_events,
    renewal_events,
    state_events,
    subscription_events,
)
from shared.contracts.billing_events import PaymentAwaitingManual, PaymentFailed
from shared.contracts.subscription_events import SubscriptionUpserted
from shared.messaging.consumer import (
    EventHandler,
    TypeDispatch,
    dispatch_by_type,
    dispatch_some,
)
from shared.messaging.loops import WorkLoop
from shared.messaging.runtime import ServiceRuntime
from shared.test_clocks import CsnClock, follow_test_clocks

SERVICE = "notification"


def billing_events_handler(notices: Mapping[type, EventHandler]) -> TypeDispatch:
    """`billing.events`: only the payments' emails. `payment.failed` and
    `payment.awaiting_manual` name their order's subscriptions and amount (issue 17 item 3), so
    `order.placed` and `payment.succeeded` are skipped by type, unparsed, with no inbox row."""
    return dispatch_some(
        billing_events.REGISTRY,
        {
            PaymentFailed: notices[PaymentFailed],
            PaymentAwaitingManual: notices[PaymentAwaitingManual],
        },
    )


def create_app(
    settings: NotificationSettings | None = None, clock: Clock | None = None
) -> FastStream:
    settings = settings or NotificationSettings()
    clock = clock or SystemClock()
    # Each sender holds a connection of the pool for its whole claim (sender.py): that many on
    # top of what the consumers and the reminders share.
    pool_size = settings.database.pool_max_size + settings.senders
    database = settings.database.model_copy(update={"pool_max_size": pool_size})
    runtime = ServiceRuntime(SERVICE, settings.messaging, database)
    csn_clock = CsnClock(clock)
    notices = notice_handlers(clock, settings)
    runtime.consume(
        subscription_events.TOPIC,
        subscription_events.REGISTRY,
        dispatch_by_type({SubscriptionUpserted: save_snapshots(csn_clock.today_for)}),
    )
    runtime.consume(
        renewal_events.TOPIC, renewal_events.REGISTRY, renewal_events_handler(clock, notices)
    )
    # What renewal owns of each subscription (auto-renew, the next term): reminders follow it.
    runtime.consume(
        state_events.TOPIC,
        state_events.REGISTRY,
        dispatch_by_type({state_events.SubscriptionState: follow_state}),
        inbox=False,  # idempotent by version (the newest wins): no inbox row needed
    )
    runtime.consume(billing_events.TOPIC, billing_events.REGISTRY, billing_events_handler(notices))
    follow_test_clocks(runtime, settings.messaging.test_clocks_enabled)

    runtime.work(
        lambda pool: ReminderScheduler(
            pool, clock, settings.policy, settings, faults=runtime.faults
        ).work_loop()
    )
    runtime.consume(catalog_events.TOPIC, catalog_events.REGISTRY, catalog_handler())
    runtime.consume(
        quote_events.TOPIC, quote_events.REGISTRY, quote_events_handler(clock, settings)
    )
    runtime.produces(notification_events.TOPIC, notification_events.REGISTRY)

    def senders(pool: asyncpg.Pool) -> list[WorkLoop]:
        assert runtime.relay is not None  # made before the loops start
        return EmailSender(
            pool,
            clock,
            settings,
            EmailRenderer(),
            faults=runtime.faults,
            wake_relay=runtime.relay.loop.wake,  # its marks' events: no NOTIFY (migration 017)
        ).loops()

    runtime.work(senders)
    return runtime.build_app()
