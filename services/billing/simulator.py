"""The default payment-provider adapter: a deterministic simulator with a ledger of its own.

The ledger, `simulated_provider_charges` (one row per idempotency key: amount, currency,
outcome, reference, reason, at), is the provider's side of the world: it is written on a
connection of the simulator's own, in its own transaction, so that whatever billing's
transactions do afterwards (roll back, deadlock, die with the process) the charge stays taken,
as it would at a real provider. It is also what the tests and the fault suite count as money
taken. A real adapter would call the provider's API here instead, with the same keys.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Protocol, TypeVar, cast

import asyncpg

from services.billing.provider import (
    ChargeRequest,
    ChargeResult,
    Outcome,
    RefundRequest,
    RefundResult,
)
from shared.clock import Clock
from shared.contracts.subscription_events import PaymentMethod
from shared.messaging.consumer import PoolHolder

# AUTO-4: these methods can't be charged automatically; the customer pays by hand.
MANUAL_ONLY_METHODS = frozenset({"bank_transfer", "alipay", "convenience_store", "atm_transfer"})

# The simulator's test amount, like a payment provider's test card numbers: an amount whose
# cents are .13 is declined for insufficient funds, whatever the method.
DECLINED_CENTS = Decimal("0.13")


def simulated_outcome(request: ChargeRequest) -> ChargeResult:
    """A valid method is charged; one marked invalid is declined; manual-only methods wait;
    an amount ending in .13 is declined as if the account had no funds (for tests and demos)."""
    method = request.method
    reference = "SIM-" + hashlib.sha256(request.idempotency_key.encode()).hexdigest()[:16].upper()
    if method.type in MANUAL_ONLY_METHODS:
        return ChargeResult("awaiting_manual", payment_reference=reference)
    if not method.valid:
        return ChargeResult(
            "failed", reason=f"{method.type} declined: the payment method is not valid"
        )
    try:
        cents = request.amount % 1
    except InvalidOperation:  # an amount too large to have cents: a provider refuses it
        return ChargeResult("failed", reason=f"{method.type} declined: invalid amount")
    if cents == DECLINED_CENTS:
        return ChargeResult("failed", reason=f"{method.type} declined: insufficient funds")
    return ChargeResult("succeeded", payment_reference=reference)


# Each key is charged once: the keys taken now come back; a key already in the ledger (an
# attempt reconciled, a retry) is looked up after (`charge_many`), by a statement of its own.
# Not every key joined to the ledger again in the same statement: half its time (#19).
CHARGE = """
INSERT INTO simulated_provider_charges (idempotency_key, amount, currency, outcome,
                                        payment_reference, reason, at)
SELECT a.*, $7 FROM unnest($1::text[], $2::numeric[], $3::text[], $4::text[], $5::text[],
                           $6::text[])
    AS a(idempotency_key, amount, currency, outcome, payment_reference, reason)
ON CONFLICT (idempotency_key) DO NOTHING
RETURNING idempotency_key, outcome, payment_reference, reason
"""

LOOKUP = """
SELECT idempotency_key, outcome, payment_reference, reason FROM simulated_provider_charges
WHERE idempotency_key = ANY($1::text[])
"""


# Each key is refunded once: asked again, the refund made then is the answer.
REFUND = """
WITH asked AS (
    SELECT * FROM unnest($1::text[], $2::numeric[], $3::text[]) AS a(idempotency_key, amount, currency)),
