"""Build the domain types from plain dicts with the contract's field names.

The `explain` command reads its whole request with `parse_explain_request`; services may use
`subscription_from_dict` and its siblings on stored JSON. Every failure is an
`InvalidRequestError` with a one-line message naming the field, e.g.
`subscriptions[0].renewal_date: Field required`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from shared.eligibility.model import (
    Actor,
    Channel,
    Price,
    Promotion,
    Quote,
    QuoteChanges,
    QuoteKind,
    Subscription,
    Term,
)
from shared.eligibility.policy import Policy
from shared.eligibility.terms import Reservation

T = TypeVar("T")

ExplainAction = Literal[
    "manual_renewal",
    "auto_renew_on",
    "auto_renew_off",
    "quote",
    "change_terms",
    "add_seats",
    "align_dates",
    "cancel_quote",
]


class InvalidRequestError(ValueError):
    """The input can't be read as a request; the message is one line, naming the field."""


def subscription_from_dict(data: Mapping[str, Any], prefix: str = "") -> Subscription:
    """Fields of `subscription.upserted`; unknown fields (e.g. `revision`) are ignored.
    Optional, with defaults: product_name, plan, partner_csn, flags, managed_org, primary_admin
    (the buyer), next_term, next_seats; a person's email and locale."""
    return _validate(_SUBSCRIPTION, data, prefix)


def price_from_dict(data: Mapping[str, Any], prefix: str = "") -> Price:
    """Fields of `price.published`; money as decimal strings; unknown fields are ignored."""
    return _validate(_PRICE, data, prefix)


def promotion_from_dict(data: Mapping[str, Any], prefix: str = "") -> Promotion:
    """Fields of `promotion.published`; `percent_off` as a decimal string; unknown fields are
    ignored."""
    return _validate(_PROMOTION, data, prefix)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _QuoteSpec(_Strict):
    channel: Channel
    kind: QuoteKind
    recipients: list[str] = Field(default_factory=list)
    changes: QuoteChanges = Field(default_factory=QuoteChanges)
    target_date: date | None = None


class _CancelSpec(_Strict):
    channel: Channel
    quote_number: str
    csn: str
    expires_on: date
    partner_csn: str | None = None


class _TermsSpec(_Strict):
    term: Term | None = None
    seats: int | None = None


class _RawRequest(_Strict):
    """The request itself is strict (a misspelt field is an error, not a default), but what it
    carries of other systems' events is read as they publish them (issue 14 item 5): a
    `subscription.upserted` pasted with its `revision` and any field added since, or the whole
    CloudEvent, is taken, unknown fields ignored."""

    action: ExplainAction
    today: date
    actor: Actor
    subscriptions: list[dict[str, Any]] = Field(default_factory=list)
    subscription_ids: list[str] | None = None
    prices: list[dict[str, Any]] = Field(default_factory=list)
    promotions: list[dict[str, Any]] = Field(default_factory=list)
    reservations: list[Reservation] = Field(default_factory=list)
    quote: dict[str, Any] | None = None
    terms: _TermsSpec | None = None
    seats: int | None = None
    target_date: date | None = None
    policy: dict[str, Any] = Field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class QuoteSpec:
    channel: Channel
    kind: QuoteKind
    recipients: tuple[str, ...]
    changes: QuoteChanges
    target_date: date | None


@dataclass(frozen=True, kw_only=True)
class CancelSpec:
    channel: Channel
    quote: Quote


@dataclass(frozen=True, kw_only=True)
class ExplainRequest:
    """A request of `eligibility explain`, read and checked; see the package README."""

    action: ExplainAction
    today: date
    actor: Actor
    subscriptions: tuple[Subscription, ...]
    subscription_ids: tuple[str, ...]
    """The ids asked for: `subscription_ids` when given, else every subscription's."""
    prices: tuple[Price, ...]
    promotions: tuple[Promotion, ...]
    policy: Policy
    reservations: tuple[Reservation, ...] = ()
    """Open orders holding a term (RENEWAL_IN_PROGRESS), as renewal's database has them."""
    quote: QuoteSpec | None = None
    cancel: CancelSpec | None = None
    term: Term | None = None
    seats: int | None = None
    target_date: date | None = None


