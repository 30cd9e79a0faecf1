"""`renewals outbox list|retry|drop` and `renewals parked list|retry` (issue 15, item 2): an
operator sees what was set aside and why, puts it back to be tried again, or drops it. The rows
are written here as the superuser, with ids of this test only, in the quote service's schema."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator

import asyncpg
import pytest
from faststream.kafka import KafkaBroker

from deploy.local.client import TopicWatcher
from deploy.local.samples import event, price, unique_csn
from shared.contracts.topics import Topic
from shared.db.migrate import migrate
from shared.db.pool import create_pool
from shared.db.settings import DatabaseSettings
from shared.messaging.broker import BrokerSender
from shared.messaging.outbox import OutboxRelay
from tests.integration.helpers import started_broker
from tests.integration.operations.conftest import cli


@pytest.fixture
async def quote_schema(admin_db: asyncpg.Connection) -> None:
    """The rows are the quote service's; `renewals outbox list` reads every service's schema,
    so every one is migrated (alone on a fresh database, the test found the others missing)."""
    for service in ("renewal", "billing", "quote", "notification"):
        await migrate(service)


async def park(admin_db: asyncpg.Connection, topic: str, key: str, value: bytes) -> int:
    parked_id = random.randint(10**12, 10**15)  # no outbox id of a real run comes near
    await admin_db.execute(
        "INSERT INTO quote.outbox_parked (id, topic, key, value, headers, created_at, error)"
        ' VALUES ($1, $2, $3, $4, \'{"content-type": "application/cloudevents+json"}\','
        " now(), 'MessageSizeTooLargeError: [Error 10] too large')",
        parked_id,
        topic,
        key.encode(),
        value,
    )
    return parked_id


@pytest.fixture
async def broker(kafka_bootstrap: str) -> AsyncIterator[KafkaBroker]:
    async with started_broker(kafka_bootstrap, "it-ops") as broker:
        yield broker


async def test_a_parked_event_is_listed_then_retried_and_published(
    quote_schema: None,
    admin_db: asyncpg.Connection,
    fresh_topic: Topic,
    broker: KafkaBroker,
    kafka_bootstrap: str,
) -> None:
    key = unique_csn()
    fixed = event(price("FIXED"), subject=key, source="/it/ops")
    parked_id = await park(admin_db, fresh_topic.name, key, fixed.model_dump_json().encode())
    ref = f"quote:{parked_id}"

    listed = json.loads((await cli("outbox", "list", "--service", "quote", "--json")).output)
    [shown] = [e for e in listed if e["ref"] == ref]
    assert shown["topic"] == fresh_topic.name and shown["key"] == key
    assert shown["error"].startswith("MessageSizeTooLargeError")
    assert ref in (await cli("outbox", "list")).output

    async with TopicWatcher(kafka_bootstrap, [fresh_topic]) as watcher:
        retried = await cli("outbox", "retry", ref)
        assert retried.exit_code == 0 and "back in the outbox" in retried.output
        # The quote service's relay publishes it (this one stands in when none is running).
        pool = await create_pool(DatabaseSettings.for_service("quote"))
        try:
            relay = OutboxRelay(
                pool,
                BrokerSender(broker),
                service="it-ops",
                schema="quote",
                batch_size=100,
                poll_seconds=1,
            )
            while await relay.publish_pending():
                pass
        finally:
            await pool.close()
        [seen] = await watcher.wait_for(lambda s: s.event["id"] == fixed.id, timeout=10)
    assert seen.key == key.encode()
    assert (
        await admin_db.fetchval("SELECT count(*) FROM quote.outbox_parked WHERE id = $1", parked_id)
        == 0
    )
    assert (await cli("outbox", "retry", ref)).exit_code == 1  # once


async def test_a_parked_event_is_dropped(quote_schema: None, admin_db: asyncpg.Connection) -> None:
    parked_id = await park(admin_db, "it.never", unique_csn(), b"{}")
    ref = f"quote:{parked_id}"

    dropped = await cli("outbox", "drop", ref)

    assert dropped.exit_code == 0
    listed = json.loads((await cli("outbox", "list", "--service", "quote", "--json")).output)
    assert ref not in {e["ref"] for e in listed}
    assert (await cli("outbox", "drop", ref)).exit_code == 1
    assert (await cli("outbox", "drop", "nowhere:1")).exit_code == 1


async def test_a_parked_item_is_listed_then_let_go_again(
    quote_schema: None, admin_db: asyncpg.Connection
) -> None:
    item = f"Q-{unique_csn()}"
    await admin_db.execute(
        "INSERT INTO quote.parked_items (loop, item, reason)"
        " VALUES ('quote_expiry', $1, 'ValidationError: quote_number too long')",
        item,
    )
    try:
        listed = json.loads((await cli("parked", "list", "--service", "quote", "--json")).output)
        [shown] = [i for i in listed if i["item"] == item]
        assert shown["loop"] == "quote_expiry" and shown["reason"].startswith("ValidationError")

        assert (await cli("parked", "retry", "quote", "quote_expiry", item)).exit_code == 0
        assert (
            await admin_db.fetchval("SELECT count(*) FROM quote.parked_items WHERE item = $1", item)
            == 0
        )
    finally:
        await admin_db.execute("DELETE FROM quote.parked_items WHERE item = $1", item)
