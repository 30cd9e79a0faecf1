"""Who owns a subscription's next term: reserving it before any charge, and what a payment does.

Every order that buys time (manual, automatic, by quote, seats, alignment) first reserves the
subscription, with the term start it buys; while that reservation is open any other order is
refused (RENEWAL_IN_PROGRESS), and once it settled the same term is no longer for sale
(ALREADY_RENEWED). When the money arrives, the term is renewed only if it can still take effect
(LIFE-3, LIFE-5); otherwise the money goes back.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from shared.eligibility.dates import grace_ends, new_purchase_term, renewed_term
from shared.eligibility.model import QuoteKind, Subscription, Term
from shared.eligibility.policy import Policy
from shared.eligibility.reasons import Reason, in_contract_order


@dataclass(frozen=True, kw_only=True)
class Reservation:
    """An open order that bought (or is buying) the term starting on `term_start`."""

    subscription_id: str
    order_id: str
    term_start: date


def reservation_reasons(
    subscription: Subscription,
    open_reservation: Reservation | None,
    *,
    term_start: date | None = None,
) -> list[Reason]:
    """RENEWAL_IN_PROGRESS while another order for the subscription is open; ALREADY_RENEWED
    when the term the order would buy (`term_start`, e.g. the renewal date a quote was priced
    for) was bought already: the renewal date has moved past it (LIFE-4)."""
    if open_reservation is not None:
        return [Reason.RENEWAL_IN_PROGRESS]
    if term_start is not None and subscription.renewal_date > term_start:
        return [Reason.ALREADY_RENEWED]
    return []


class RefundReason(StrEnum):
    """Why the money of a paid order goes back (`payment.refunded` `reason`)."""

    EXPIRED = "EXPIRED"
    """LIFE-3/LIFE-5: the subscription expired before the money arrived."""
    RESERVATION_RELEASED = "RESERVATION_RELEASED"
    """The order was abandoned (not paid by its `pay_by`, its quote expired): it bought nothing."""
    ALREADY_RENEWED = "ALREADY_RENEWED"
    """The term the order bought was bought by another order."""
    UNKNOWN_SUBSCRIPTION = "UNKNOWN_SUBSCRIPTION"
    """The order names a subscription the product does not hold (issue 19): it bought nothing."""


def abandoned_refusal() -> Reason:
    """What a manual request is answered when its order is released because its manual
    payment was not received by its `pay_by` (issue 14, 19). The subscription is still
    renewable; the contract has no reason for "not paid by the pay-by date", and the closest
    honest one is a payment that did not go through: PAYMENT_METHOD_INVALID, the answer a
    failed payment of an order gets — the customer may order and pay again."""
    return Reason.PAYMENT_METHOD_INVALID


def refund_refusal(refund: RefundReason) -> Reason:
    """Why a paid order's money went back (issue 19), said with CONTRACT.md's reasons. Only
    money after expiry is EXPIRED (LIFE-3, LIFE-5); money for an abandoned order is refused as
    the order was at its release (`abandoned_refusal`)."""
    return {
        RefundReason.EXPIRED: Reason.EXPIRED,
        RefundReason.RESERVATION_RELEASED: abandoned_refusal(),
        RefundReason.ALREADY_RENEWED: Reason.ALREADY_RENEWED,
        RefundReason.UNKNOWN_SUBSCRIPTION: Reason.UNKNOWN_SUBSCRIPTION,
    }[refund]


def refund_answers_request(refund: RefundReason, *, held: bool) -> bool:
    """Whether a request hears of its money going back (`refund_refusal`). Not when its order
    was let go before the money came (`held` False: its reservation released): abandoned at
    its `pay_by` (`abandoned_refusal`) or at the subscription's expiry (EXPIRED, LIFE-3), the
    release answered the request already, and a command gets exactly one answer (CONTRACT.md)
    — the late money only goes back. A subscription the product does not hold held nothing
    and heard nothing: it is answered."""
    return held or refund is RefundReason.UNKNOWN_SUBSCRIPTION


def quote_took_effect(subscription_ids: Collection[str], refunded: Collection[str]) -> bool:
    """QUO-3, QUO-8: a quote's order makes the quote paid only when its money bought
    something — at least one line took effect. When every line's money went back the quote is
    not paid (it is open again, as after a failed payment); when some did, the quote is paid
    and only the other lines' money goes back (accepting it again could buy nothing more:
    ALREADY_RENEWED for the lines bought, and the others as they were refused)."""
    return bool(set(subscription_ids) - set(refunded))


@dataclass(frozen=True)
class PaidRenewal:
    """What a paid renewal order does to one subscription: renew (`starts_on`, `renewal_date`)
    or give the money back (`refund`)."""

    starts_on: date | None = None
    renewal_date: date | None = None
    refund: RefundReason | None = None


def settle_paid_renewal(
    subscription: Subscription | None,
    reserved_start: date | None,
    today: date,
    policy: Policy,
    term: Term | None = None,
) -> PaidRenewal:
    """The money of a renewal order arrived (LIFE-3, LIFE-4, LIFE-5).

    `reserved_start` is the term start its reservation holds (None: released). The term starts
    at the current renewal date and lasts `term` (or what the next renewal buys); a subscription
    past grace stays expired, and the money goes back. Because grace never outlasts the missed
    term (LIFE-5), a renewal that is allowed always ends after today. A subscription the product
    does not hold (None) can renew nothing: the money goes back (issue 19).
    """
    if subscription is None:
        return PaidRenewal(refund=RefundReason.UNKNOWN_SUBSCRIPTION)
    if today > grace_ends(subscription, policy):
        return PaidRenewal(refund=RefundReason.EXPIRED)
    if reserved_start is None:
        return PaidRenewal(refund=RefundReason.RESERVATION_RELEASED)
    if subscription.renewal_date != reserved_start:
        return PaidRenewal(refund=RefundReason.ALREADY_RENEWED)
    starts_on, renewal_date = renewed_term(subscription, term)
    return PaidRenewal(starts_on=starts_on, renewal_date=renewal_date)


def settle_paid_quote(
    kind: QuoteKind,
    subscription: Subscription | None,
    reserved_start: date | None,
    today: date,
    policy: Policy,
    *,
    term: Term | None = None,
    target_date: date | None = None,
) -> PaidRenewal:
    """QUO-3: a paid quote does what its kind says, for one of its subscriptions.

    - `renewal`: a term of `term` from the current renewal date (LIFE-4), as
      `settle_paid_renewal` (expired, released or already renewed: the money goes back);
    - `alignment`: the renewal date moves to `target_date` (ALIGN-1), while the dates the quote
      was priced for still hold (ALREADY_RENEWED otherwise) and the subscription has not expired;
    - `new`: a new subscription starts on the payment day, `today`, for `term` (LIFE-3: the
      quoted subscription itself is left as it is; `starts_on` is the new one's start date).
    Whatever the kind, an order whose reservation was released, or a subscription the product
    does not hold (None), bought nothing: refunded.
    """
    if subscription is None:
        return PaidRenewal(refund=RefundReason.UNKNOWN_SUBSCRIPTION)
    if kind == "renewal":
        return settle_paid_renewal(subscription, reserved_start, today, policy, term)
    if reserved_start is None:
        return PaidRenewal(refund=RefundReason.RESERVATION_RELEASED)
    if kind == "new":
        starts_on, renewal_date = new_purchase_term(today, term or subscription.renewal_term)
        return PaidRenewal(starts_on=starts_on, renewal_date=renewal_date)
    if today > grace_ends(subscription, policy):
        return PaidRenewal(refund=RefundReason.EXPIRED)
    if subscription.renewal_date != reserved_start or target_date is None:
        return PaidRenewal(refund=RefundReason.ALREADY_RENEWED)
    return PaidRenewal(starts_on=subscription.renewal_date, renewal_date=target_date)


def seats_after_addition(subscription: Subscription, added: int) -> tuple[int, int | None]:
    """SEAT-1, SEAT-2: paid seats added now count from now and at the next renewal: when a
    reduction was set for the next term, the added seats are added to it too (nothing paid for
    is lost at renewal). Returns the new (seats, next_seats)."""
    next_seats = None if subscription.next_seats is None else subscription.next_seats + added
    return subscription.seats + added, next_seats


def quote_order_reasons(
    subscriptions: Mapping[str, Subscription | None],
    reservations: Mapping[str, Reservation],
    term_starts: Mapping[str, date],
    *,
    kind: str,
    today: date,
    policy: Policy,
) -> list[Reason]:
    """QUO-3, QUO-8 and issue 14: an accepted quote's order is placed only when every term it
    buys is still for sale — no other order holds the subscription (RENEWAL_IN_PROGRESS), the
    term (or, for an alignment, the dates) it was priced for was not bought meanwhile
    (ALREADY_RENEWED: e.g. renewed manually after the quote was sent), and, for a renewal or an
    alignment, the subscription has not expired (LIFE-3). A new purchase buys a new
    subscription: only another open order on the quoted one holds it back."""
    reasons: list[Reason] = []
    for subscription_id, subscription in subscriptions.items():
        if subscription is None:
            reasons.append(Reason.UNKNOWN_SUBSCRIPTION)
            continue
        start = term_starts.get(subscription_id) if kind != "new" else None
        reasons += reservation_reasons(
            subscription, reservations.get(subscription_id), term_start=start
        )
        if kind != "new" and today > grace_ends(subscription, policy):
            reasons.append(Reason.EXPIRED)
    return list(in_contract_order(reasons))
