"""The simulated payment provider's rules: deterministic, one reference per order id, AUTO-4
aware (its ledger, on the database, is tested in tests/integration/test_billing_provider.py)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from services.billing.provider import ChargeRequest, ChargeResult
from services.billing.simulator import MANUAL_ONLY_METHODS, simulated_outcome
from shared.contracts.subscription_events import PaymentMethod

AMOUNT = Decimal("1179.00")


def charge(
    order_id: str, method: PaymentMethod, amount: Decimal = AMOUNT, currency: str = "USD"
) -> ChargeResult:
    return simulated_outcome(ChargeRequest(order_id, amount, currency, method))


def method(kind: str = "card", *, valid: bool = True) -> PaymentMethod:
    return PaymentMethod(type=kind, recurring=True, valid=valid)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["card", "paypal", "direct_debit", "invoice"])
def test_a_valid_method_is_charged(kind: str) -> None:
    result = charge("ORD-1", method(kind))

    assert result.outcome == "succeeded"
    assert result.reason is None
    assert result.payment_reference is not None
    assert result.payment_reference.startswith("SIM-")
    assert len(result.payment_reference) == len("SIM-") + 16


def test_the_reference_is_deterministic_per_order_so_a_retried_charge_is_the_same_charge() -> None:
    first = charge("ORD-1", method())
    again = charge("ORD-1", method())
    other = charge("ORD-2", method())

    assert first == again
    assert other.payment_reference != first.payment_reference


def test_an_invalid_method_is_declined_with_a_reason_and_no_reference() -> None:
    result = charge("ORD-1", method(valid=False))

    assert result.outcome == "failed"
    assert result.payment_reference is None
    assert result.reason is not None
    assert "card declined" in result.reason
    assert "not valid" in result.reason


@pytest.mark.parametrize("kind", sorted(MANUAL_ONLY_METHODS))
def test_auto_4_manual_only_methods_await_a_manual_payment(kind: str) -> None:
    result = charge("ORD-1", method(kind), currency="JPY")

    assert result.outcome == "awaiting_manual"
    assert result.reason is None
    # The customer quotes this reference with the transfer; payment.received carries it back.
    assert result.payment_reference is not None
    assert result.payment_reference.startswith("SIM-")


def test_auto_4_the_manual_only_methods_are_those_of_the_rule() -> None:
    assert {"bank_transfer", "alipay", "convenience_store", "atm_transfer"} == MANUAL_ONLY_METHODS


def test_the_simulator_declines_an_amount_ending_in_13_cents_for_insufficient_funds() -> None:
    declined = charge("o-1", method(), Decimal("420.13"))
    charged = charge("o-2", method(), Decimal("420.14"))

    assert (declined.outcome, declined.reason) == ("failed", "card declined: insufficient funds")
    assert charged.outcome == "succeeded"


def test_an_amount_too_large_to_have_cents_is_declined_not_raised() -> None:
    """One absurd amount must not fail the claim of charges it came in (issue 15, item 2)."""
    result = charge("o-1", method(), Decimal("1E+40"))

    assert (result.outcome, result.reason) == ("failed", "card declined: invalid amount")
