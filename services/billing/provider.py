"""The payment-provider port and its default adapter, a deterministic simulator.

A real adapter would call the provider with the order id as the idempotency key, so that a
charge retried after a crash is not taken twice; the simulator honours the same contract.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal, Protocol

from shared.contracts.subscription_events import PaymentMethod

# AUTO-4: these methods can't be charged automatically; the customer pays by hand.
MANUAL_ONLY_METHODS = frozenset({"bank_transfer", "alipay", "convenience_store", "atm_transfer"})


@dataclass(frozen=True)
class ChargeResult:
    outcome: Literal["succeeded", "failed", "awaiting_manual"]
    payment_reference: str | None = None
    reason: str | None = None


class PaymentProvider(Protocol):
    def charge(
        self, *, idempotency_key: str, amount: Decimal, currency: str, method: PaymentMethod
    ) -> ChargeResult: ...


# The simulator's test amount, like a payment provider's test card numbers: an amount whose
# cents are .13 is declined for insufficient funds, whatever the method.
DECLINED_CENTS = Decimal("0.13")


class SimulatedPaymentProvider:
    """A valid method is charged; one marked invalid is declined; manual-only methods wait;
    an amount ending in .13 is declined as if the account had no funds (for tests and demos)."""

    def charge(
        self, *, idempotency_key: str, amount: Decimal, currency: str, method: PaymentMethod
    ) -> ChargeResult:
        reference = "SIM-" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:16].upper()
        if method.type in MANUAL_ONLY_METHODS:
            return ChargeResult("awaiting_manual", payment_reference=reference)
        if not method.valid:
            return ChargeResult(
                "failed", reason=f"{method.type} declined: the payment method is not valid"
            )
        if amount % 1 == DECLINED_CENTS:
            return ChargeResult("failed", reason=f"{method.type} declined: insufficient funds")
        return ChargeResult("succeeded", payment_reference=reference)
