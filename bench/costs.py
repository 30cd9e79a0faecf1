"""CPU-ms per renewal per process, for every path measured, and the emails' correctness."""

from __future__ import annotations

from typing import Any

from bench import e2e
from bench.report import table
from bench.smtp import MailCheck
from services.processes import SERVICES

PRODUCT = [spec.name for spec in SERVICES] + [e2e.KAFKA, e2e.POSTGRES, e2e.POSTGRES_SHARED]
APART = [e2e.SMTP_SINK, e2e.BENCH, e2e.OTHERS]


def per_renewal(cpu: dict[str, float], renewals: int) -> dict[str, float]:
    """CPU seconds per process → CPU milliseconds per renewal, with the product's total."""
    if not renewals:
        return {}
    ms = {name: 1000 * seconds / renewals for name, seconds in cpu.items()}
    ms["product (services, Kafka, PostgreSQL)"] = sum(ms.get(name, 0.0) for name in PRODUCT)
    return ms


def render_cpu(paths: dict[str, dict[str, float]]) -> dict[str, Any]:
    """One table: a row per process, a column per path (ms per renewal)."""
    names = [*PRODUCT, "product (services, Kafka, PostgreSQL)", *APART]
    rows = [
        [name, *(path.get(name) for path in paths.values())]
        for name in names
        if any(name in path for path in paths.values())
    ]
    print("\nCPU-ms per renewal, per process (the SMTP sink and the bench apart from the product)")
    print(table(["process", *paths], rows))
    product = "product (services, Kafka, PostgreSQL)"
    caps = [
        f"{path_name}: 2 cores cap it at ~{2000 / path[product]:,.0f}/s"
        for path_name, path in paths.items()
        if path.get(product)
    ]
    if caps:
        print("  at this cost, with nothing else running: " + "; ".join(caps))
    return {
        path_name: {name: round(value, 3) for name, value in path.items()}
        for path_name, path in paths.items()
    }


def render_mail(checks: dict[str, MailCheck]) -> dict[str, Any]:
    """Confirmations without their total and duplicate emails, per phase: 0 and 0 is good."""
    print("\nEmails received by the SMTP sink (X-Notification-Key, the total in the body)")
    rows = [
        [
            phase,
            check.confirmations,
            check.without_total,
            check.duplicates,
            ", ".join(f"{k} {n:,}" for k, n in sorted(check.by_kind.items())),
            ("good" if check.messages else "no email") if check.good else "BAD",
        ]
        for phase, check in checks.items()
    ]
    print(
        table(
            [
                "phase",
                "confirmations",
                "without their total",
                "duplicate emails",
                "all emails by kind",
                "verdict",
            ],
            rows,
        )
    )
    for phase, check in checks.items():
        if check.duplicate_keys:
            print(f"  {phase}: sent twice (first ones): {', '.join(check.duplicate_keys)}")
    return {phase: check.as_json() for phase, check in checks.items()}
