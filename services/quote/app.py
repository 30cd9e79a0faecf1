"""The quote service. For now it keeps the catalog its quotes are priced from; the quote
commands themselves (`quote.commands`) are not consumed yet, so they wait in their topic.
"""

from __future__ import annotations

from faststream import FastStream

from services.quote.settings import QuoteSettings
from shared.catalog.store import catalog_handler
from shared.contracts import catalog_events
from shared.messaging.runtime import ServiceRuntime

SERVICE = "quote"


def create_app(settings: QuoteSettings | None = None) -> FastStream:
    settings = settings or QuoteSettings()
    runtime = ServiceRuntime(SERVICE, settings.messaging, settings.database)
    runtime.consume(catalog_events.TOPIC, catalog_events.REGISTRY, catalog_handler())
    return runtime.build_app()
