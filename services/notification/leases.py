"""The email lease: a claim of emails held under a token, renewed while they are sent, and marks
that apply only while the token still holds them (issue 15 item 4, issue 19 item 1).

No statement here can take part in a deadlock: the claim and the renewal of a claim lock with
`SKIP LOCKED` (they never wait), and the others touch one email each, holding no other lock
while they wait for its row (`queue.py` may hold several).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import asyncpg
from prometheus_client import Counter

from shared.clock import Clock

log = logging.getLogger(__name__)

LEASES_LOST = "renewals_email_leases_lost_total"
LEASES_LOST_TOTAL = Counter(
    LEASES_LOST,
    "Emails a sender found leased by another sender (its lease had expired): skipped before"
    " sending, or — after SMTP accepted it — not marked (the other sender may send it again)",
    ["service", "stage"],  # before_send | after_send | after_refusal
)

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
RENEW_CLAIM = """
WITH held AS MATERIALIZED (
    SELECT notification_key FROM emails
    WHERE notification_key = ANY($1::text[]) AND lease_token = $2 AND status = 'pending'
    FOR UPDATE SKIP LOCKED)
UPDATE emails AS e SET lease_until = $3
FROM held WHERE e.notification_key = held.notification_key
RETURNING e.notification_key"""

RENEW_ONE = """
UPDATE emails SET lease_until = $3
WHERE notification_key = $1 AND lease_token = $2 AND status = 'pending'
RETURNING notification_key"""

# One round trip: the email's new state and its event in the outbox, in one transaction, only
# while the lease is still ours. Its commit does not wait for the WAL flush (synchronous_commit
# off, for this transaction only): a crash of this process cannot lose it once the statement
# returned, only a crash of PostgreSQL itself can — the last ~0.6 s (3 × wal_writer_delay) of
# such marks, whose emails are then sent once more (README, "Exactly once").
MARK = """
WITH marked AS (
    UPDATE emails SET status = $3, attempts = attempts + 1, next_attempt_at = $4,
                      sent_at = $5, subject = COALESCE($6, subject), last_error = $7,
                      lease_until = NULL
    WHERE notification_key = $1 AND lease_token = $2 AND status = 'pending'
    RETURNING notification_key),
announced AS (
    INSERT INTO outbox (topic, key, value, headers)
    SELECT u.topic, u.key, u.value, u.headers::jsonb
    FROM marked, unnest($8::text[], $9::bytea[], $10::bytea[], $11::text[])
        AS u(topic, key, value, headers))
SELECT count(*) AS marked, set_config('synchronous_commit', 'off', true) FROM marked"""


@dataclass
class Claim:
    """Emails leased under one token, and until when this sender last leased each."""

    token: uuid.UUID
    emails: list[asyncpg.Record]
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


class Leases:
    def __init__(
        self, pool: asyncpg.Pool, clock: Clock, *, lease_seconds: float, service: str
    ) -> None:
        self.pool = pool
        self.clock = clock
        self.lease = timedelta(seconds=lease_seconds)
        self.service = service

    async def claim(self, size: int) -> Claim:
        now = self.clock.now()
        token = uuid.uuid4()
        rows = await self.pool.fetch(CLAIM, now, now + self.lease, size, token)
        # RETURNING keeps no order: the claim's own (customers' emails first, oldest first).
        emails = sorted(rows, key=lambda r: (r["kind"] == "renewal_reminder", r["next_attempt_at"]))
        return Claim(token, emails, {row["notification_key"]: now + self.lease for row in rows})

    async def hold(self, claim: Claim, key: str) -> bool:
        """Whether this sender still holds `key`, with at least half a lease ahead for sending
        it (renewing the rest of the claim when less is left). False: another sender has it."""
        now = self.clock.now()
        if claim.until[key] - now >= self.lease / 2:
            return True
        until = now + self.lease
        rest = list(claim.until)[list(claim.until).index(key) :]
        for row in await self.pool.fetch(RENEW_CLAIM, rest, claim.token, until):
            claim.until[row["notification_key"]] = until
        if claim.until[key] != until and not await self.pool.fetchval(
            RENEW_ONE, key, claim.token, until
        ):
            self._lost(key, "before_send")
            return False
        claim.until[key] = until
        return True

    async def record(self, mark: Mark) -> bool:
        """Apply `mark` if this sender still holds the email; False (logged and counted) when
        another sender has leased it since."""
        columns = list(zip(*mark.outbox_rows, strict=True)) or [(), (), (), ()]
        topics, keys, values, headers = (list(column) for column in columns)
        row = await self.pool.fetchrow(
            MARK,
            mark.key,
            mark.token,
            mark.status,
            mark.next_attempt_at,
            mark.sent_at,
            mark.subject,
            mark.error,
            topics,
            keys,
            values,
            headers,
        )
        if row is not None and row["marked"]:
            return True
        now = await self.pool.fetchrow(
            "SELECT status, lease_token FROM emails WHERE notification_key = $1", mark.key
        )
        if now is not None and now["status"] == mark.status and now["lease_token"] == mark.token:
            return True  # recorded by an earlier try whose answer was lost with its connection
        self._lost(mark.key, "after_send" if mark.status == "sent" else "after_refusal")
        return False

    def _lost(self, key: str, stage: str) -> None:
        LEASES_LOST_TOTAL.labels(self.service, stage).inc()
        log.warning(
            "email leased by another sender: its lease expired while this one held it",
            extra={"key": key, "stage": stage},
        )
