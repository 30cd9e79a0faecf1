"""A decision as JSON-ready data: money as decimal strings, dates ISO, enums by value."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from shared.eligibility.grouping import Group
from shared.eligibility.outcomes import Decision, SubscriptionOutcome
from shared.eligibility.pricing import Money, PriceLine, Totals


def decision_to_dict(decision: Decision) -> dict[str, Any]:
    preview = decision.preview
    return {
        "action": decision.action.value,
        "allowed": decision.allowed,
        "reasons": [r.value for r in decision.reasons],
        "subscriptions": [_outcome(o) for o in decision.subscriptions],
        "groups": [_group(g) for g in decision.groups],
        "preview": None
        if preview is None
        else {
            "lines": [_line(line) for line in preview.lines],
            "totals": [_totals(t) for t in preview.totals],
            "expires_on": _date(preview.expires_on),
        },
    }


def _outcome(outcome: SubscriptionOutcome) -> dict[str, Any]:
    money = outcome.unit_price or outcome.total
    return {
        "subscription_id": outcome.subscription_id,
        "allowed": outcome.allowed,
        "reasons": [r.value for r in outcome.reasons],
        "state": outcome.state.value if outcome.state is not None else None,
        "window_opens": _date(outcome.window_opens),
        "grace_ends": _date(outcome.grace_ends),
        "next_renewal_date": _date(outcome.next_renewal_date),
        "price_basis": outcome.price_basis.value if outcome.price_basis is not None else None,
        "currency": money.currency if money is not None else None,
        "unit_price": _amount(outcome.unit_price),
        "total": _amount(outcome.total),
        "advisories": [a.value for a in outcome.advisories],
    }


def _group(group: Group) -> dict[str, Any]:
    return {
        "csn": group.csn,
        "currency": group.currency,
        "purchase_method": group.purchase_method,
        "subscription_ids": list(group.subscription_ids),
        "total": _amount(group.total),
        # MAN-2: the one method a manual renewal's group is charged with (null for a quote's).
        "payment_method": None if group.payment_method is None else vars(group.payment_method),
    }


def _line(line: PriceLine) -> dict[str, Any]:
    return {
        "subscription_id": line.subscription_id,
        "product_code": line.product_code,
        "currency": line.currency,
        "term": line.term,
        "seats": line.seats,
        "price_basis": line.basis.value,
        "unit_price": str(line.unit_price),
        "prorated_days": line.prorated_days,
        "term_days": line.term_days,
        "promotion_code": line.promotion_code,
        "percent_off": _decimal(line.percent_off),
        "subtotal": str(line.subtotal),
        "discount": str(line.discount),
        "amount": str(line.amount),
        "starts_on": line.starts_on.isoformat(),
        "ends_on": line.ends_on.isoformat(),
    }


def _totals(totals: Totals) -> dict[str, Any]:
    return {
        "currency": totals.currency,
        "subtotal": str(totals.subtotal),
        "discount": str(totals.discount),
        "total": str(totals.total),
    }


def _date(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _amount(money: Money | None) -> str | None:
    return str(money.amount) if money is not None else None


def _decimal(value: Decimal | None) -> str | None:
    return str(value) if value is not None else None
