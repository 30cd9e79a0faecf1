"""The notification service: queues the emails events call for, and delivers them once."""

from __future__ import annotations

from faststream import FastStream

from services.notification.queue import renewal_events_handler
from services.notification.sender import EmailSender
from services.notification.settings import NotificationSettings
from services.notification.templates import EmailRenderer
from shared.clock import Clock, SystemClock
from shared.contracts import notification_events, renewal_events
from shared.messaging.runtime import ServiceRuntime

SERVICE = "notification"


def create_app(
    settings: NotificationSettings | None = None, clock: Clock | None = None
) -> FastStream:
    settings = settings or NotificationSettings()
    clock = clock or SystemClock()
    runtime = ServiceRuntime(SERVICE, settings.messaging, settings.database)
    runtime.consume(renewal_events.TOPIC, renewal_events.REGISTRY, renewal_events_handler(clock))

    async def deliver() -> None:
        await EmailSender(runtime.pools.get(), clock, settings, EmailRenderer()).run()

    runtime.loop("email_sender", deliver)
    runtime.produces(notification_events.TOPIC, notification_events.REGISTRY)
    return runtime.build_app()
