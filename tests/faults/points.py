"""The fault points the suite arms, one line each: (service, point, where it kills).

A point SIGKILLs its process once when reached (shared/plumbing/faults.py, `RENEWALS_FAULTS`).
The suite arms every point of a service at once; when the process dies at one, it is restarted
with the points not yet reached. A point the code does not have (yet) never fires: it is
reported "not reached", never a failure. Add a new point here when a service gains one.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FaultPoint:
    service: str
    point: str
    where: str


FAULT_POINTS: tuple[FaultPoint, ...] = (
    FaultPoint("renewal", "after_db_commit", "a consumed batch committed, offsets not yet"),
    FaultPoint("renewal", "engine_before_commit", "the due-date engine wrote, not committed"),
    FaultPoint("renewal", "engine_after_commit", "the due-date engine committed its orders"),
    FaultPoint("renewal", "outbox_after_publish_before_delete", "relay: published, not deleted"),
    FaultPoint("bulk_worker", "bulk_before_commit", "orders written, transaction not committed"),
    FaultPoint("bulk_worker", "bulk_after_commit", "a claim committed, its orders not published"),
    FaultPoint(
        "bulk_worker", "outbox_after_publish_before_delete", "relay: published, not deleted"
    ),
    FaultPoint("billing", "after_db_commit", "a consumed batch committed, offsets not yet"),
    FaultPoint("billing", "billing_before_charge", "the attempt recorded, provider not called"),
    FaultPoint("billing", "billing_after_charge", "the provider charged, outcome not recorded"),
    FaultPoint("billing", "outbox_after_publish_before_delete", "relay: published, not deleted"),
    FaultPoint("notification", "after_db_commit", "a consumed batch committed, offsets not yet"),
    FaultPoint("notification", "after_smtp_accept", "SMTP accepted, not yet marked sent"),
    FaultPoint("notification", "sender_mid_claim", "part of a claim sent, the rest not"),
    FaultPoint("notification", "sender_after_lease", "a claim leased, nothing of it sent"),
    FaultPoint("notification", "reminders_after_commit", "reminders queued and committed"),
    FaultPoint(
        "notification", "outbox_after_publish_before_delete", "relay: published, not deleted"
    ),
    FaultPoint("quote", "after_db_commit", "a consumed batch committed, offsets not yet"),
    FaultPoint("quote", "automatic_quotes_after_commit", "automatic quotes committed"),
    FaultPoint("quote", "outbox_after_publish_before_delete", "relay: published, not deleted"),
)


def points_of(service: str) -> list[str]:
    return [p.point for p in FAULT_POINTS if p.service == service]
