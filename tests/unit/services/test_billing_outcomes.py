"""The `billing.events` an order's payment outcome becomes: a failed or awaiting payment names
the order's customer and subscriptions for its email (issue 17 item 3), each subscription once
in line order; a refused order is never retried (issue 16 item 4)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from services.billing.outcomes import charged, refused
from services.billing.provider import ChargeResult
from services.billing.store import BillingOrder, ChargeAttempt, order_subscription_ids
from shared.contracts.billing_events import PaymentAwaitingManual, PaymentFailed, PaymentSucceeded
from shared.contracts.subscription_events import PaymentMethod

ORDER = BillingOrder("O-1", "CSN-1", "USD", Decimal("1260.00"), ("S-2", "S-1"))
PAY_BY = date(2026, 3, 16)


def attempt(next_retry_on: date | None = None) -> ChargeAttempt:
    method = PaymentMethod(type="card", recurring=True, valid=True)
    return ChargeAttempt(ORDER, method, next_retry_on, number=1)


def test_an_orders_subscriptions_are_named_in_line_order_each_once() -> None:
    assert order_subscription_ids(["S-2", "S-1", "S-2", "S-3"]) == ("S-2", "S-1", "S-3")


def test_a_succeeded_charge_says_what_was_paid_and_its_reference() -> None:
    event = charged(attempt(), ChargeResult("succeeded", "SIM-1"), PAY_BY)

    assert event == PaymentSucceeded(
        order_id="O-1", amount=Decimal("1260.00"), currency="USD", payment_reference="SIM-1"
    )


def test_auto_4_a_manual_payment_is_awaited_by_pay_by_for_the_orders_customer() -> None:
    event = charged(attempt(), ChargeResult("awaiting_manual", "SIM-1"), PAY_BY)

    assert isinstance(event, PaymentAwaitingManual)
    assert (event.payment_reference, event.pay_by) == ("SIM-1", PAY_BY)
    assert (event.amount, event.currency) == (Decimal("1260.00"), "USD")
    assert (event.csn, event.subscription_ids) == ("CSN-1", ["S-2", "S-1"])


def test_a_declined_charge_says_why_and_when_renewal_tries_again() -> None:
    event = charged(attempt(date(2026, 3, 5)), ChargeResult("failed", reason="no funds"), PAY_BY)

    assert event == PaymentFailed(
        order_id="O-1",
        reason="no funds",
        next_retry_on=date(2026, 3, 5),
        csn="CSN-1",
        subscription_ids=["S-2", "S-1"],
        amount=Decimal("1260.00"),
        currency="USD",
    )
    unexplained = charged(attempt(), ChargeResult("failed"), PAY_BY)
    assert isinstance(unexplained, PaymentFailed) and unexplained.reason == "declined"


def test_issue_16_a_refused_order_fails_with_its_refusals_and_no_retry() -> None:
    event = refused(ORDER, ["TOTAL_MISMATCH", "AMOUNT_PRECISION"])

    assert (event.reason, event.next_retry_on, event.refusals) == (
        "order refused: TOTAL_MISMATCH, AMOUNT_PRECISION",
        None,
        ["TOTAL_MISMATCH", "AMOUNT_PRECISION"],
    )
    assert (event.csn, event.subscription_ids, event.amount) == (
        "CSN-1",
        ["S-2", "S-1"],
        Decimal("1260.00"),
    )
