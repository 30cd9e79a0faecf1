"""The email lease: a claim of emails held under a token, renewed while they are sent, and marks
that apply only while the token still holds them (issue 15 item 4, issue 19 item 1).

No statement here can take part in a deadlock: the claim and the renewal of a claim lock with
`SKIP LOCKED` (they never wait), `RENEW_ONE` touches one email, and the marks lock their emails
in key order, as the confirmations' upsert (`store.py`) does, holding no other lock while they
wait. The emails a claim leases come back typed (`LeasedEmail`).
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from prometheus_client import Counter

from shared.clock import Clock
from shared.db.types import DbConnection

log = logging.getLogger(__name__)

LEASES_LOST = "renewals_email_leases_lost_total"
LEASES_LOST_TOTAL = Counter(
    LEASES_LOST,
    "Emails a sender found leased by another sender (its lease had expired): skipped before"
    " sending, or — after SMTP accepted it — not marked (the other sender may send it again)",
    ["service", "stage"],  # before_send | after_send | after_refusal
)

# The setting (transaction-local) under which the outbox's trigger sends no NOTIFY (notification
# migration 017): set by a mark whose sender wakes the relay of its own process.
RELAY_WOKEN_HERE = "renewals.relay_woken_here"

# Pending, due and not leased — the predicate and order the `emails_claimable` index serves
# (migration 005). MATERIALIZED: the claim is evaluated once, so that concurrent claims do not
# re-run it row by row (the `IN (SELECT … FOR UPDATE SKIP LOCKED)` form returned 40-57 rows
# for a claim of 20 under contention).
CLAIM = """
WITH claim AS MATERIALIZED (
    SELECT notification_key FROM emails
    WHERE status = 'pending' AND GREATEST(next_attempt_at, lease_until) <= $1
    -- what a customer just did goes before reminders, however many are due
    ORDER BY kind = 'renewal_reminder', GREATEST(next_attempt_at, lease_until)
    LIMIT $3 FOR UPDATE SKIP LOCKED)
UPDATE emails AS e SET lease_until = $2, lease_token = $4
FROM claim WHERE e.notification_key = claim.notification_key
RETURNING e.notification_key, e.kind, e.csn, e.recipients, e.locale, e.context::text AS context,
          e.subscription_ids, e.order_id, e.quote_number, e.attempts, e.next_attempt_at,
          e.traceparent"""

# The rest of a claim, renewed; an email another transaction has locked right now is left for
# the next renewal (or `RENEW_ONE` when its turn comes) rather than waited for.
# The renewals find their emails by key: `status IS NOT DISTINCT FROM 'pending'`, not `=`, for
# the reason MARK_ONE gives below (the planner walked all of `emails_claimable` when its
# statistics were a moment old: test_issue_19_a_lease_renewal_reads_its_emails_by_their_keys_alone).
RENEW_CLAIM = """
WITH held AS MATERIALIZED (
    SELECT notification_key FROM emails
    WHERE notification_key = ANY($1::text[]) AND lease_token = $2
      AND status IS NOT DISTINCT FROM 'pending'
    FOR UPDATE SKIP LOCKED)
UPDATE emails AS e SET lease_until = $3
FROM held WHERE e.notification_key = held.notification_key
RETURNING e.notification_key"""

# A stopping sender's emails it never handed to SMTP, claimable again at once (`Leases.release`):
# with no lease, `GREATEST(next_attempt_at, lease_until)` is the email's own due time.
RELEASE = """
UPDATE emails SET lease_until = NULL
WHERE notification_key = ANY($1::text[]) AND lease_token = $2
  AND status IS NOT DISTINCT FROM 'pending'"""

RENEW_ONE = """
UPDATE emails SET lease_until = $3
WHERE notification_key = $1 AND lease_token = $2 AND status IS NOT DISTINCT FROM 'pending'
RETURNING notification_key"""

# One round trip for any number of marks: the emails' new states and their events in the
# outbox, in one transaction, each only while its claim's token still holds the email. The rows
# are locked in key order (`held`), as the queue's upsert locks them: the two cannot deadlock.
# Its commit does not wait for the WAL flush (synchronous_commit off, for this transaction
# only): a crash of this process cannot lose it once the statement returned, only a crash of
# PostgreSQL itself can — the last ~0.6 s (3 × wal_writer_delay) of such marks, whose emails are
# then sent once more (README, "Exactly once").
MARK = """
WITH given AS (
    SELECT * FROM unnest($1::text[], $2::uuid[], $3::text[], $4::timestamptz[],
                         $5::timestamptz[], $6::text[], $7::text[])
        AS g(notification_key, lease_token, status, next_attempt_at, sent_at, subject,
             last_error)),
held AS MATERIALIZED (
    SELECT e.notification_key, e.lease_token, e.status
    FROM emails AS e JOIN given AS g USING (notification_key, lease_token)
    -- found by their keys (the primary key), pending or not, and the status checked on the
    -- rows locked: with `e.status = 'pending'` a qual of emails, the planner walked every
    -- pending email instead (the partial index `emails_claimable`, its statistics a moment
    -- old, estimated tiny), 3 ms a mark with thousands queued
    WHERE e.notification_key = ANY($1::text[])
    ORDER BY e.notification_key FOR UPDATE OF e),
