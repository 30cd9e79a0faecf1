"""The billing service: places the orders it is asked for and charges them, once each."""

from __future__ import annotations

from faststream import FastStream

from services.billing.manual_payments import payment_received_handler
from services.billing.orders import place_order_handler
from services.billing.provider import PaymentProvider, SimulatedPaymentProvider
from services.billing.settings import BillingSettings
from shared.clock import Clock, SystemClock
from shared.contracts import billing_commands, billing_events, clock_commands, payment_events
from shared.messaging.consumer import dispatch_by_type
from shared.messaging.runtime import ServiceRuntime
from shared.test_clocks import set_test_clock_handler

SERVICE = "billing"


def create_app(
    settings: BillingSettings | None = None,
    clock: Clock | None = None,
    provider: PaymentProvider | None = None,
) -> FastStream:
    settings = settings or BillingSettings()
    runtime = ServiceRuntime(SERVICE, settings.messaging, settings.database)
    place_order = place_order_handler(
        provider or SimulatedPaymentProvider(),
        clock or SystemClock(),
        settings.source,
        settings.manual_payment_days,
    )
    runtime.consume(
        billing_commands.TOPIC,
        billing_commands.REGISTRY,
        dispatch_by_type({billing_commands.PlaceOrder: place_order}),
    )
    runtime.consume(
        payment_events.TOPIC,
        payment_events.REGISTRY,
        dispatch_by_type(
            {
                payment_events.PaymentReceived: payment_received_handler(
                    clock or SystemClock(), settings.source
                )
            }
        ),
    )
    runtime.consume(
        clock_commands.TOPIC,
        clock_commands.REGISTRY,
        dispatch_by_type(
            {
                clock_commands.SetTestClock: set_test_clock_handler(
                    settings.messaging.test_clocks_enabled
                )
            }
        ),
    )
    runtime.produces(billing_events.TOPIC, billing_events.REGISTRY)
    return runtime.build_app()
