"""The quote service: quotes from request to paid, cancelled or expired (QUO-1..8), priced from
its own copy of the catalog and decided on its own copy of the subscriptions."""

from __future__ import annotations

from faststream import FastStream

from services.quote.automatic import AutomaticQuotes
from services.quote.directory import follow_state, save_snapshot
from services.quote.expiry import QuoteExpiry
from services.quote.quotes import QuoteHandlers
from services.quote.settings import QuoteSettings
from shared.catalog.store import catalog_handler
from shared.clock import Clock, SystemClock
from shared.contracts import (
    catalog_events,
    quote_commands,
    quote_events,
    quote_orders,
    state_events,
    subscription_events,
)
from shared.messaging.consumer import dispatch_by_type
from shared.messaging.identity import identified
from shared.messaging.runtime import ServiceRuntime
from shared.test_clocks import follow_test_clocks

SERVICE = "quote"


def create_app(settings: QuoteSettings | None = None, clock: Clock | None = None) -> FastStream:
    settings = settings or QuoteSettings()
    clock = clock or SystemClock()
    runtime = ServiceRuntime(SERVICE, settings.messaging, settings.database)
    quotes = QuoteHandlers(clock, settings.policy, settings.source)
    runtime.consume(catalog_events.TOPIC, catalog_events.REGISTRY, catalog_handler())
    runtime.consume(
        subscription_events.TOPIC,
        subscription_events.REGISTRY,
        dispatch_by_type({subscription_events.SubscriptionUpserted: save_snapshot}),
    )
    # What renewal owns of each subscription (dates, auto-renew, the next term): its state.
    runtime.consume(
        state_events.TOPIC,
        state_events.REGISTRY,
        dispatch_by_type({state_events.SubscriptionState: follow_state}),
        inbox=False,  # idempotent by version (the newest wins): no inbox row needed
    )
    # Commands come signed by the portal, the sales tool or a partner's tool (issue 16): an
    # unproven sender, or claims its sender contradicts, are refused before any handler.
    runtime.consume(
        quote_commands.TOPIC,
        quote_commands.REGISTRY,
        identified(SERVICE, dispatch_by_type(quotes.commands()), quotes.refuse()),
        signed=True,
    )
    # Renewal's answers to the orders of accepted quotes, their payment outcomes included: quote
    # reads no `billing.events`, most of which are of renewal's own orders (issue 19 item 3).
    runtime.consume(
        quote_orders.ANSWERS_TOPIC,
        quote_orders.ANSWERS_REGISTRY,
        dispatch_by_type(quotes.order_answers()),
    )
    follow_test_clocks(runtime, settings.messaging.test_clocks_enabled)

    runtime.work(
        lambda pool: QuoteExpiry(
            pool, clock, settings.source, settings.expiry_interval_seconds, faults=runtime.faults
        ).work_loop()
    )
    runtime.work(
        lambda pool: AutomaticQuotes(
            pool,
            clock,
            settings.policy,
            quotes,
            settings.expiry_interval_seconds,
            faults=runtime.faults,
        ).work_loop()
    )
    runtime.produces(quote_events.TOPIC, quote_events.REGISTRY)
    runtime.produces(quote_orders.TOPIC, quote_orders.REGISTRY)
    return runtime.build_app()
