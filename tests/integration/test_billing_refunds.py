"""Refunds on a real database (issue 14, LIFE-3/LIFE-5): asked twice, given back once through
the provider port, announced once as `payment.refunded`; the lines named set the amount."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from deploy.local.samples import unique_csn
from services.billing.refunds import Refunder, refund_requested_handler
from services.billing.settings import ProviderCalls
from services.billing.simulator import SimulatedPaymentProvider
from shared.clock import FixedClock
from shared.contracts.billing_commands import RefundPayment
from shared.contracts.envelope import new_event
from shared.db.settings import DatabaseSettings
from shared.messaging.consumer import Delivery, UnitOfWork
from tests.integration.helpers import connection_to, pools_on

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
CLOCK = FixedClock(NOW)
LINES = [
    {"subscription_id": "S-1", "amount": "420.00"},
    {"subscription_id": "S-2", "amount": "840.00"},
]


async def _paid_order(settings: DatabaseSettings, order_id: str, csn: str) -> None:
    async with connection_to(settings) as connection:
        await connection.execute(
            """INSERT INTO orders (order_id, csn, currency, purchase_method, payment_method, lines,
                                   total, status, charge_status, created_at)
               VALUES ($1, $2, 'USD', 'direct_online', '{}'::jsonb, $3::jsonb, 1260, 'succeeded',
                       'recorded', $4)""",
            order_id,
            csn,
            json.dumps(LINES),
            NOW,
        )
        await connection.execute(
            "INSERT INTO payments (order_id, amount, currency, outcome, payment_reference, at)"
            " VALUES ($1, 1260, 'USD', 'succeeded', 'P-1', $2)",
            order_id,
            NOW,
        )


async def _ask(settings: DatabaseSettings, *asked: RefundPayment) -> None:
    handle = refund_requested_handler(CLOCK)
    async with connection_to(settings) as connection, connection.transaction():
        for refund in asked:
            event = new_event(refund, subject=refund.csn, source="/t", time=NOW)
            await handle(UnitOfWork(connection), Delivery(event, record=None))


async def test_life_3_a_refund_asked_twice_is_given_back_once_and_announced_once(
    billing_db: DatabaseSettings,
) -> None:
    csn = unique_csn()
    await _paid_order(billing_db, "O-all", csn)
    await _paid_order(billing_db, "O-part", csn)
    everything = RefundPayment(order_id="O-all", csn=csn, reason="EXPIRED")
    one_line = RefundPayment(
        order_id="O-part", csn=csn, subscription_ids=["S-2"], reason="RESERVATION_RELEASED"
    )
    await _ask(billing_db, everything, everything, one_line)
    await _ask(billing_db, everything)  # asked again later: still one refund

    async with pools_on(billing_db) as pools:
        calls = ProviderCalls(
            source="/billing", batch_size=10, lease=timedelta(seconds=60), timeout_seconds=10
        )
        refunder = Refunder(pools, SimulatedPaymentProvider(pools, CLOCK), CLOCK, calls)
        assert await refunder.step() == 2
        assert await refunder.step() == 0
    async with connection_to(billing_db) as connection:
        given = await connection.fetch(
            "SELECT idempotency_key, amount FROM simulated_provider_refunds ORDER BY 1"
        )
        events = [
            json.loads(r["value"]) for r in await connection.fetch("SELECT value FROM outbox")
        ]
    assert [(r["idempotency_key"], r["amount"]) for r in given] == [
        ("O-all", Decimal("1260")),
        ("O-part", Decimal("840.00")),
    ]
    assert sorted((e["type"], e["data"]["order_id"], e["data"]["reason"]) for e in events) == [
        ("payment.refunded", "O-all", "EXPIRED"),
        ("payment.refunded", "O-part", "RESERVATION_RELEASED"),
    ]
