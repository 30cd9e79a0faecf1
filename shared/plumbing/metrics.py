"""Prometheus metrics shared by every service (each process serves its own /metrics)."""

from collections.abc import Iterable
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

MESSAGES_HANDLED = Counter(
    "renewals_messages_handled_total", "Events handled and committed", ["service", "topic"]
)
MESSAGES_DUPLICATE = Counter(
    "renewals_messages_duplicate_total",
    "Events already handled (same event id), skipped by the inbox",
    ["service", "topic"],
)
MESSAGES_SKIPPED = Counter(
    "renewals_messages_skipped_total",
    "Events of a type this service takes no action on, skipped unparsed by their ce-type header"
    " (no inbox row, offset committed with their batch)",
    ["service", "topic", "type"],
)
MESSAGES_FAILED = Counter(
    "renewals_messages_failed_total", "Handling attempts that raised", ["service", "topic"]
)
COMMANDS_REFUSED_BY_IDENTITY = Counter(
    "renewals_commands_refused_by_identity_total",
    "Commands answered NOT_AUTHORIZED for who sent them (issue 16): unsigned, unknown_signer,"
    " bad_signature, channel_mismatch (the body's channel is not the signer's), wrong_csn (a"
    " self-service actor for another CSN, a partner's user of another partner), not_authorized"
    " (another tenant's subscription or quote, a partner that is not its agent of record)",
    ["service", "why"],
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

LOOP_STEPS = Counter(
    "renewals_loop_steps_total", "Steps of a background loop that completed", ["service", "loop"]
)
LOOP_ERRORS = Counter(
    "renewals_loop_errors_total",
    "Steps of a background loop that raised (the loop backs off and goes on)",
    ["service", "loop", "error_type"],
)

ITEMS_PARKED = Counter(
    "renewals_items_parked_total",
    "Items a background loop set aside because handling them raised (parked_items)",
    ["service", "loop"],
)
OUTBOX_PARKED = Counter(
    "renewals_outbox_parked_total",
    "Outbox messages the broker refused for their own sake, moved to outbox_parked",
    ["service", "topic"],
)

DUE_DATE_ENGINE = Counter(
    "renewals_due_date_engine_total",
    "What the due-date engine did to due subscriptions",
    ["service", "outcome"],  # auto_renewal_ordered | lapsed | expired
)

# Sampled every few seconds by `sample_backlogs` (the runtime's `metrics` loop), not per event.
OUTBOX_OLDEST_AGE = Gauge(
    "renewals_outbox_oldest_age_seconds",
    "Age of the oldest outbox row not yet published (0 when the outbox is empty)",
    ["service"],
)
CONSUMER_LAG = Gauge(
    "renewals_consumer_lag",
    "Messages on the assigned partitions not yet consumed (high watermark minus position)",
    ["service", "topic"],
)


async def sample_backlogs(service: str, pool: Any, consumers: Iterable[Any]) -> None:
    """Set the outbox backlog and age, and each consumer's lag (aiokafka consumers)."""
    async with pool.acquire() as connection:
        row = await connection.fetchrow(
            "SELECT count(*) AS backlog,"
            " coalesce(extract(epoch FROM now() - min(created_at)), 0) AS age FROM outbox"
        )
    OUTBOX_BACKLOG.labels(service).set(row["backlog"])
    OUTBOX_OLDEST_AGE.labels(service).set(float(row["age"]))
    for topic, consumer in consumers:
        lag = 0
        for partition in consumer.assignment() if consumer is not None else ():
            highwater = consumer.highwater(partition)
            if highwater is not None:
                lag += max(highwater - await consumer.position(partition), 0)
        CONSUMER_LAG.labels(service, topic).set(lag)


# Business outcomes, counted by the service that decides them (one `.inc()` where the event is
# added to the outbox); the alert on the payment failure rate reads RENEWALS_PAYMENTS.
RENEWALS_PAYMENTS = Counter(
    "renewals_payments_total",
    "Charges attempted by billing, by outcome",
    ["service", "outcome"],  # succeeded | failed | awaiting_manual
)
RENEWALS_RENEWED = Counter(
    "renewals_subscriptions_renewed_total", "Subscriptions renewed", ["service", "trigger"]
)
EMAILS = Counter("renewals_emails_total", "Emails by outcome", ["service", "kind", "outcome"])
