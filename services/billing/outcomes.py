"""What billing announces of an order's payment: the `billing.events` each outcome becomes.

A payment that failed or waits for the customer names the order's customer, subscriptions and
amount, so that its email needs no other event (issue 17 item 3); one that succeeded says what
was paid and under which reference.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from services.billing.order_checks import refusal_reason
from services.billing.provider import ChargeResult
from services.billing.store import BillingOrder, ChargeAttempt
from shared.contracts.billing_events import (
    OrderRefusal,
    PaymentAwaitingManual,
    PaymentFailed,
    PaymentSucceeded,
)
from shared.contracts.envelope import EventData


def charged(attempt: ChargeAttempt, charge: ChargeResult, pay_by: date) -> EventData:
    """The provider's answer to an attempt; `pay_by` is the last day of a manual payment."""
    order = attempt.order
    if charge.outcome == "failed":
        return payment_failed(order, charge.reason or "declined", attempt.next_retry_on)
    assert charge.payment_reference is not None
    if charge.outcome == "succeeded":
        return PaymentSucceeded(**_paid(order), payment_reference=charge.payment_reference)
    return PaymentAwaitingManual(
        **_paid(order),
        **_named(order),
        payment_reference=charge.payment_reference,
        pay_by=pay_by,
    )


def refused(order: BillingOrder, refusals: Sequence[OrderRefusal]) -> PaymentFailed:
    """An order billing refused to place: never charged, and never retried (the same order
    would be refused again)."""
    return payment_failed(order, refusal_reason(refusals), None, refusals)


def payment_failed(
    order: BillingOrder,
    reason: str,
    next_retry_on: date | None,
    refusals: Sequence[OrderRefusal] = (),
) -> PaymentFailed:
    return PaymentFailed(
        order_id=order.order_id,
        reason=reason,
        next_retry_on=next_retry_on,
        refusals=list(refusals),
        **_named(order),
        amount=order.total,
        currency=order.currency,
    )


def _paid(order: BillingOrder) -> dict[str, Any]:
    return {"order_id": order.order_id, "amount": order.total, "currency": order.currency}


def _named(order: BillingOrder) -> dict[str, Any]:
    """Whom the order's email goes to, about which subscriptions."""
    return {"csn": order.csn, "subscription_ids": list(order.subscription_ids)}
