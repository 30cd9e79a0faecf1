"""The contract of every topic: its models, and `REGISTRIES` to parse any topic's messages."""

from shared.contracts import (
    billing_commands,
    billing_events,
    catalog_events,
    clock_commands,
    notification_events,
    payment_events,
    quote_commands,
    quote_events,
    quote_orders,
    renewal_commands,
    renewal_events,
    state_events,
    subscription_events,
)
from shared.contracts.envelope import EventRegistry

REGISTRIES: dict[str, EventRegistry] = {
    module.REGISTRY.topic: module.REGISTRY
    for module in (
        subscription_events,
        catalog_events,
        renewal_commands,
        quote_commands,
        clock_commands,
        payment_events,
        renewal_events,
        quote_events,
        billing_events,
        notification_events,
        state_events,
        billing_commands,
        quote_orders,
    )
}
REGISTRIES[quote_orders.ANSWERS_REGISTRY.topic] = quote_orders.ANSWERS_REGISTRY

__all__ = ["REGISTRIES"]
