"""Prometheus metrics shared by every service (each process serves its own /metrics)."""

from prometheus_client import Counter, Gauge, Histogram

MESSAGES_HANDLED = Counter(
    "renewals_messages_handled_total", "Events handled and committed", ["service", "topic"]
)
MESSAGES_DUPLICATE = Counter(
    "renewals_messages_duplicate_total",
    "Events already handled (same event id), skipped by the inbox",
    ["service", "topic"],
)
MESSAGES_FAILED = Counter(
    "renewals_messages_failed_total", "Handling attempts that raised", ["service", "topic"]
)
MESSAGES_DEAD_LETTERED = Counter(
    "renewals_messages_dead_lettered_total", "Messages sent to <topic>.dlq", ["service", "topic"]
)
BATCH_SECONDS = Histogram(
    "renewals_handler_batch_seconds",
    "Time to handle one consumed batch, database commit included",
    ["service", "topic"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
OUTBOX_PUBLISHED = Counter(
    "renewals_outbox_published_total", "Outbox messages published to Kafka", ["service"]
)
OUTBOX_BACKLOG = Gauge(
    "renewals_outbox_backlog", "Outbox messages waiting to be published", ["service"]
)

DUE_DATE_ENGINE = Counter(
    "renewals_due_date_engine_total",
    "What the due-date engine did to due subscriptions",
    ["service", "outcome"],  # auto_renewal_ordered | lapsed | expired
)
