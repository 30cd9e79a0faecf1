"""Notification's directory and email queue: the SQL that keeps who each subscription's buyer is,
queues the emails the events call for and follows the open quotes, and the typed rows it returns.

The directory is the subscription system's snapshot of each subscription beside renewal's newest
state of it (shared/state_following.py); an email is queued once under its notification key,
however often its event is seen. Claiming queued emails and marking them sent or failed is the
lease's (leases.py). Every statement that takes a batch is set-based: one per batch.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import asyncpg

from shared import eligibility
from shared.contracts.common import Person
from shared.contracts.state_events import SubscriptionState
from shared.contracts.subscription_events import SubscriptionUpserted
from shared.db.types import DbConnection
from shared.messaging import tracing


@dataclass(frozen=True)
class Contact:
    """A subscription as the directory knows it: whose it is and what it renews on."""

    subscription_id: str
    csn: str
    snapshot: SubscriptionUpserted
    renewal_date: date

    @property
    def recipient(self) -> Person:
        """Who the subscription's emails go to (ROLE-3), as eligibility decides."""
        return eligibility.email_recipient(self.snapshot)


class UnknownSubscriptionError(LookupError):
    """An event about a subscription the directory has not seen yet (its snapshot travels on
    another topic): retried, then dead-lettered for an operator to replay."""


@dataclass(frozen=True)
class Email:
    """An email to queue, about `contact`'s subscription unless it names its own."""

    key: str
    kind: str
    contact: Contact
    context: dict[str, Any]
    subscription_ids: list[str] = field(default_factory=list)
    order_id: str | None = None
    recipients: list[str] = field(default_factory=list)  # the contact's recipient when empty
    quote_number: str | None = None
    # The trace of the event it is made from; None: the one being handled (a batch's handler
    # names each email's own).
    traceparent: str | None = None


@dataclass(frozen=True)
class ConfirmationLine:
    """One subscription an order renewed, as its confirmation lists it."""

    subscription_id: str
    product_name: str
    term: str
    seats: int
    renewal_date: date

    def context(self) -> dict[str, Any]:
        return {
            "subscription_id": self.subscription_id,
            "product_name": self.product_name,
            "term": self.term,
            "seats": self.seats,
            "renewal_date": self.renewal_date.isoformat(),
        }


@dataclass
class Confirmation:
    """An order's confirmation (MAN-3) being queued: the lines of its events seen so far."""

    order_id: str
    csn: str
    recipient: Person
    total: Decimal | None
    currency: str | None
    renewed_in_order: int  # how many lines make it whole, and due
    traceparent: str | None
    lines: list[ConfirmationLine] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"order_confirmation:{self.order_id}"

    @property
    def subscription_ids(self) -> list[str]:
        return [line.subscription_id for line in self.lines]


async def save_subscriptions(
    connection: DbConnection,
    snapshots: Iterable[SubscriptionUpserted],
    reminders_after: Mapping[str, date],
) -> None:
    """Keep each subscription's newest snapshot; a new one is reminded of only from its CSN's
    `reminders_after` day, and the claim first reads it on the first reminder day from then
    (`first_reminder_day`, migrations 014 and 016: the schedule read once, joined)."""
    await connection.execute(
        """INSERT INTO subscriptions (subscription_id, revision, csn, snapshot, renewal_date,
                                      reminders_after, next_reminder_on, next_reminder_for)
           SELECT u.subscription_id, u.revision, u.csn, u.snapshot, d.renewal_date,
                  u.reminders_after,
                  first_reminder_day(d.renewal_date, u.reminders_after, r.days), d.renewal_date
           FROM jsonb_to_recordset($1::jsonb) AS u(subscription_id text, revision bigint,
               csn text, snapshot jsonb, renewal_date date, reminders_after date)
           LEFT JOIN subscription_states AS f USING (subscription_id)
           LEFT JOIN reminder_schedule AS r ON true  -- one row, or none yet
           -- a state renewal published before the snapshot came keeps its date
           CROSS JOIN LATERAL (SELECT COALESCE((f.state ->> 'renewal_date')::date,
                                               u.renewal_date) AS renewal_date) AS d
           ON CONFLICT (subscription_id) DO UPDATE SET revision = EXCLUDED.revision,
               csn = EXCLUDED.csn, snapshot = EXCLUDED.snapshot, updated_at = now()
           WHERE subscriptions.revision < EXCLUDED.revision""",
        json.dumps(
            [
                {
                    "subscription_id": s.subscription_id,
                    "revision": s.revision,
                    "csn": s.csn,
                    "snapshot": s.model_dump(mode="json"),
                    "renewal_date": s.renewal_date.isoformat(),
                    "reminders_after": reminders_after[s.csn].isoformat(),
                }
                for s in snapshots
            ]
        ),
    )