marked AS (
    UPDATE emails AS e SET status = g.status, attempts = e.attempts + 1,
                           next_attempt_at = g.next_attempt_at, sent_at = g.sent_at,
                           subject = COALESCE(g.subject, e.subject), last_error = g.last_error,
                           lease_until = NULL
    FROM held JOIN given AS g USING (notification_key, lease_token)
    WHERE e.notification_key = held.notification_key AND held.status = 'pending'
    RETURNING e.notification_key, e.lease_token),
announced AS (
    INSERT INTO outbox (topic, key, value, headers)
    SELECT u.topic, u.key, u.value, u.headers::jsonb
    FROM unnest($8::text[], $9::uuid[], $10::text[], $11::bytea[], $12::bytea[], $13::text[])
        AS u(notification_key, lease_token, topic, key, value, headers)
    JOIN marked USING (notification_key, lease_token))
SELECT array_agg(notification_key || ' ' || lease_token) AS marked,
       set_config('synchronous_commit', 'off', true)
FROM marked"""

# MARK for one email — a claim of one, or a sender marking each email SMTP accepted
# (`mark_every` 1, sender.py): one UPDATE by the primary key, applied when the claim's token and
# the pending status still hold (an UPDATE that waited for the row's lock checks them again on
# the row it then locks), feeding its event to the outbox; one row locked: no lock order to keep.
# (issue 19, s9 plan item 2b: it was a `FOR UPDATE` CTE read by key, joined again by key to
# update, and an array_agg of the keys marked — two reads of the primary key where one does.)
# `IS NOT DISTINCT FROM`, not `=`: written `status = 'pending'`, the planner may walk the whole
# partial index `emails_claimable` (`WHERE status = 'pending'`) instead of the primary key when
# that index's statistics are a moment old and estimate it tiny — 4-7 ms a mark with 20,000
# queued, against 0.1 (test_issue_19_one_mark_reads_its_email_by_its_key_alone); the status is
# never NULL, so both say the same.
#
# `$12` 'on' when the sender wakes its process's relay itself (`Leases.relay_woken_here`): the
# outbox's trigger then sends no NOTIFY (migration 017), set for this transaction in `quiet`,
# which the INSERT reads before its end-of-statement trigger is looked at.
MARK_ONE = f"""
WITH quiet AS (SELECT set_config('{RELAY_WOKEN_HERE}', $12, true)),
marked AS (
    UPDATE emails SET status = $3, attempts = attempts + 1, next_attempt_at = $4, sent_at = $5,
                      subject = COALESCE($6, subject), last_error = $7, lease_until = NULL
    WHERE notification_key = $1 AND lease_token = $2 AND status IS NOT DISTINCT FROM 'pending'
    RETURNING notification_key),
announced AS (
    INSERT INTO outbox (topic, key, value, headers)
    SELECT u.topic, u.key, u.value, u.headers::jsonb
    FROM marked, quiet, unnest($8::text[], $9::bytea[], $10::bytea[], $11::text[])
        AS u(topic, key, value, headers))
