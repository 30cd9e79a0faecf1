"""One entry point for any action: what `eligibility explain` runs on a parsed request."""

from __future__ import annotations

from datetime import date
from typing import TypedDict

from shared.eligibility.decisions import (
    decide_add_seats,
    decide_align_dates,
    decide_auto_renew,
    decide_change_terms,
    decide_manual_renewal,
)
from shared.eligibility.model import Price, Promotion, QuoteRequest
from shared.eligibility.outcomes import Decision
from shared.eligibility.parsing import ExplainRequest
from shared.eligibility.policy import Policy
from shared.eligibility.quote_decisions import decide_cancel_quote, decide_quote


class _Priced(TypedDict):
    prices: tuple[Price, ...]
    promotions: tuple[Promotion, ...]
    today: date
    policy: Policy


def explain(request: ExplainRequest) -> Decision:
    """The decision the request's action gets, from the request's own data only."""
    actor, subscriptions, ids = request.actor, request.subscriptions, request.subscription_ids
    today, policy = request.today, request.policy
    # What every priced decision takes from the request, alike for each action.
    priced = _Priced(
        prices=request.prices, promotions=request.promotions, today=today, policy=policy
    )
    match request.action:
        case "manual_renewal":
            return decide_manual_renewal(
                actor,
                subscriptions,
                ids,
                **priced,
                reservations={r.subscription_id: r for r in request.reservations},
            )
        case "auto_renew_on" | "auto_renew_off":
            return decide_auto_renew(
                actor,
                subscriptions,
                ids,
                enabled=request.action == "auto_renew_on",
                today=today,
                policy=policy,
            )
        case "quote":
            assert request.quote is not None
            quote = QuoteRequest(
                channel=request.quote.channel,
                kind=request.quote.kind,
                subscription_ids=ids,
                recipients=request.quote.recipients,
                changes=request.quote.changes,
                target_date=request.quote.target_date,
            )
            return decide_quote(actor, subscriptions, quote, **priced)
        case "change_terms":
            return decide_change_terms(
                actor,
                subscriptions,
                ids[0],
                term=request.term,
                seats=request.seats,
                **priced,
            )
        case "add_seats":
            assert request.seats is not None
            return decide_add_seats(actor, subscriptions, ids[0], seats=request.seats, **priced)
        case "align_dates":
            assert request.target_date is not None
            target_date = request.target_date
            return decide_align_dates(actor, subscriptions, ids, target_date=target_date, **priced)
        case "cancel_quote":
            assert request.cancel is not None
            return decide_cancel_quote(
                actor, request.cancel.quote, channel=request.cancel.channel, today=today
            )
