"""The figures of a fault run and the checks on them: renewals, charges, emails, dead letters,
faults and recovery. Each check that fails is one line in `Figures.failures`."""

from __future__ import annotations

import os
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from tests.faults.chaos import Fault, Fleet, not_reached
from tests.faults.observe import DLQ_TOPICS, OUTPUT_TOPICS, Mail, Record
from tests.faults.points import FAULT_POINTS
from tests.faults.workload import Plan

# Issue 15 item 4, issue 19 item 1 (README "Exactly once", Emails): a crash of a sender
# duplicates at most the emails SMTP accepted since its last marks (RENEWALS_NOTIFICATION_
# MARK_EVERY, 1 by default), and the notification process runs RENEWALS_NOTIFICATION_SENDERS of them (4);
# a crash of PostgreSQL loses the marks of its last ~0.6 s (synchronous_commit off:
# 3 x wal_writer_delay), whose emails go out once more.
EMAIL_DUPLICATES_PER_CRASH = int(os.environ.get("RENEWALS_NOTIFICATION_SENDERS", "4")) * int(
    os.environ.get("RENEWALS_NOTIFICATION_MARK_EVERY", "1")
)
LOST_MARKS_SECONDS = 0.6


@dataclass(frozen=True)
class SentPoison:
    kind: str
    topic: str
    partition: int
    offset: int


