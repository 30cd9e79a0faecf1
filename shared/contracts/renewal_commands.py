"""`renewal.commands`: what the account portal, partner and sales tools ask of renewal."""

from __future__ import annotations

from datetime import date
from typing import ClassVar

from pydantic import Field

from shared.contracts.common import MAX_IDS, Actor, RequestId, SeatsAsked, SubscriptionId, Term
from shared.contracts.envelope import EventData, EventRegistry
from shared.contracts.topics import RENEWAL_COMMANDS

TOPIC = RENEWAL_COMMANDS


class RenewalCommand(EventData):
    request_id: RequestId
    actor: Actor


class SetAutoRenew(RenewalCommand):
    event_type: ClassVar[str] = "auto_renew.set"
    # The 1-to-100 limit is a business refusal (BULK_LIMIT_EXCEEDED), not a schema error;
    # only a list past the technical cap (MAX_IDS) is malformed.
    subscription_ids: list[SubscriptionId] = Field(max_length=MAX_IDS)
    enabled: bool


class RequestRenewal(RenewalCommand):
    """Manual renewal paid online (MAN-1)."""

    event_type: ClassVar[str] = "renewal.requested"
    # Over 100 is refused (BULK_LIMIT_EXCEEDED) without storing the ids; over MAX_IDS, malformed.
    subscription_ids: list[SubscriptionId] = Field(max_length=MAX_IDS)


class ChangeRenewalTerms(RenewalCommand):
    event_type: ClassVar[str] = "renewal_terms.changed"
    subscription_id: SubscriptionId
    term: Term | None = None
    seats: SeatsAsked | None = None


class AddSeats(RenewalCommand):
    event_type: ClassVar[str] = "seats.added"
    subscription_id: SubscriptionId
    seats: SeatsAsked


class AlignRenewalDates(RenewalCommand):
    event_type: ClassVar[str] = "renewal_dates.aligned"
    subscription_ids: list[SubscriptionId] = Field(min_length=0, max_length=MAX_IDS)
    target_date: date


REGISTRY = EventRegistry(
    TOPIC.name, SetAutoRenew, RequestRenewal, ChangeRenewalTerms, AddSeats, AlignRenewalDates
)
