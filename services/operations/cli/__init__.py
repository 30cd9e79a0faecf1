"""`renewals`: the operator's command line, one module per command group; the work (and its SQL)
is done in `services/operations/`.

    renewals topics [--watch]          every topic: partitions, end offsets, msg/s, lag per group
    renewals tail TOPIC                CloudEvents as they arrive (--csn, --type, --request-id)
    renewals dlq list|show|replay      dead letters with their errors; replay them, once
    renewals outbox list|retry|drop    outbox events the broker refused, parked with their error
    renewals parked list|retry         items a background loop set aside, with the reason
    renewals health                    each service's readiness, the broker, database, SMTP
    renewals subscription show ID      what every service knows of a subscription
    renewals customer show CSN         what every service knows of a customer
    renewals history SUBSCRIPTION_ID   a subscription's renewal state and its audit trail
    renewals trace ID                  one renewal's path across the services, step by step
    renewals explain SUBSCRIPTION_ID   why can't this customer do that? (--action), live
    renewals batches [--all]           bulk renewal batches with their progress
    renewals migrate [SERVICE...]      apply the services' database migrations

Every command that shows something takes `--json` for scripts.
"""

from services.operations.cli import stuck, subscriptions, system, topics
from services.operations.cli.app import app

COMMAND_GROUPS = (subscriptions, topics, stuck, system)  # imported: their commands are on `app`


def main() -> None:
    app()