async def move_renewal_dates(connection: DbConnection, taken: Sequence[asyncpg.Record]) -> None:
    """The reminders count from the date renewal holds (a renewal, an alignment): `taken` are
    the states just followed (`follow_states`). A date moved forward (renewed) is reminded of
    only after the old one: the reminders of the term just paid for are not sent again for the
    next. The first day a reminder of the new date can be due goes with it (migration 014): the
    reminder claim reads the subscription on that day, not at once to work it out. The only
    writer of these columns: `subscription.renewed` carries the same dates and is not followed
    twice."""
    if not taken:
        return
    await connection.execute(
        MOVE_RENEWAL_DATES,
        [row["subscription_id"] for row in taken],
        [row["renewal_date"] for row in taken],
    )


# $1 the subscriptions whose state was just taken, $2 their renewal dates (`move_renewal_dates`).
# The schedule is read once, joined, and `first_reminder_day` inlined (migration 016): its
# SQL function of migration 014 ran as a query of its own for each row.
MOVE_RENEWAL_DATES = """
UPDATE subscriptions AS s SET renewal_date = u.renewal_date,
    reminders_after = CASE WHEN u.renewal_date > s.renewal_date
        THEN GREATEST(s.reminders_after, s.renewal_date)
        ELSE s.reminders_after END,
    -- from the first day not looked at yet: the reminders_after just set, or after
    -- the last day looked at (the claim's look_from)
    next_reminder_on = first_reminder_day(u.renewal_date, GREATEST(
        CASE WHEN u.renewal_date > s.renewal_date
             THEN GREATEST(s.reminders_after, s.renewal_date)
             ELSE s.reminders_after END,
        s.reminded_through + 1), r.days),
    next_reminder_for = u.renewal_date,
    updated_at = now()
FROM unnest($1::text[], $2::date[]) AS u(subscription_id, renewal_date)
LEFT JOIN reminder_schedule AS r ON true  -- one row, or none yet
WHERE s.subscription_id = u.subscription_id
  AND s.renewal_date IS DISTINCT FROM u.renewal_date"""


async def states(
    connection: DbConnection, subscription_ids: Iterable[str]
) -> dict[str, SubscriptionState]:
    """Renewal's newest state of each subscription that has one."""
    rows = await connection.fetch(
        "SELECT subscription_id, state::text AS state FROM subscription_states"
        " WHERE subscription_id = ANY($1::text[])",
        sorted(set(subscription_ids)),
    )
    return {
        row["subscription_id"]: SubscriptionState.model_validate_json(row["state"]) for row in rows
    }


async def contacts(connection: DbConnection, subscription_ids: Iterable[str]) -> dict[str, Contact]:
    """The contact of each subscription; `UnknownSubscriptionError` when one has none yet."""
    wanted = sorted(set(subscription_ids))
    rows = await connection.fetch(
        "SELECT subscription_id, csn, snapshot::text AS snapshot, renewal_date FROM subscriptions"
        " WHERE subscription_id = ANY($1::text[])",
        wanted,
    )
    found = {row["subscription_id"]: _contact(row) for row in rows}
    missing = [sid for sid in wanted if sid not in found]
    if missing:
        raise UnknownSubscriptionError(f"no subscription.upserted seen yet for {missing}")
    return found


