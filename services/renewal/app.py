"""The renewal service: subscriptions, the catalog, renewal commands and billing's answers."""

from __future__ import annotations

from faststream import FastStream

from services.renewal.abandoned import AbandonedOrders
from services.renewal.auto_renew import set_auto_renew_handler
from services.renewal.bulk_worker import BulkWorker
from services.renewal.changes import ChangeHandlers
from services.renewal.due_date_engine import DueDateEngine
from services.renewal.open_quotes import quote_events_handler
from services.renewal.quote_orders import quote_order_handler
from services.renewal.refusals import refuse_renewal_command
from services.renewal.renewal_requests import record_renewal_request
from services.renewal.settings import RenewalSettings
from services.renewal.settlement import billing_events_handler
from services.renewal.state import announced, snapshot_handler
from shared.catalog.store import catalog_handler
from shared.clock import Clock, SystemClock
from shared.contracts import (
    billing_commands,
    billing_events,
    catalog_events,
    quote_events,
    quote_orders,
    renewal_commands,
    renewal_events,
    state_events,
    subscription_events,
)
from shared.contracts.renewal_commands import RequestRenewal, SetAutoRenew
from shared.messaging.consumer import dispatch_by_type
from shared.messaging.identity import identified
from shared.messaging.runtime import ServiceRuntime
from shared.test_clocks import follow_test_clocks

SERVICE = "renewal"


def create_runtime(settings: RenewalSettings, clock: Clock) -> ServiceRuntime:
    runtime = ServiceRuntime(SERVICE, settings.messaging, settings.database)
    runtime.consume(
        subscription_events.TOPIC,
        subscription_events.REGISTRY,
        dispatch_by_type(
            {
                subscription_events.SubscriptionUpserted: snapshot_handler(
                    settings.policy, settings.source, clock
                )
            }
        ),
    )
    runtime.consume(catalog_events.TOPIC, catalog_events.REGISTRY, catalog_handler())
    # Commands come signed by the portal, the sales tool or a partner's tool (issue 16): an
    # unproven sender, or claims its sender contradicts, are refused before any handler.
    runtime.consume(
        renewal_commands.TOPIC,
        renewal_commands.REGISTRY,
        identified(
            SERVICE,
            dispatch_by_type(
                {
                    RequestRenewal: record_renewal_request(clock, settings.source, settings.policy),
                    SetAutoRenew: set_auto_renew_handler(clock, settings.policy, settings.source),
                    **ChangeHandlers(clock, settings.policy, settings.source).handlers(),
                }
            ),
            refuse_renewal_command(clock, settings.source),
        ),
        signed=True,
    )
    follow_test_clocks(runtime, settings.messaging.test_clocks_enabled)
    runtime.consume(
        billing_events.TOPIC,
        billing_events.REGISTRY,
        billing_events_handler(clock, settings.source, settings.policy),
    )
    runtime.consume(
        quote_events.TOPIC,
        quote_events.REGISTRY,
        # AUTO-5 switches and the open quote: both part of subscription.state.
        announced(
            quote_events_handler(clock, settings.source), settings.policy, settings.source, clock
        ),
    )
    runtime.consume(
        quote_orders.TOPIC,
        quote_orders.REGISTRY,
        dispatch_by_type(
            {
                quote_orders.QuoteOrderRequested: quote_order_handler(
                    clock, settings.policy, settings.source
                )
            }
        ),
    )
    runtime.produces(renewal_events.TOPIC, renewal_events.REGISTRY)
    runtime.produces(quote_orders.ANSWERS_TOPIC, quote_orders.ANSWERS_REGISTRY)
    runtime.produces(billing_commands.TOPIC, billing_commands.REGISTRY)
    runtime.produces(state_events.TOPIC, state_events.REGISTRY)

    runtime.work(
        lambda pool: DueDateEngine(
            pool,
            clock,
            settings.policy,
            source=settings.source,
            batch_size=settings.engine_batch_size,
            interval_seconds=settings.engine_interval_seconds,
            schema=settings.database.schema_name,
            faults=runtime.faults,
        ).work_loop()
    )
    runtime.work(
        lambda pool: AbandonedOrders(
            pool,
            clock,
            source=settings.source,
            batch_size=settings.engine_batch_size,
            poll_seconds=settings.engine_interval_seconds,
            policy=settings.policy,
        ).work_loop()
    )
    return runtime


def create_app(settings: RenewalSettings | None = None, clock: Clock | None = None) -> FastStream:
    return create_runtime(settings or RenewalSettings(), clock or SystemClock()).build_app()


def create_bulk_worker_app(
    settings: RenewalSettings | None = None, clock: Clock | None = None
) -> FastStream:
    """The bulk worker's process: no consumers, the worker loop and its own outbox relay."""
    settings = settings or RenewalSettings()
    runtime = ServiceRuntime("bulk_worker", settings.messaging, settings.database)
    runtime.migrations_of = SERVICE

    runtime.work(
        lambda pool: BulkWorker(
            pool,
            clock or SystemClock(),
            settings.policy,
            source=settings.source,
            per_claim=settings.bulk_batches_per_claim,
            poll_seconds=settings.bulk_poll_seconds,
            faults=runtime.faults,
        ).work_loop()
    )
    return runtime.build_app()
