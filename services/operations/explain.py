"""`renewals explain`: "why can't this customer do that?" answered from the live state.

It builds the request `eligibility explain` reads (shared/eligibility/README.md) from renewal's
database — the subscription as renewal decides on it (its own dates, term, seats, auto-renew and
next-renewal changes over the subscription system's snapshot), the catalog renewal prices from,
the orders holding a term (RENEWAL_IN_PROGRESS), the CSN's today (its test clock where one is
set) — and answers it with the same `explain`, so the output is the package command's. The
request itself can be printed and run again with `eligibility explain`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any, get_args

from pydantic import TypeAdapter

from services.renewal.reservations import open_reservations
from services.renewal.subscriptions import load_subscriptions, to_domain
from shared.catalog.store import load_catalog
from shared.clock import Clock
from shared.db.types import DbConnection
from shared.eligibility import (
    Price,
    Promotion,
    Reservation,
)
from shared.eligibility import (
    Subscription as Eligible,
)
from shared.eligibility.parsing import ExplainAction
from shared.test_clocks import CsnClock

LIVE_ACTIONS: tuple[ExplainAction, ...] = tuple(
    action for action in get_args(ExplainAction) if action != "cancel_quote"
)
"""What can be asked of one subscription from renewal's database alone (a quote's cancellation
needs the quote: ask `eligibility explain` with it)."""


class UnknownSubscriptionError(LookupError):
    """The renewal service holds no subscription of that id."""


@dataclass(frozen=True, kw_only=True)
class Asked:
    """The question: an action, by whom (default: the subscription's buyer, for its CSN), and
    what the action takes."""

    action: ExplainAction = "manual_renewal"
    user_id: str | None = None
    csn: str | None = None
    term: str | None = None
    seats: int | None = None
    target_date: date | None = None
    channel: str = "self_service"
    kind: str = "renewal"
    recipients: tuple[str, ...] = field(default_factory=tuple)


async def live_request(
    connection: DbConnection, subscription_id: str, asked: Asked, clock: Clock
) -> dict[str, Any]:
    """The `eligibility explain` request for `asked` about the subscription, as renewal holds it
    now (a document of plain JSON values)."""
    held = await load_subscriptions(connection, [subscription_id])
    if subscription_id not in held:
        raise UnknownSubscriptionError(
            f"no subscription {subscription_id} is known to the renewal service"
        )
    # The same view renewal's handlers decide on, not the snapshot as the subscription system
    # sent it: the renewal date, term and seats are renewal's own once it holds the subscription.
    subscription = to_domain(held[subscription_id])
    products = [subscription.product_code]
    prices, promotions = await load_catalog(connection, products)
    reservations = await open_reservations(connection, [subscription_id])
    today = (await CsnClock(clock).today_for(connection, [subscription.csn]))[subscription.csn]
    request: dict[str, Any] = {
        "action": asked.action,
        "today": today.isoformat(),
        "actor": {
            "user_id": asked.user_id or subscription.buyer.user_id,
            "csn": asked.csn or subscription.csn,
        },
        "subscriptions": [_SUBSCRIPTION.dump_python(subscription, mode="json")],
        "prices": _PRICES.dump_python(prices, mode="json"),
        "promotions": _PROMOTIONS.dump_python(promotions, mode="json"),
        "reservations": _RESERVATIONS.dump_python(list(reservations.values()), mode="json"),
    }
    return request | _action_fields(asked)


def _action_fields(asked: Asked) -> dict[str, Any]:
    """What the action takes, in the request's own fields; left out when not given, so that
    the request is refused the way `eligibility explain` refuses it."""
    match asked.action:
        case "quote":
            quote: dict[str, Any] = {
                "channel": asked.channel,
                "kind": asked.kind,
                "recipients": list(asked.recipients),
            }
            if asked.target_date is not None:
                quote["target_date"] = asked.target_date.isoformat()
            return {"quote": quote}
        case "change_terms":
            return {"terms": {"term": asked.term, "seats": asked.seats}}
        case "add_seats":
            return {} if asked.seats is None else {"seats": asked.seats}
        case "align_dates":
            return (
                {} if asked.target_date is None else {"target_date": asked.target_date.isoformat()}
            )
    return {}


_SUBSCRIPTION = TypeAdapter(Eligible)
_PRICES = TypeAdapter(list[Price])
_PROMOTIONS = TypeAdapter(list[Promotion])
_RESERVATIONS = TypeAdapter(list[Reservation])
