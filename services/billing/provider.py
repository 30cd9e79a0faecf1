"""The payment-provider port: what billing needs of a real provider (services/billing/simulator.py
is the default adapter).

Three calls, as a real provider has them: `charge` with an idempotency key (billing passes the
order id: the same key charged again is the same charge, never a second one), `lookup`, the
provider's own record of a charge made with a key, which is how an attempt a crash left
unfinished is reconciled, and `refund` of a charge, idempotent by its key too (asked again after
a crash, it is the same refund). The `_many` forms take a claim's worth at once; a real adapter would
make its API calls concurrently, the simulator writes one statement.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal, Protocol

from shared.contracts.subscription_events import PaymentMethod

Outcome = Literal["succeeded", "failed", "awaiting_manual"]


@dataclass(frozen=True)
class ChargeRequest:
    idempotency_key: str
    amount: Decimal
    currency: str
    method: PaymentMethod


@dataclass(frozen=True)
class ChargeResult:
    outcome: Outcome
    payment_reference: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class RefundRequest:
    idempotency_key: str
    amount: Decimal
    currency: str


@dataclass(frozen=True)
class RefundResult:
    refund_reference: str


class PaymentProvider(Protocol):
    async def charge(
        self, *, idempotency_key: str, amount: Decimal, currency: str, method: PaymentMethod
    ) -> ChargeResult: ...

    async def lookup(self, idempotency_key: str) -> ChargeResult | None:
        """The provider's record of the charge made with that key; None if none was made."""

    async def charge_many(self, requests: Sequence[ChargeRequest]) -> list[ChargeResult]:
        """`charge` for each request, the results in the requests' order."""

    async def lookup_many(self, keys: Sequence[str]) -> dict[str, ChargeResult]:
        """`lookup` for each key; the keys charged with no charge are absent."""

    async def refund(self, *, idempotency_key: str, amount: Decimal, currency: str) -> RefundResult:
        """Give back `amount` of the charge made with that key; the same key twice: one refund."""

    async def refund_many(self, requests: Sequence[RefundRequest]) -> list[RefundResult]:
        """`refund` for each request, the results in the requests' order."""