def _contact(row: Mapping[str, Any]) -> Contact:
    return Contact(
        row["subscription_id"],
        row["csn"],
        SubscriptionUpserted.model_validate_json(row["snapshot"]),
        row["renewal_date"],
    )


async def queue(connection: DbConnection, emails: Sequence[Email], now: datetime) -> None:
    """Queue emails, due now, in one statement; one whose key was queued before is not queued
    again (of two with one key, the first)."""
    if not emails:
        return
    rows = [
        {
            "notification_key": e.key,
            "kind": e.kind,
            "csn": e.contact.csn,
            "recipients": e.recipients or [e.contact.recipient.email],  # ROLE-3
            "locale": e.contact.recipient.locale,
            "context": {"product_name": e.contact.snapshot.product_name, **e.context},
            "subscription_ids": e.subscription_ids or [e.contact.subscription_id],
            "order_id": e.order_id,
            "quote_number": e.quote_number,
            # The event it is made from; a reminder (a decision of its own) starts a trace.
            "traceparent": e.traceparent or (tracing.current() or tracing.start()).traceparent,
        }
        for e in emails
    ]
    await connection.execute(QUEUE, json.dumps(rows, default=str), now)


QUEUE = """
INSERT INTO emails (notification_key, kind, csn, recipients, locale, context, subscription_ids,
                    order_id, quote_number, next_attempt_at, created_at, traceparent)
SELECT u.notification_key, u.kind, u.csn, u.recipients, u.locale, u.context, u.subscription_ids,
       u.order_id, u.quote_number, $2, $2, u.traceparent
FROM ROWS FROM (jsonb_to_recordset($1::jsonb) AS (
    notification_key text, kind text, csn text, recipients text[], locale text, context jsonb,
    subscription_ids text[], order_id text, quote_number text, traceparent text))
    WITH ORDINALITY AS u
ORDER BY u.ordinality
ON CONFLICT (notification_key) DO NOTHING"""


async def queue_confirmations(
    connection: DbConnection, confirmations: Iterable[Confirmation], now: datetime
) -> None:
    """Queue order confirmations, or add their new lines to those still pending, in one
    statement (`QUEUE_CONFIRMATIONS`), the rows locked in key order as every batch locks them."""
    ordered = sorted(confirmations, key=lambda confirmation: confirmation.key)
    if ordered:
        await connection.execute(
            QUEUE_CONFIRMATIONS, json.dumps([_confirmation_row(c) for c in ordered]), now
        )


def _confirmation_row(confirmation: Confirmation) -> dict[str, Any]:
    total = confirmation.total
    return {
        "notification_key": confirmation.key,
        "csn": confirmation.csn,
        "recipients": [confirmation.recipient.email],
        "locale": confirmation.recipient.locale,
        "context": {
            "order_id": confirmation.order_id,
            "items": [line.context() for line in confirmation.lines],
            "total": None if total is None else format(total, "f"),
            "currency": confirmation.currency,
        },
        "subscription_ids": confirmation.subscription_ids,
        "order_id": confirmation.order_id,
        "renewed_in_order": confirmation.renewed_in_order,
        "traceparent": confirmation.traceparent,
    }