_SINGLE_SUBSCRIPTION_ACTIONS = ("change_terms", "add_seats")


def parse_explain_request(data: Any) -> ExplainRequest:
    raw = _validate(TypeAdapter(_RawRequest), data)
    subscriptions = tuple(
        subscription_from_dict(_payload(item), f"subscriptions[{i}]")
        for i, item in enumerate(raw.subscriptions)
    )
    prices = tuple(
        price_from_dict(_payload(item), f"prices[{i}]") for i, item in enumerate(raw.prices)
    )
    promotions = tuple(
        promotion_from_dict(_payload(item), f"promotions[{i}]")
        for i, item in enumerate(raw.promotions)
    )
    ids = tuple(
        raw.subscription_ids
        if raw.subscription_ids is not None
        else [s.subscription_id for s in subscriptions]
    )
    if raw.action in _SINGLE_SUBSCRIPTION_ACTIONS and len(ids) != 1:
        raise InvalidRequestError(
            f"{raw.action} is about one subscription: give exactly one in subscriptions "
            f"or subscription_ids (got {len(ids)})"
        )
    quote = cancel = None
    term = seats = None
    if raw.action == "quote":
        spec = _validate(TypeAdapter(_QuoteSpec), _required(raw.quote, "quote"), "quote")
        quote = QuoteSpec(
            channel=spec.channel,
            kind=spec.kind,
            recipients=tuple(spec.recipients),
            changes=spec.changes,
            target_date=spec.target_date,
        )
    elif raw.action == "cancel_quote":
        to_cancel = _validate(TypeAdapter(_CancelSpec), _required(raw.quote, "quote"), "quote")
        cancel = CancelSpec(
            channel=to_cancel.channel,
            quote=Quote(
                quote_number=to_cancel.quote_number,
                csn=to_cancel.csn,
                expires_on=to_cancel.expires_on,
                partner_csn=to_cancel.partner_csn,
            ),
        )
    elif raw.action == "change_terms":
        terms = _required(raw.terms, "terms")
        term, seats = terms.term, terms.seats
    elif raw.action == "add_seats":
        seats = _required(raw.seats, "seats")
    if raw.action == "align_dates":
        _required(raw.target_date, "target_date")
    return ExplainRequest(
        action=raw.action,
        today=raw.today,
        actor=raw.actor,
        subscriptions=subscriptions,
        subscription_ids=ids,
        prices=prices,
        promotions=promotions,
        policy=policy_from_dict(raw.policy),
        reservations=tuple(raw.reservations),
        quote=quote,
        cancel=cancel,
        term=term,
        seats=seats,
        target_date=raw.target_date,
    )


def policy_from_dict(overrides: Mapping[str, Any]) -> Policy:
    """The policy (environment and defaults) with these overrides on top."""
    try:
        return Policy(**overrides)
    except ValidationError as error:
        raise InvalidRequestError(_one_line(error, "policy")) from None


def _payload(item: Mapping[str, Any]) -> Mapping[str, Any]:
    """An event's payload: the item itself, or the `data` of a whole CloudEvent pasted in."""
    data = item.get("data")
    if "specversion" in item and isinstance(data, Mapping):
        return data
    return item


def _required(value: T | None, name: str) -> T:
    if value is None:
        raise InvalidRequestError(f"{name}: Field required for this action")
    return value


def _validate(adapter: TypeAdapter[T], data: Any, prefix: str = "") -> T:
    try:
        return adapter.validate_python(data)
    except ValidationError as error:
        raise InvalidRequestError(_one_line(error, prefix)) from None


def _one_line(error: ValidationError, prefix: str) -> str:
    errors = error.errors()
    first = errors[0]
    location = prefix
    for part in first["loc"]:
        if isinstance(part, int):
            location += f"[{part}]"
        else:
            location += f".{part}" if location else str(part)
    message = f"{location or 'request'}: {first['msg']}"
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more)"
    return message


_SUBSCRIPTION = TypeAdapter(Subscription)
_PRICE = TypeAdapter(Price)
_PROMOTION = TypeAdapter(Promotion)
