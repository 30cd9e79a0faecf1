"""The billing service: places the orders it is asked for and charges them, once each."""

from __future__ import annotations

import asyncpg
from faststream import FastStream

from services.billing import charges, refunds
from services.billing.charges import Charger
from services.billing.manual_payments import payment_received_handler
from services.billing.orders import place_order_handler
from services.billing.provider import PaymentProvider
from services.billing.refunds import Refunder, refund_requested_handler
from services.billing.settings import BillingSettings
from services.billing.simulator import SimulatedPaymentProvider
from shared.clock import Clock, SystemClock
from shared.contracts import billing_commands, billing_events, payment_events
from shared.messaging.consumer import dispatch_by_type
from shared.messaging.loops import Step, WorkLoop
from shared.messaging.runtime import LoopFactory, ServiceRuntime
from shared.test_clocks import follow_test_clocks

SERVICE = "billing"


def create_app(
    settings: BillingSettings | None = None,
    clock: Clock | None = None,
    provider: PaymentProvider | None = None,
) -> FastStream:
    settings = settings or BillingSettings()
    clock = clock or SystemClock()
    runtime = ServiceRuntime(SERVICE, settings.messaging, settings.database)
    runtime.consume(
        billing_commands.TOPIC,
        billing_commands.REGISTRY,
        dispatch_by_type(
            {
                billing_commands.PlaceOrder: place_order_handler(clock, settings.source),
                billing_commands.RefundPayment: refund_requested_handler(clock),
            }
        ),
    )
    runtime.consume(
        payment_events.TOPIC,
        payment_events.REGISTRY,
        dispatch_by_type(
            {payment_events.PaymentReceived: payment_received_handler(clock, settings.source)}
        ),
    )
    follow_test_clocks(runtime, settings.messaging.test_clocks_enabled)
    runtime.produces(billing_events.TOPIC, billing_events.REGISTRY)
    provider = provider or SimulatedPaymentProvider(runtime.pools, clock)
    calls = settings.provider_calls()
    charger = Charger(
        runtime.pools,
        provider,
        clock,
        calls,
        manual_payment_days=settings.manual_payment_days,
        faults=runtime.faults,
    )
    refunder = Refunder(runtime.pools, provider, clock, calls)
    # Woken by the trigger on `orders` (migrations/003_charges.sql) when orders are placed.
    runtime.work(_woken(settings, charges.LOOP, charger.step, table="charges"))
    # Woken by the trigger on `refunds` (migrations/004_refunds.sql) when a refund is asked.
    runtime.work(_woken(settings, refunds.LOOP, refunder.step, table="refunds"))
    return runtime.build_app()


def _woken(settings: BillingSettings, name: str, step: Step, *, table: str) -> LoopFactory:
    """A loop of `step` woken by `NOTIFY <schema>_<table>`, else every `charge_poll_seconds`."""

    def build(pool: asyncpg.Pool) -> WorkLoop:
        return WorkLoop(
            name,
            step,
            service=SERVICE,
            poll_seconds=settings.charge_poll_seconds,
            pool=pool,
            channel=f"{settings.database.schema_name}_{table}",
        )

    return build