SELECT count(*) = 1 AS marked, set_config('synchronous_commit', 'off', true) FROM marked"""


@dataclass(frozen=True)
class LeasedEmail:
    """A queued email as a claim leases it: what its message and its events are made of."""

    key: str
    kind: str
    csn: str
    recipients: tuple[str, ...]
    locale: str
    context: dict[str, Any]
    subscription_ids: tuple[str, ...]
    order_id: str | None
    quote_number: str | None
    attempts: int  # tries so far
    next_attempt_at: datetime
    traceparent: str | None

    @property
    def reminder(self) -> bool:
        """A reminder waits behind what a customer just did (the claim's order)."""
        return self.kind == "renewal_reminder"


def _leased(row: asyncpg.Record) -> LeasedEmail:
    return LeasedEmail(
        key=row["notification_key"],
        kind=row["kind"],
        csn=row["csn"],
        recipients=tuple(row["recipients"]),
        locale=row["locale"],
        context=json.loads(row["context"]),
        subscription_ids=tuple(row["subscription_ids"]),
        order_id=row["order_id"],
        quote_number=row["quote_number"],
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        traceparent=row["traceparent"],
    )


@dataclass
class Claim:
    """Emails leased under one token, and until when this sender last leased each."""

    token: uuid.UUID
    emails: list[LeasedEmail]
    until: dict[str, datetime] = field(default_factory=dict)


@dataclass
class Mark:
    """What becomes of one email of a claim (sent, to retry, failed) and its events."""

    token: uuid.UUID
    key: str
    kind: str
    status: str  # sent | pending | failed
    next_attempt_at: datetime
    sent_at: datetime | None = None
    subject: str | None = None
    error: str | None = None
    outbox_rows: list[tuple[str, bytes | None, bytes, str]] = field(default_factory=list)
    failures: int = 0  # database errors met while recording it

    def columns(self) -> tuple[Any, ...]:
        """Its values in the order of MARK's and MARK_ONE's first parameters."""
        return (
            self.key,
            self.token,
            self.status,
            self.next_attempt_at,
            self.sent_at,
            self.subject,
            self.error,
        )


class Leases:
    """Claims, renewals and marks, through `database`: the pool, or one connection a sender
    holds for a whole claim (`on`)."""

    def __init__(
        self,
        database: asyncpg.Pool | DbConnection,
        clock: Clock,
        *,
        lease_seconds: float,
        service: str,
        relay_woken_here: bool = False,
    ) -> None:
        self.database = database
        self.clock = clock
        self.lease = timedelta(seconds=lease_seconds)
        self.service = service
        # The caller wakes this process's relay after its marks: a mark alone (MARK_ONE) then
        # adds its event to the outbox without a NOTIFY.
        self.relay_woken_here = relay_woken_here
        self._quiet = "on" if relay_woken_here else "off"

    def on(self, connection: DbConnection) -> Leases:
        """The same leases through `connection` alone: a sender marks each email SMTP accepted
        (issue 19, s9 plan item 2b), and a pool's acquire and release for each mark cost about
        as much Python as the mark itself."""
        return Leases(
            connection,
            self.clock,
            lease_seconds=self.lease.total_seconds(),
            service=self.service,
            relay_woken_here=self.relay_woken_here,
        )

    async def claim(self, size: int) -> Claim:
        now = self.clock.now()
        token = uuid.uuid4()
        rows = await self.database.fetch(CLAIM, now, now + self.lease, size, token)
        # RETURNING keeps no order: the claim's own (customers' emails first, oldest first).
        emails = sorted(map(_leased, rows), key=lambda e: (e.reminder, e.next_attempt_at))
        return Claim(token, emails, {email.key: now + self.lease for email in emails})

    async def hold(self, claim: Claim, key: str) -> bool:
        """Whether this sender still holds `key`, with at least half a lease ahead for sending
        it (renewing the rest of the claim when less is left). False: another sender has it."""
        now = self.clock.now()
        if claim.until[key] - now >= self.lease / 2:
            return True
        until = now + self.lease
        rest = list(claim.until)[list(claim.until).index(key) :]
        for row in await self.database.fetch(RENEW_CLAIM, rest, claim.token, until):
            claim.until[row["notification_key"]] = until
        if claim.until[key] != until and not await self.database.fetchval(
            RENEW_ONE, key, claim.token, until
        ):
            self._lost(key, "before_send")
            return False
        claim.until[key] = until
        return True

    async def release(self, claim: Claim, keys: list[str]) -> None:
        """Give back `keys` of `claim`, never sent: claimable again at once, by any sender."""
        if keys:
            await self.database.execute(RELEASE, keys, claim.token)

    def running_out(self, claim: Claim, key: str) -> bool:
        """Whether less than half a lease is left of `key` — sent and not yet marked, its mark
        must go now: `hold` renews only what is still to send."""
        return claim.until[key] - self.clock.now() < self.lease / 2

    async def record(self, marks: list[Mark]) -> list[Mark]:
        """Apply `marks` where their claim still holds the email, in one statement; returns
        those applied. The others (another sender has leased their email since) are logged
        and counted."""
        if not marks:
            return []
        if len(marks) == 1:
            marked = await self._record_one(marks[0])
        else:
            events = [(mark.key, mark.token, *row) for mark in marks for row in mark.outbox_rows]
            event_columns = [list(c) for c in zip(*events, strict=True)] or [[]] * 6
            mark_columns = [list(c) for c in zip(*(mark.columns() for mark in marks), strict=True)]
            row = await self.database.fetchrow(MARK, *mark_columns, *event_columns)
            marked = set(row["marked"] or ()) if row is not None else set()
        missed = [mark for mark in marks if f"{mark.key} {mark.token}" not in marked]
        if missed:
            # Recorded by an earlier try whose answer was lost with its connection?
            rows = await self.database.fetch(
                "SELECT notification_key, status, lease_token FROM emails"
                " WHERE notification_key = ANY($1::text[])",
                [mark.key for mark in missed],
            )
            now = {r["notification_key"]: r for r in rows}
            for mark in missed:
                found = now.get(mark.key)
                if found is not None and (found["status"], found["lease_token"]) == (
                    mark.status,
                    mark.token,
                ):
                    marked.add(f"{mark.key} {mark.token}")
                else:
                    self._lost(mark.key, "after_send" if mark.status == "sent" else "after_refusal")
        return [mark for mark in marks if f"{mark.key} {mark.token}" in marked]

    async def _record_one(self, mark: Mark) -> set[str]:
        event_columns = [list(c) for c in zip(*mark.outbox_rows, strict=True)] or [[]] * 4
        applied = await self.database.fetchval(
            MARK_ONE, *mark.columns(), *event_columns, self._quiet
        )
        return {f"{mark.key} {mark.token}"} if applied else set()

    def _lost(self, key: str, stage: str) -> None:
        LEASES_LOST_TOTAL.labels(self.service, stage).inc()
        log.warning(
            "email leased by another sender: its lease expired while this one held it",
            extra={"key": key, "stage": stage},
        )
