"""A manual payment on a real database, its handler called directly (AUTO-4): one that matches an
order awaiting it completes the order once; any other is rejected with every reason that applies
and changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from prometheus_client import REGISTRY

from deploy.local.samples import unique_csn
from services.billing.manual_payments import payment_received_handler
from shared.clock import FixedClock
from shared.contracts import payment_events
from shared.contracts.payment_events import PaymentReceived
from shared.db.settings import DatabaseSettings
from shared.messaging.consumer import Delivery, UnitOfWork
from tests.integration.helpers import (
    connection_to,
    consumed_as_a_batch,
    delivered,
    handle_in_transaction,
    read_from_a_record,
    taken_outbox,
)

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
REFERENCE = "SIM-0123456789ABCDEF"
# The subject the provider gave the payment: billing answers about its order's CSN instead.
PAYER = "CSN-FROM-PROVIDER"


async def _awaiting_order(settings: DatabaseSettings, order_id: str, csn: str) -> None:
    """An order of 840.00 USD that the charger left awaiting a bank transfer."""
    async with connection_to(settings) as connection:
        await connection.execute(
            """INSERT INTO orders (order_id, csn, currency, purchase_method, payment_method, lines,
                                   total, status, charge_status, created_at)
               VALUES ($1, $2, 'USD', 'direct_online', '{}'::jsonb, '[]'::jsonb, 840.00,
                       'awaiting_manual', 'recorded', $3)""",
            order_id,
            csn,
            NOW,
        )
        await connection.execute(
            "INSERT INTO payments (order_id, amount, currency, outcome, payment_reference, at)"
            " VALUES ($1, 840.00, 'USD', 'awaiting_manual', $2, $3)",
            order_id,
            REFERENCE,
            NOW,
        )


async def _receive(settings: DatabaseSettings, *received: PaymentReceived) -> list[dict[str, Any]]:
    """Each payment handled in its own transaction, as the consumer would; the events answered."""
    handle = payment_received_handler(FixedClock(NOW), "/billing")
    for payment in received:
        await handle_in_transaction(settings, handle, delivered(payment, PAYER, time=NOW))
    return await taken_outbox(settings)


async def _state(settings: DatabaseSettings, order_id: str) -> tuple[str, list[str]]:
    async with connection_to(settings) as connection:
        status = await connection.fetchval(
            "SELECT status FROM orders WHERE order_id = $1", order_id
        )
        outcomes = await connection.fetch(
            "SELECT outcome FROM payments WHERE order_id = $1 ORDER BY payment_id", order_id
        )
    return status, [row["outcome"] for row in outcomes]


def _payment(order_id: str, amount: str = "840.00", currency: str = "USD") -> PaymentReceived:
    return PaymentReceived(
        payment_reference=REFERENCE, order_id=order_id, amount=Decimal(amount), currency=currency
    )


async def test_auto_4_a_matching_manual_payment_completes_its_order_once(
    billing_db: DatabaseSettings,
) -> None:
    csn = unique_csn()
    await _awaiting_order(billing_db, "O-paid", csn)

    answers = await _receive(billing_db, _payment("O-paid"), _payment("O-paid"))

    assert [(a["type"], a["subject"]) for a in answers] == [
        ("payment.succeeded", csn),
        # Paid already: no order awaits it any more.
        ("payment.rejected", PAYER),
    ]
    assert answers[0]["data"] == {
        "order_id": "O-paid",
        "amount": "840.00",
        "currency": "USD",
        "payment_reference": REFERENCE,
    }
    assert answers[1]["data"]["reasons"] == ["UNKNOWN_ORDER"]
    assert await _state(billing_db, "O-paid") == ("succeeded", ["awaiting_manual", "succeeded"])


async def test_auto_4_a_payment_that_does_not_match_is_rejected_with_every_reason(
    billing_db: DatabaseSettings,
) -> None:
    csn = unique_csn()
    await _awaiting_order(billing_db, "O-short", csn)

    answers = await _receive(
        billing_db, _payment("O-short", amount="800.00", currency="EUR"), _payment("O-unknown")
    )

    assert [(a["type"], a["subject"], a["data"]["reasons"]) for a in answers] == [
        ("payment.rejected", csn, ["AMOUNT_MISMATCH", "CURRENCY_MISMATCH"]),
        ("payment.rejected", PAYER, ["UNKNOWN_ORDER"]),
    ]
    assert await _state(billing_db, "O-short") == ("awaiting_manual", ["awaiting_manual"])


def _payments_succeeded() -> float:
    labels = {"service": "billing", "outcome": "succeeded"}
    return REGISTRY.get_sample_value("renewals_payments_total", labels) or 0.0


async def test_a_payment_in_a_batch_retried_one_by_one_counts_once(
    billing_db: DatabaseSettings,
) -> None:
    """The consumer handles a batch in one transaction and, when it fails, each message alone
    (shared/messaging/consumer.py): the payment counted in the batch that rolled back must not
    be counted again when its message commits alone (the alert on payments reads the counter)."""
    csn = unique_csn()
    await _awaiting_order(billing_db, "O-batch", csn)
    handle = payment_received_handler(FixedClock(NOW), "/billing")
    good = delivered(_payment("O-batch"), PAYER, time=NOW)
    poison = read_from_a_record(delivered(_payment("O-poison"), PAYER, time=NOW))

    async def payments_then_a_failure(unit: UnitOfWork, deliveries: list[Delivery]) -> None:
        for delivery in deliveries:
            if delivery is poison:
                raise RuntimeError("this one fails, every time")
            await handle(unit, delivery)

    before = _payments_succeeded()
    handled, [letter] = await consumed_as_a_batch(
        billing_db, payment_events, payments_then_a_failure, [good, poison], service="billing"
    )
    assert (handled, letter.record) == (1, poison.record)
    assert await _state(billing_db, "O-batch") == ("succeeded", ["awaiting_manual", "succeeded"])
    assert _payments_succeeded() - before == 1
