"""The bench's count of what each consumer took: skipped records are taken too (issue 19)."""

from __future__ import annotations

from bench.procstat import handler_stats


def labels(**values: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(values.items()))


def test_records_skipped_by_type_count_as_taken_by_the_consumer() -> None:
    topic = labels(service="renewal", topic="billing.events")
    before = {("renewals_handler_batch_seconds_count", topic): 1.0}
    after = {
        ("renewals_handler_batch_seconds_count", topic): 3.0,
        ("renewals_messages_handled_total", topic): 10.0,
        (
            "renewals_messages_skipped_total",
            labels(service="renewal", topic="billing.events", type="order.placed"),
        ): 10.0,
        (
            "renewals_messages_skipped_total",
            labels(service="renewal", topic="billing.events", type="payment.rejected"),
        ): 1.0,
    }

    stats = handler_stats(before, after)

    assert stats["billing.events"] == {"batches": 2.0, "handled": 10.0, "skipped": 11.0}
