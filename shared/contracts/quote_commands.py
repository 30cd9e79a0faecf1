"""`quote.commands`: quotes asked for, accepted and cancelled by the portal, partners and sales."""

from __future__ import annotations

from datetime import date
from typing import ClassVar

from pydantic import Field

from shared.contracts.common import (
    MAX_IDS,
    Actor,
    CurrencyCode,
    Email,
    QuoteNumber,
    RequestId,
    SeatsAsked,
    SubscriptionId,
    Term,
)
from shared.contracts.envelope import Contract, EventData, EventRegistry
from shared.contracts.topics import QUOTE_COMMANDS
from shared.eligibility.model import Channel
from shared.eligibility.model import QuoteKind as QuoteKind

TOPIC = QUOTE_COMMANDS

# The rules' vocabulary, defined once by the eligibility package (as shared/contracts/common.py's).
QuoteChannel = Channel


class QuoteChanges(Contract):
    """What the quote changes; each one decides who may quote it (SELF-3 reasons)."""

    term: Term | None = None
    # Seats for the renewal; zero or fewer is refused (INVALID_QUANTITY), not malformed.
    seats: SeatsAsked | None = None
    # A currency other than the subscriptions' is a currency change (CURRENCY_CHANGE).
    currency: CurrencyCode | None = None
    # A date after the renewal date is a future start (FUTURE_START_DATE).
    start_date: date | None = None
    add_seats: SeatsAsked | None = None
    success_plan: bool | None = None
    new_credit_line: bool | None = None


class QuoteCommand(EventData):
    request_id: RequestId
    actor: Actor


class RequestQuote(QuoteCommand):
    event_type: ClassVar[str] = "quote.requested"
    channel: QuoteChannel
    kind: QuoteKind
    # Empty, over 100 or too many recipients are business refusals, not schema errors.
    subscription_ids: list[SubscriptionId] = Field(max_length=MAX_IDS)
    recipients: list[Email] = Field(max_length=MAX_IDS)
    changes: QuoteChanges | None = None


class AcceptQuote(QuoteCommand):
    """Accept and pay."""

    event_type: ClassVar[str] = "quote.accepted"
    quote_number: QuoteNumber


class CancelQuote(QuoteCommand):
    event_type: ClassVar[str] = "quote.cancel_requested"
    channel: QuoteChannel
    quote_number: QuoteNumber


REGISTRY = EventRegistry(TOPIC.name, RequestQuote, AcceptQuote, CancelQuote)