@dataclass
class Figures:
    renewals: dict[str, Any] = field(default_factory=dict)
    charges: dict[str, Any] = field(default_factory=dict)
    emails: dict[str, Any] = field(default_factory=dict)
    dead_letters: dict[str, Any] = field(default_factory=dict)
    faults: list[dict[str, Any]] = field(default_factory=list)
    fault_points: list[dict[str, Any]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def _ours(record: Record, csns: set[str]) -> bool:
    return record.event.get("subject") in csns


def renewal_figures(plan: Plan, records: list[Record], figures: Figures) -> set[str]:
    """Renewed or refused with a reason, per kind; returns the renewed orders' ids."""
    csns = plan.csns
    requests: dict[str, list[str]] = {}
    for action in plan.actions:
        request_id = getattr(action.events[0].data, "request_id", None)
        if request_id:
            requests[str(request_id)] = action.subscription_ids
    renewed: dict[str, set[str]] = defaultdict(set)  # subscription → distinct event ids
    orders: set[str] = set()
    refused: dict[str, list[str]] = {}
    for r in records:
        if r.topic not in OUTPUT_TOPICS or not _ours(r, csns):
            continue
        data, kind = r.data, r.type
        if kind == "subscription.renewed":
            renewed[data.get("subscription_id", "")].add(r.event.get("id", ""))
            if data.get("order_id"):
                orders.add(data["order_id"])
        elif kind == "renewal.rejected":
            ids = [data["subscription_id"]] if data.get("subscription_id") else []
            for sid in ids or requests.get(data.get("request_id", ""), []):
                refused[sid] = data.get("reasons") or []
        elif kind == "bulk.completed":
            for outcome in data.get("outcomes") or []:
                if outcome.get("reasons"):
                    refused[outcome.get("subscription_id", "")] = outcome["reasons"]
        elif kind == "quote.rejected":
            for sid in requests.get(data.get("request_id", ""), []):
                refused[sid] = data.get("reasons") or []
    by_kind: dict[str, Counter[str]] = defaultdict(Counter)
    reasons: Counter[str] = Counter()
    lost, twice, unexpected = [], [], []
    for sid, planned in plan.subscriptions.items():
        row = by_kind[planned.kind]
        row["due"] += 1
        if renewed.get(sid):
            row["renewed"] += 1
            if len(renewed[sid]) > 1:
                twice.append(sid)
            if planned.expect == "refused":
                unexpected.append(sid)
        elif refused.get(sid):
            row["refused"] += 1
            reasons.update(refused[sid])
        else:
            row["lost"] += 1
            lost.append(sid)
    figures.renewals = {
        "by_kind": {k: dict(v) for k, v in sorted(by_kind.items())},
        "refusal_reasons": dict(reasons),
        "lost": len(lost),
        "lost_examples": lost[:5],
        "renewed_twice": len(twice),
        "renewed_though_refusal_expected": len(unexpected),
    }
    if lost:
        kinds = Counter(plan.subscriptions[s].kind for s in lost)
        figures.failures.append(
            f"{len(lost)} subscription(s) neither renewed nor refused with a reason"
            f" ({', '.join(f'{k} {n}' for k, n in kinds.items())}; e.g. {', '.join(lost[:3])})"
        )
    if twice:
        figures.failures.append(
            f"{len(twice)} subscription(s) renewed twice for one term (e.g. {twice[0]})"
        )
    return orders


# Per subscription of the run (each renews for one term here): its orders, the orders the
# provider charged (its ledger, billing.simulated_provider_charges, keyed by billing's order id:
# money taken, whatever billing recorded), the orders billing recorded as paid (a card charge,
# or a bank transfer received), and the differences between the two.
CHARGES_SQL = """
SELECT line->>'subscription_id' AS subscription_id,
       count(DISTINCT o.order_id) AS orders,
       count(DISTINCT o.order_id) FILTER (WHERE c.outcome = 'succeeded') AS provider_charges,
       count(DISTINCT o.order_id) FILTER (WHERE p.payment_id IS NOT NULL) AS recorded,
       count(DISTINCT o.order_id)
         FILTER (WHERE c.outcome = 'succeeded' OR p.payment_id IS NOT NULL) AS charges,
       count(DISTINCT o.order_id)
         FILTER (WHERE c.outcome = 'succeeded' AND p.payment_id IS NULL) AS taken_not_recorded,
       count(DISTINCT o.order_id)
         FILTER (WHERE p.payment_id IS NOT NULL AND c.outcome IS DISTINCT FROM 'succeeded'
                   AND c.outcome IS DISTINCT FROM 'awaiting_manual') AS recorded_not_taken
  FROM billing.orders o
  CROSS JOIN LATERAL jsonb_array_elements(o.lines) AS line
  LEFT JOIN billing.simulated_provider_charges c ON c.idempotency_key = o.order_id
  LEFT JOIN billing.payments p ON p.order_id = o.order_id AND p.outcome = 'succeeded'
 WHERE o.csn LIKE $1
 GROUP BY 1
"""


async def charge_figures(
    db: asyncpg.Connection, plan: Plan, renewed_subscriptions: set[str], figures: Figures
) -> None:
    rows = await db.fetch(CHARGES_SQL, f"{plan.prefix}-%")
    charges = {r["subscription_id"]: r for r in rows}
    per_count = Counter(int(r["charges"]) for r in rows)
    twice = [r["subscription_id"] for r in rows if r["charges"] > 1]
    uncharged = sorted(renewed_subscriptions - {s for s, r in charges.items() if r["charges"]})
    not_recorded = [r["subscription_id"] for r in rows if r["taken_not_recorded"]]
    not_taken = [r["subscription_id"] for r in rows if r["recorded_not_taken"]]
    figures.charges = {
        "subscriptions_with_n_charges": {str(n): c for n, c in sorted(per_count.items())},
        "charged_twice": len(twice),
        "renewed_without_charge": len(uncharged),
        "orders_per_subscription_max": max((int(r["orders"]) for r in rows), default=0),
        "provider_ledger": {
            "table": "billing.simulated_provider_charges",
            "subscriptions_charged": sum(1 for r in rows if r["provider_charges"]),
            "charged_but_not_recorded": len(not_recorded),
            "recorded_but_not_charged": len(not_taken),
        },
    }
    if twice:
        figures.failures.append(
            f"{len(twice)} subscription(s) charged more than once for their term (e.g. {twice[0]})"
        )
    if uncharged:
        figures.failures.append(
            f"{len(uncharged)} subscription(s) renewed without a successful charge (e.g."
            f" {uncharged[0]})"
        )
    if not_recorded:
        figures.failures.append(
            f"{len(not_recorded)} subscription(s) charged by the provider with no payment"
            f" recorded (e.g. {not_recorded[0]})"
        )
    if not_taken:
        figures.failures.append(
            f"{len(not_taken)} subscription(s) recorded as paid by card that the provider never"
            f" charged (e.g. {not_taken[0]})"
        )


def email_figures(
    plan: Plan,
    records: list[Record],
    mails: list[Mail],
    orders: set[str],
    fleet: Fleet,
    figures: Figures,
) -> None:
    csns = plan.csns
    per_key = Counter(m.notification_key or "(no key)" for m in mails)
    sent_events: dict[str, set[str]] = defaultdict(set)
    for r in records:
        if r.type == "email.sent" and _ours(r, csns):
            sent_events[r.data.get("notification_id", "")].add(r.event.get("id", ""))
    expected = {f"order_confirmation:{order}" for order in orders}
    missing_smtp = sorted(k for k in expected if not per_key.get(k))
    missing_event = sorted(k for k in expected if not sent_events.get(k))
    duplicates = sum(n - 1 for n in per_key.values() if n > 1)
    crashes = sum(1 for f in fleet.faults if f.target == "notification")
    # A duplicate whose first copy SMTP accepted in the last LOST_MARKS_SECONDS before a
    # PostgreSQL crash (or while it was down) is explained by that crash's lost marks.
    windows = [
        (f.wall - LOST_MARKS_SECONDS, time.time() - (time.monotonic() - (f.back or f.at)))
        for f in fleet.faults
        if f.kind == "postgres restart"
    ]
    first_copy: dict[str, float] = {}
    for mail in mails:
        key = mail.notification_key or "(no key)"
        first_copy[key] = min(first_copy.get(key, mail.received), mail.received)
    by_postgres = sum(
        n - 1
        for key, n in per_key.items()
        if n > 1 and any(start <= first_copy[key] <= end for start, end in windows)
    )
    allowed = EMAIL_DUPLICATES_PER_CRASH * crashes + by_postgres
    kinds = Counter(k.split(":", 1)[0] for k in per_key)
    figures.emails = {
        "received_by_smtp": sum(per_key.values()),
        "notification_keys": len(per_key),
        "keys_by_kind": dict(kinds),
        "confirmations_expected": len(expected),
        "confirmations_missing_at_smtp": len(missing_smtp),
        "confirmations_without_email_sent": len(missing_event),
        "duplicates": duplicates,
        "keys_received_n_times": {str(n): c for n, c in sorted(Counter(per_key.values()).items())},
        "duplicates_allowed": allowed,
        "sender_crashes": crashes,
        "duplicates_of_marks_lost_by_postgres": by_postgres,
    }
    if missing_smtp:
        figures.failures.append(
            f"{len(missing_smtp)} confirmation email(s) never reached SMTP (e.g. {missing_smtp[0]})"
        )
    if missing_event:
        figures.failures.append(
            f"{len(missing_event)} confirmation(s) without email.sent (e.g. {missing_event[0]})"
        )
    if duplicates > allowed:
        worst = per_key.most_common(1)[0]
        figures.failures.append(
            f"{duplicates} duplicate email(s), more than the {allowed} that {crashes} crash(es)"
            f" of the sender ({EMAIL_DUPLICATES_PER_CRASH} each) and the marks lost by"
            f" PostgreSQL crashes ({by_postgres}) explain; the most: {worst[0]} received"
            f" {worst[1]} times"
        )


def dead_letter_figures(
    plan: Plan, records: list[Record], poison: list[SentPoison], figures: Figures
) -> None:
    letters = {
        (
            r.headers.get("x-dlq-original-topic"),
            r.headers.get("x-dlq-original-partition"),
            r.headers.get("x-dlq-original-offset"),
        )
        for r in records
        if r.topic in DLQ_TOPICS
    }
    by_kind: dict[str, Counter[str]] = defaultdict(Counter)
    missing: Counter[str] = Counter()
    for p in poison:
        found = (p.topic, str(p.partition), str(p.offset)) in letters
        by_kind[p.kind]["sent"] += 1
        by_kind[p.kind]["dead-lettered" if found else "missing"] += 1
        if not found:
            missing[f"{p.kind} on {p.topic}"] += 1
    poison_keys = {(p.topic, str(p.partition), str(p.offset)) for p in poison}
    others = [r for r in records if r.topic in DLQ_TOPICS]
    workload = [
        r
        for r in others
        if (
            r.headers.get("x-dlq-original-topic"),
            r.headers.get("x-dlq-original-partition"),
            r.headers.get("x-dlq-original-offset"),
        )
        not in poison_keys
        and (r.key or b"").decode(errors="replace").startswith(plan.prefix)
        and b"POISON" not in (r.key or b"")
    ]
    figures.dead_letters = {
        "poison_sent": len(poison),
        "poison_dead_lettered": len(poison) - sum(missing.values()),
        "by_kind": {k: dict(v) for k, v in sorted(by_kind.items())},
        "dlq_records": len(others),
        "workload_messages_dead_lettered": len(workload),
        "workload_dead_letter_errors": dict(
            Counter(r.headers.get("x-dlq-error-type", "?") for r in workload)
        ),
    }
    if missing:
        figures.failures.append(
            f"{sum(missing.values())} poison message(s) not in a DLQ: "
            + ", ".join(f"{n} {what}" for what, n in missing.most_common())
        )


def fault_figures(fleet: Fleet, records: list[Record], started: float, figures: Figures) -> None:
    outputs = sorted(r.arrived for r in records if r.topic in OUTPUT_TOPICS)

    def resumed(fault: Fault) -> float | None:
        after = fault.back if fault.back is not None else fault.at
        return next((t for t in outputs if t > after), None)

    for fault in sorted(fleet.faults, key=lambda f: f.at):
        resume = resumed(fault)
        figures.faults.append(
            {
                "kind": fault.kind,
                "target": fault.target,
                "detail": fault.detail,
                "at_s": round(fault.at - started, 1),
                "down_s": round(fault.back - fault.at, 1) if fault.back else None,
                "outputs_resumed_s": round(resume - fault.at, 1) if resume else None,
            }
        )
    missed = set(not_reached(fleet))
    for p in FAULT_POINTS:
        at = fleet.reached.get((p.service, p.point))
        figures.fault_points.append(
            {
                "service": p.service,
                "point": p.point,
                "reached_at_s": round(at - started, 1) if at else None,
                "reached": (p.service, p.point) not in missed,
            }
        )
