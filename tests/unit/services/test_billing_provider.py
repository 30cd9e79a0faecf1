"""The simulated payment provider: deterministic, idempotent by order id, AUTO-4 aware."""

from __future__ import annotations

from decimal import Decimal

import pytest

from services.billing.provider import MANUAL_ONLY_METHODS, SimulatedPaymentProvider
from shared.contracts.subscription_events import PaymentMethod

AMOUNT = Decimal("1179.00")


def charge(order_id: str, method: PaymentMethod) -> object:
    return SimulatedPaymentProvider().charge(
        idempotency_key=order_id, amount=AMOUNT, currency="USD", method=method
    )


def method(kind: str = "card", *, valid: bool = True) -> PaymentMethod:
    return PaymentMethod(type=kind, recurring=True, valid=valid)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["card", "paypal", "direct_debit", "invoice"])
def test_a_valid_method_is_charged(kind: str) -> None:
    result = SimulatedPaymentProvider().charge(
        idempotency_key="ORD-1", amount=AMOUNT, currency="USD", method=method(kind)
    )

    assert result.outcome == "succeeded"
    assert result.reason is None
    assert result.payment_reference is not None
    assert result.payment_reference.startswith("SIM-")
    assert len(result.payment_reference) == len("SIM-") + 16


def test_the_reference_is_deterministic_per_order_so_a_retried_charge_is_the_same_charge() -> None:
    provider = SimulatedPaymentProvider()

    first = provider.charge(idempotency_key="ORD-1", amount=AMOUNT, currency="USD", method=method())
    again = provider.charge(idempotency_key="ORD-1", amount=AMOUNT, currency="USD", method=method())
    other = provider.charge(idempotency_key="ORD-2", amount=AMOUNT, currency="USD", method=method())

    assert first == again
    assert other.payment_reference != first.payment_reference


def test_an_invalid_method_is_declined_with_a_reason_and_no_reference() -> None:
    result = SimulatedPaymentProvider().charge(
        idempotency_key="ORD-1", amount=AMOUNT, currency="USD", method=method(valid=False)
    )

    assert result.outcome == "failed"
    assert result.payment_reference is None
    assert result.reason is not None
    assert "card declined" in result.reason
    assert "not valid" in result.reason


@pytest.mark.parametrize("kind", sorted(MANUAL_ONLY_METHODS))
def test_auto_4_manual_only_methods_await_a_manual_payment(kind: str) -> None:
    result = SimulatedPaymentProvider().charge(
        idempotency_key="ORD-1", amount=AMOUNT, currency="JPY", method=method(kind)
    )

    assert result.outcome == "awaiting_manual"
    assert result.reason is None
    # The customer quotes this reference with the transfer; payment.received carries it back.
    assert result.payment_reference is not None
    assert result.payment_reference.startswith("SIM-")


def test_auto_4_the_manual_only_methods_are_those_of_the_rule() -> None:
    assert {"bank_transfer", "alipay", "convenience_store", "atm_transfer"} == MANUAL_ONLY_METHODS


def test_the_simulator_declines_an_amount_ending_in_13_cents_for_insufficient_funds() -> None:
    from decimal import Decimal

    from services.billing.provider import SimulatedPaymentProvider
    from shared.contracts.subscription_events import PaymentMethod

    card = PaymentMethod(type="card", recurring=True, valid=True)
    provider = SimulatedPaymentProvider()
    declined = provider.charge(
        idempotency_key="o-1", amount=Decimal("420.13"), currency="USD", method=card
    )
    charged = provider.charge(
        idempotency_key="o-2", amount=Decimal("420.14"), currency="USD", method=card
    )
    assert (declined.outcome, declined.reason) == ("failed", "card declined: insufficient funds")
    assert charged.outcome == "succeeded"