# One upsert for a batch of confirmations ($1: one JSON object per notification key, $2: now).
# A new email is due now when it has a line for each subscription its order renewed
# (`renewed_in_order`, kept in its context for the upserts of later batches), else at
# 'infinity' (never claimed) until the upsert that brings its last line makes it due. An email
# still pending gets the lines it does not have yet; one that has them all (due, leased or sent)
# is not written again.
QUEUE_CONFIRMATIONS = """
INSERT INTO emails AS e (notification_key, kind, csn, recipients, locale, context,
                         subscription_ids, order_id, next_attempt_at, created_at, traceparent)
SELECT u.notification_key, 'order_confirmation', u.csn, u.recipients, u.locale,
       u.context || jsonb_build_object('renewed_in_order', u.renewed_in_order),
       u.subscription_ids, u.order_id,
       CASE WHEN cardinality(u.subscription_ids) >= u.renewed_in_order THEN $2::timestamptz
            ELSE 'infinity'::timestamptz END,
       $2, u.traceparent
FROM jsonb_to_recordset($1::jsonb) AS u(
    notification_key text, csn text, recipients text[], locale text, context jsonb,
    subscription_ids text[], order_id text, renewed_in_order int, traceparent text)
ON CONFLICT (notification_key) DO UPDATE SET
    context = jsonb_set(e.context, '{items}', (e.context -> 'items') || COALESCE(
        (SELECT jsonb_agg(line ORDER BY n)
         FROM jsonb_array_elements(EXCLUDED.context -> 'items') WITH ORDINALITY AS l(line, n)
         WHERE NOT (line ->> 'subscription_id') = ANY(e.subscription_ids)),
        '[]'::jsonb)),
    subscription_ids = e.subscription_ids || ARRAY(
        SELECT sid FROM unnest(EXCLUDED.subscription_ids) WITH ORDINALITY AS s(sid, n)
        WHERE NOT sid = ANY(e.subscription_ids) ORDER BY n),
    next_attempt_at = CASE
        WHEN cardinality(e.subscription_ids || ARRAY(
                 SELECT sid FROM unnest(EXCLUDED.subscription_ids) AS s(sid)
                 WHERE NOT sid = ANY(e.subscription_ids)))
             >= COALESCE((e.context ->> 'renewed_in_order')::int, 1)
        THEN LEAST(e.next_attempt_at, $2) ELSE e.next_attempt_at END
WHERE e.status = 'pending' AND NOT EXCLUDED.subscription_ids <@ e.subscription_ids"""


async def open_quotes(connection: DbConnection, quotes: Mapping[str, Sequence[str]]) -> None:
    """NOTE-1: no reminder while a quote sent covers its subscriptions' renewal; `quotes`: the
    subscriptions of each quote number. A quote kept already keeps its row."""
    if quotes:
        await connection.execute(
            "INSERT INTO open_quotes (quote_number, subscription_ids)"
            " SELECT q.quote_number, q.subscription_ids"
            " FROM jsonb_to_recordset($1::jsonb) AS q(quote_number text, subscription_ids text[])"
            " ON CONFLICT (quote_number) DO NOTHING",
            # Arrays of arrays of unequal lengths: JSON, as SQL arrays must be rectangular.
            json.dumps(
                [{"quote_number": n, "subscription_ids": list(s)} for n, s in quotes.items()]
            ),
        )


async def close_quotes(connection: DbConnection, quote_numbers: Sequence[str]) -> None:
    """Quotes paid, expired or cancelled no longer cover their subscriptions' renewal: the
    reminder claim looks at them again at once (it set aside those it found covered,
    reminders.py `COVERED`), their rows locked in id order."""
    if quote_numbers:
        await connection.execute(
            """WITH closed AS (
                   DELETE FROM open_quotes WHERE quote_number = ANY($1::text[])
                   RETURNING subscription_ids),
               locked AS MATERIALIZED (
                   SELECT s.subscription_id FROM subscriptions AS s
                   WHERE s.subscription_id IN (SELECT unnest(subscription_ids) FROM closed)
                   ORDER BY s.subscription_id FOR UPDATE OF s)
               UPDATE subscriptions AS s SET next_reminder_for = NULL
               FROM locked WHERE s.subscription_id = locked.subscription_id""",
            list(quote_numbers),
        )