given AS (
    INSERT INTO simulated_provider_refunds (idempotency_key, amount, currency, refund_reference, at)
    SELECT idempotency_key, amount, currency,
           'SIMR-' || upper(substr(md5(idempotency_key), 1, 16)), $4 FROM asked
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING idempotency_key, refund_reference)
SELECT * FROM given
UNION ALL
SELECT r.idempotency_key, r.refund_reference
FROM simulated_provider_refunds AS r JOIN asked USING (idempotency_key)
"""


class SimulatedPaymentProvider:
    def __init__(self, pools: PoolHolder, clock: Clock) -> None:
        self.pools = pools
        self.clock = clock

    async def charge(
        self, *, idempotency_key: str, amount: Decimal, currency: str, method: PaymentMethod
    ) -> ChargeResult:
        [result] = await self.charge_many(
            [ChargeRequest(idempotency_key, amount, currency, method)]
        )
        return result

    async def lookup(self, idempotency_key: str) -> ChargeResult | None:
        return (await self.lookup_many([idempotency_key])).get(idempotency_key)

    async def charge_many(self, requests: Sequence[ChargeRequest]) -> list[ChargeResult]:
        if not requests:
            return []
        unique = _unique(requests)
        outcomes = [simulated_outcome(r) for r in unique]
        made = _results(
            await self._ledger(
                CHARGE,
                *_money(unique),
                [o.outcome for o in outcomes],
                [o.payment_reference for o in outcomes],
                [o.reason for o in outcomes],
                self.clock.now(),
            )
        )
        charged_before = [r.idempotency_key for r in unique if r.idempotency_key not in made]
        if charged_before:
            # The charge made then, the same key's only one (a statement of its own: it sees
            # a concurrent call's charge once that committed, which the INSERT waited for).
            made.update(await self.lookup_many(charged_before))
        return _in_order(requests, made, "charged")

    async def lookup_many(self, keys: Sequence[str]) -> dict[str, ChargeResult]:
        if not keys:
            return {}
        return _results(await self._ledger(LOOKUP, list(keys)))

    async def refund(self, *, idempotency_key: str, amount: Decimal, currency: str) -> RefundResult:
        [result] = await self.refund_many([RefundRequest(idempotency_key, amount, currency)])
        return result

    async def refund_many(self, requests: Sequence[RefundRequest]) -> list[RefundResult]:
        if not requests:
            return []
        rows = await self._ledger(REFUND, *_money(_unique(requests)), self.clock.now())
        made = {row["idempotency_key"]: RefundResult(row["refund_reference"]) for row in rows}
        return _in_order(requests, made, "refunded")

    async def _ledger(self, statement: str, *arguments: object) -> list[asyncpg.Record]:
        # Autocommit on a connection of its own: the provider's side, not billing's transaction.
        async with self.pools.get().acquire() as connection:
            return await connection.fetch(statement, *arguments)


class ConcurrentChargeError(Exception):
    """The same key was being charged by another call at the same moment."""


class Asked(Protocol):
    @property
    def idempotency_key(self) -> str: ...

    @property
    def amount(self) -> Decimal: ...

    @property
    def currency(self) -> str: ...


AskedT = TypeVar("AskedT", bound=Asked)
ResultT = TypeVar("ResultT")


def _unique(requests: Sequence[AskedT]) -> list[AskedT]:
    """One request per key (the last one), in the order the keys were first asked."""
    return list({r.idempotency_key: r for r in requests}.values())


def _money(requests: Sequence[Asked]) -> tuple[list[str], list[Decimal], list[str]]:
    """The statements' first three arrays: keys, amounts, currencies."""
    return (
        [r.idempotency_key for r in requests],
        [r.amount for r in requests],
        [r.currency for r in requests],
    )


def _in_order(requests: Sequence[Asked], made: Mapping[str, ResultT], done: str) -> list[ResultT]:
    """The results in the requests' order."""
    missing = [r.idempotency_key for r in requests if r.idempotency_key not in made]
    if missing:
        # Taken by a concurrent call that committed after this statement's snapshot: asked
        # again, the ledger has them. Rare (two chargers on one order); the caller retries.
        raise ConcurrentChargeError(f"{done} concurrently, ask again: {missing[:5]}")
    return [made[r.idempotency_key] for r in requests]


def _results(rows: Sequence[asyncpg.Record]) -> dict[str, ChargeResult]:
    return {
        row["idempotency_key"]: ChargeResult(
            cast(Outcome, row["outcome"]), row["payment_reference"], row["reason"]
        )
        for row in rows
    }
