"""Fault-injection points that tests arm through `RENEWALS_FAULTS` to kill a process on purpose.

Each point is a crash window: SIGKILL there must lose nothing and duplicate no effect.
- `after_db_commit`: a consumer, after a batch's database commit, before its Kafka offset
  commit — the window where a naive consumer would apply an effect twice on redelivery.
- `bulk_before_commit`: the bulk worker, mid-claim: orders decided and written, not committed.
- `bulk_after_commit`: the bulk worker, a claim committed, its orders not yet published.
- `after_smtp_accept`: the email sender, after the SMTP server accepted an email, before it is
  marked sent (that one email goes out again: the most SMTP allows).
- `sender_mid_claim`: the email sender, the first email of a claim of several sent and marked.
- `sender_after_lease`: the email sender, a claim leased and committed, nothing of it sent.
- `billing_before_charge` / `billing_after_charge`: billing's charger, the attempt committed and
  the provider not called yet / the provider charged and the outcome not recorded yet.
- `engine_before_commit` / `engine_after_commit`: the due-date engine, a claim's orders, lapses
  and expiries written, before / right after its commit.
- `reminders_after_commit`: the reminder scheduler, reminders queued and committed.
- `automatic_quotes_after_commit`: automatic quotes created and committed.
- `quote_expiry_after_commit`: quotes expired and committed.
- `outbox_after_publish_before_delete`: the outbox relay, a claim acknowledged by the broker,
  its rows not yet deleted (they go out again: consumers deduplicate on the event id).

`RENEWALS_FAULTS_AFTER` (JSON, point → seconds) keeps a point quiet for that long after start.
"""

import logging
import os
import signal
import time

log = logging.getLogger(__name__)

AFTER_DB_COMMIT = "after_db_commit"
# The bulk worker, mid-batch: orders decided and written, the transaction not yet committed.
BULK_BEFORE_COMMIT = "bulk_before_commit"
# The bulk worker, a claim of batches committed (orders asked for), before the relay sends them.
BULK_AFTER_COMMIT = "bulk_after_commit"
# The email sender, after the SMTP server accepted an email, before it is marked sent.
AFTER_SMTP_ACCEPT = "after_smtp_accept"
# The email sender, mid-claim: the first email of several sent and marked, the others not yet.
SENDER_MID_CLAIM = "sender_mid_claim"
# The email sender, a claim leased (committed), nothing of it sent yet.
SENDER_AFTER_LEASE = "sender_after_lease"
# Billing's charger: the attempt committed, the provider not called yet / the provider charged,
# the outcome not recorded yet (services/billing/charges.py reconciles both on restart).
BILLING_BEFORE_CHARGE = "billing_before_charge"
BILLING_AFTER_CHARGE = "billing_after_charge"
ENGINE_BEFORE_COMMIT = "engine_before_commit"
ENGINE_AFTER_COMMIT = "engine_after_commit"
REMINDERS_AFTER_COMMIT = "reminders_after_commit"
AUTOMATIC_QUOTES_AFTER_COMMIT = "automatic_quotes_after_commit"
QUOTE_EXPIRY_AFTER_COMMIT = "quote_expiry_after_commit"
OUTBOX_AFTER_PUBLISH_BEFORE_DELETE = "outbox_after_publish_before_delete"


class FaultPoints:
    """The armed points; a point given seconds in `after` does nothing when reached sooner after
    start (the fault suite spreads its kills over a run instead of dying at the first batch)."""

    def __init__(
        self, armed: set[str] | frozenset[str] = frozenset(), after: dict[str, float] | None = None
    ) -> None:
        self.armed = frozenset(armed)
        started = time.monotonic()
        self.active_from = {point: started + seconds for point, seconds in (after or {}).items()}

    def hit(self, point: str) -> None:
        if point in self.armed and time.monotonic() >= self.active_from.get(point, 0.0):
            log.warning("fault point reached: killing the process", extra={"fault": point})
            for handler in logging.getLogger().handlers:
                handler.flush()
            os.kill(os.getpid(), signal.SIGKILL)
