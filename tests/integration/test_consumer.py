"""The batch consumer on the real broker and database: effects once, bad input dead-lettered
without blocking its partition, bounded retries, offsets committed after the database commit.

Each test runs a `ServiceRuntime` of its own in-process, on a fresh topic pair and a throwaway
schema, with a handler that records each `price.published` it handles in `it_effects`.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from prometheus_client import REGISTRY

from deploy.local.client import Seen, TopicWatcher, UpstreamClient
from deploy.local.samples import event, price, unique_csn
from shared.contracts import catalog_events
from shared.contracts.envelope import CONTENT_TYPE, TYPE_HEADER, CloudEvent, encode
from shared.contracts.topics import Topic
from shared.db.settings import DatabaseSettings
from shared.messaging.consumer import (
    BatchHandler,
    Delivery,
    UnitOfWork,
    dispatch_by_type,
    dispatch_some,
)
from shared.messaging.dlq import (
    ERROR_HEADER,
    ERROR_TYPE_HEADER,
    ORIGINAL_SIZE_HEADER,
    TRUNCATED_HEADER,
)
from shared.messaging.runtime import ServiceRuntime
from shared.messaging.settings import MessagingSettings
from tests.integration.helpers import (
    committed_offsets,
    committed_to_the_end,
    connection_to,
    eventually,
    records_on,
    running,
)

MAX_ATTEMPTS = 3
PRODUCER_LIMIT = 1_048_576  # aiokafka's default max_request_size


@dataclass
class Effects:
    """The test's handler: one `it_effects` row per price handled; told what to fail on."""

    admin: AIOKafkaAdminClient
    group_id: str
    topic: str
    calls: Counter[str] = field(default_factory=Counter)
    poison: set[str] = field(default_factory=set)  # product codes that always fail
    outages: Counter[str] = field(default_factory=Counter)  # product code -> outages left
    committed_when_handled: dict[str, dict[int, int]] = field(default_factory=dict)
    deadlocks: Counter[str] = field(default_factory=Counter)  # product code -> deadlocks left
    deadlock_partner: asyncpg.Connection | None = None  # the other side of each deadlock
    partner_endings: list[asyncio.Task[None]] = field(default_factory=list)

    async def handle(self, unit: UnitOfWork, delivery: Delivery) -> None:
        code = delivery.data.product_code
        self.calls[delivery.event.id] += 1
        self.committed_when_handled[delivery.event.id] = await committed_offsets(
            self.admin, self.group_id, self.topic
        )
        if code in self.poison:
            raise RuntimeError(f"cannot handle {code}")
        if self.outages[code] > 0:
            self.outages[code] -= 1
            raise ConnectionResetError("the database went away")  # an infrastructure error
        if self.deadlocks[code] > 0:
            self.deadlocks[code] -= 1
            assert self.deadlock_partner is not None
            for previous in self.partner_endings:
                await previous  # the partner's last transaction is over before the next one
            await deadlock(unit.connection, self.deadlock_partner, self.partner_endings)
        await unit.connection.execute(
            "INSERT INTO it_effects (event_id, product_code, partition, record_offset)"
            " VALUES ($1, $2, $3, $4)",
            delivery.event.id,
            code,
            delivery.record.partition,
            delivery.record.offset,
        )


async def deadlock(
    victim: asyncpg.Connection, partner: asyncpg.Connection, endings: list[asyncio.Task[None]]
) -> None:
    """Make a real deadlock between the handler's transaction (`victim`) and `partner`'s, which
    PostgreSQL breaks by aborting the victim's with SQLSTATE 40P01 (raised here): each takes one
    row of `it_locks`, then waits for the other's. The partner's deadlock_timeout is long, so the
    victim's check (after 1 s) is the one that finds the cycle. The partner's end goes to
    `endings`: it gets its row once the victim's transaction is rolled back, then commits."""
    table = await victim.fetchval("SELECT format('%I.it_locks', current_schema())")
    await victim.execute(f"UPDATE {table} SET n = n + 1 WHERE id = 1")
    await partner.execute("BEGIN")
    await partner.execute("SET LOCAL deadlock_timeout = '30s'")
    await partner.execute(f"UPDATE {table} SET n = n + 1 WHERE id = 2")

    async def partner_ends() -> None:
        await partner.execute(f"UPDATE {table} SET n = n + 1 WHERE id = 1")
        await partner.execute("COMMIT")

    ending = asyncio.create_task(partner_ends())
    partner_pid = partner.get_server_pid()

    async def partner_waits() -> bool:
        return bool(
            await victim.fetchval(
                "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE pid = $1 AND NOT granted)",
                partner_pid,
            )
        )

    await eventually(partner_waits, timeout=5, what="the partner to wait for the victim's row")
    endings.append(ending)  # awaited later: a task nobody holds may be collected
    await victim.execute(f"UPDATE {table} SET n = n + 1 WHERE id = 2")
    raise AssertionError("PostgreSQL did not find the deadlock")


@dataclass
class Harness:
    bootstrap: str
    topic: Topic
    database: DatabaseSettings
    runtime: ServiceRuntime
    effects: Effects
    admin: AIOKafkaAdminClient

    @property
    def group_id(self) -> str:
        return self.runtime.consumers[0].group_id

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        app = self.runtime.build_app()
        async with running(app, lambda: all(self.runtime.readiness().values())):
            yield

    async def effect_count(self, product_code: str) -> int:
        async with connection_to(self.database) as connection:
            return int(
                await connection.fetchval(
                    "SELECT count(*) FROM it_effects WHERE product_code = $1", product_code
                )
            )

    async def inbox_count(self, event_id: str) -> int:
        async with connection_to(self.database) as connection:
            return int(
                await connection.fetchval(
                    "SELECT count(*) FROM inbox WHERE event_id = $1", event_id
                )
            )

    async def wait_handled(self, *product_codes: str, timeout: float = 15.0) -> None:
        async def all_there() -> bool:
            return all([await self.effect_count(code) >= 1 for code in product_codes])

        await eventually(all_there, timeout=timeout, what=f"effects of {product_codes}")

    async def wait_committed_to_the_end(self, timeout: float = 10.0) -> None:
        await committed_to_the_end(
            self.bootstrap, self.admin, self.group_id, self.topic.name, timeout
        )

    async def dead_lettered(
        self,
        upstream: UpstreamClient,
        key: str,
        *bad: bytes,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> list[Seen]:
        """The `bad` records (with `headers`), then a good event, sent on one key: once the
        consumer handled the good one and committed past them all, their letters on the DLQ,
        one for each as the broker counts them."""
        good = product()
        async with TopicWatcher(self.bootstrap, [self.topic.dlq]) as dlq:
            for value in bad:
                await upstream.producer.send_and_wait(
                    self.topic.name, value, key=key.encode(), headers=headers
                )
            await upstream.send(self.topic, price_event(good, key))
            async with self.running():
                await self.wait_handled(good)
                letters = await dlq.wait_for(lambda seen: True, count=len(bad), timeout=10)
                await self.wait_committed_to_the_end()
        assert await self.effect_count(good) == 1  # the partition moved on, once
        assert await self.dead_letters() == len(bad)
        return letters

    async def dead_letters(self) -> int:
        """Records ever written to the test topic's DLQ, as the broker counts them (a watcher's
        empty list would also mean one not read yet). A letter goes out before the consumer
        commits past its record: read after `wait_committed_to_the_end`, 0 proves none."""
        return await records_on(self.bootstrap, self.topic.dlq)


async def make_harness(
    kafka_bootstrap: str,
    kafka_admin: AIOKafkaAdminClient,
    fresh_topic: Topic,
    scratch_database: DatabaseSettings,
    dispatch: Callable[[Effects], BatchHandler],
    *,
    inbox: bool = True,
) -> Harness:
    async with connection_to(scratch_database) as connection:
        await connection.execute(
            "CREATE TABLE it_effects (event_id text NOT NULL, product_code text NOT NULL,"
            " partition int NOT NULL, record_offset bigint NOT NULL)"
        )
    messaging = MessagingSettings(
        kafka_bootstrap=kafka_bootstrap,
        handler_max_attempts=MAX_ATTEMPTS,
        infrastructure_retry_seconds=0.2,
        outbox_poll_seconds=0.2,
        http_port=0,
    )
    runtime = ServiceRuntime(f"it-{uuid.uuid4().hex[:8]}", messaging, scratch_database)
    runtime.migrations_of = "quote"  # the quote schema's tables, in the throwaway schema
    effects = Effects(kafka_admin, f"{runtime.service}.{fresh_topic.name}", fresh_topic.name)
    runtime.consume(fresh_topic, catalog_events.REGISTRY, dispatch(effects), inbox=inbox)
    return Harness(kafka_bootstrap, fresh_topic, scratch_database, runtime, effects, kafka_admin)


@pytest.fixture
async def harness(
    kafka_bootstrap: str,
    kafka_admin: AIOKafkaAdminClient,
    fresh_topic: Topic,
    scratch_database: DatabaseSettings,
) -> Harness:
    return await make_harness(
        kafka_bootstrap,
        kafka_admin,
        fresh_topic,
        scratch_database,
        lambda effects: dispatch_by_type({catalog_events.PricePublished: effects.handle}),
    )


@pytest.fixture
async def upstream(kafka_bootstrap: str) -> AsyncIterator[UpstreamClient]:
    async with UpstreamClient(kafka_bootstrap) as client:
        yield client


def product() -> str:
    return f"P-{uuid.uuid4().hex[:10].upper()}"


def price_event(product_code: str, key: str) -> CloudEvent[Any]:
    # Keyed (subject) by one CSN per test, so that every message of a test shares a partition.
    return event(price(product_code), subject=key, source="/it/catalog")


async def test_the_same_event_twice_has_one_effect(
    harness: Harness, upstream: UpstreamClient
) -> None:
    key = unique_csn()
    twice, later = product(), product()
    duplicated = price_event(twice, key)
    # Before the start: both copies most likely arrive in one batch.
    await upstream.send_many(harness.topic, [duplicated, duplicated])

    async with harness.running():
        await harness.wait_handled(twice)
        # Once handled, a third copy is a duplicate for the inbox; the next event is handled.
        await upstream.send_many(harness.topic, [duplicated, price_event(later, key)])
        await harness.wait_handled(later)
        await harness.wait_committed_to_the_end()

    assert await harness.effect_count(twice) == 1
    assert await harness.inbox_count(duplicated.id) == 1
    assert harness.effects.calls[duplicated.id] == 1


async def test_bad_messages_go_to_the_dlq_unchanged_and_the_partition_moves_on(
    harness: Harness, upstream: UpstreamClient
) -> None:
    key = unique_csn().encode()
    valid = json.loads(encode(price_event(product(), key.decode())))
    bad: dict[str, bytes] = {
        "not JSON": b"\x00\xff{{ definitely not json",
        "not a CloudEvent: the JSON is not an object": b'["a", "list"]',
        "unknown type None": b'{"hello": "world"}',
        "unknown type 'price.deleted'": json.dumps({**valid, "type": "price.deleted"}).encode(),
        "data.list_price": json.dumps(
            {**valid, "data": {**valid["data"], "list_price": 466.0}}
        ).encode(),
        # Prices positive and bounded at the catalog's door (issue 16 item 4).
        "data.renewal_price: Input should be greater than 0": json.dumps(
            {**valid, "data": {**valid["data"], "renewal_price": "0.00"}}
        ).encode(),
        "data.list_price: Input should be less than or equal to": json.dumps(
            {**valid, "data": {**valid["data"], "list_price": "99999999.00"}}
        ).encode(),
        "data.percent_off: Input should be greater than or equal to 0": json.dumps(
            {
                **valid,
                "type": "promotion.published",
                "data": {
                    "promotion_code": "FREE-MONEY",
                    "product_codes": [valid["data"]["product_code"]],
                    "percent_off": "-20",
                    "starts_on": "2026-01-01",
                    "ends_on": "2026-12-31",
                },
            }
        ).encode(),
    }
    letters = await harness.dead_lettered(
        upstream, key.decode(), *bad.values(), headers=[("x-origin", b"it-test")]
    )
    assert len(letters) == len(bad)
    by_value: dict[bytes | None, Seen] = {letter.value: letter for letter in letters}
    assert set(by_value) == set(bad.values())  # the original bytes, unchanged
    for problem, value in bad.items():
        letter = by_value[value]
        assert letter.key == key
        assert problem in letter.headers[ERROR_HEADER]
        assert letter.headers[ERROR_TYPE_HEADER] == "InvalidEventError"
        assert letter.headers["x-dlq-original-topic"] == harness.topic.name
        assert letter.headers["x-dlq-consumer-group"] == harness.group_id
        assert letter.headers["x-origin"] == "it-test"  # the original headers ride along
    offsets = sorted(int(letter.headers["x-dlq-original-offset"]) for letter in letters)
    assert offsets == list(range(len(bad)))


async def test_an_event_that_always_fails_is_dead_lettered_after_the_last_attempt(
    harness: Harness, upstream: UpstreamClient
) -> None:
    key = unique_csn()
    first, poison, third, fourth = (product() for _ in range(4))
    harness.effects.poison.add(poison)
    events = [price_event(code, key) for code in (first, poison, third, fourth)]
    poisoned = events[1]
    async with TopicWatcher(harness.bootstrap, [harness.topic.dlq]) as dlq:
        await upstream.send_many(harness.topic, events)  # one batch once the consumer starts

        async with harness.running():
            [letter] = await dlq.wait_for(lambda seen: True, timeout=15)
            await harness.wait_handled(first, third, fourth)
            await harness.wait_committed_to_the_end()

    # Tried once within the batch, then alone in its own transaction up to the limit.
    assert harness.effects.calls[poisoned.id] == 1 + MAX_ATTEMPTS
    assert letter.value == encode(poisoned)
    assert letter.key == key.encode()
    assert letter.headers[ERROR_TYPE_HEADER] == "RuntimeError"
    assert letter.headers[ERROR_HEADER] == f"cannot handle {poison}"
    assert letter.headers["x-dlq-attempts"] == str(MAX_ATTEMPTS)
    assert letter.headers["content-type"] == CONTENT_TYPE  # the original header, kept
    for code in (first, third, fourth):
        assert await harness.effect_count(code) == 1  # handled once, whatever the retries
    assert await harness.effect_count(poison) == 0
    assert await harness.inbox_count(poisoned.id) == 0


async def test_offsets_are_committed_only_after_the_database_commit(
    harness: Harness, upstream: UpstreamClient
) -> None:
    key = unique_csn()
    codes = [product() for _ in range(5)]
    events = [price_event(code, key) for code in codes]
    await upstream.send_many(harness.topic, events)

    async with harness.running():
        await harness.wait_handled(*codes)
        await harness.wait_committed_to_the_end()
        # A second batch moves the committed offset on in the same way.
        more = product()
        await upstream.send(harness.topic, price_event(more, key))
        await harness.wait_handled(more)
        await harness.wait_committed_to_the_end()

    # While each event was being handled (inside its database transaction), the group had not
    # committed past it.
    async with connection_to(harness.database) as connection:
        rows = await connection.fetch("SELECT event_id, partition, record_offset FROM it_effects")
    assert len(rows) == 6
    for row in rows:
        committed = harness.effects.committed_when_handled[row["event_id"]]
        assert committed.get(row["partition"], 0) <= row["record_offset"]


async def test_an_infrastructure_error_redelivers_the_batch_without_committing_it(
    harness: Harness, upstream: UpstreamClient
) -> None:
    key = unique_csn()
    flaky, steady = product(), product()
    harness.effects.outages[flaky] = 1
    flaky_event, steady_event = price_event(flaky, key), price_event(steady, key)
    await upstream.send_many(harness.topic, [steady_event, flaky_event])
    async with harness.running():
        await harness.wait_handled(flaky, steady)
        await harness.wait_committed_to_the_end()

    # Not the message's fault: retried, never dead-lettered.
    assert await harness.dead_letters() == 0
    assert harness.effects.calls[flaky_event.id] == 2
    assert await harness.effect_count(flaky) == 1
    assert await harness.effect_count(steady) == 1  # its first, rolled-back try left nothing
    assert await harness.inbox_count(flaky_event.id) == 1


async def test_a_deeply_nested_message_is_dead_lettered_and_the_next_command_handled(
    harness: Harness, upstream: UpstreamClient
) -> None:
    """Issue 15: one 10 KB message of nested JSON stopped every command behind it, for ever
    (RecursionError outside the dead-letter path). Now: dead-lettered, and the partition moves on."""
    key = unique_csn()
    nested = b"[" * 5000 + b"]" * 5000
    [letter] = await harness.dead_lettered(upstream, key, nested)
    assert letter.value == nested
    assert letter.headers[ERROR_TYPE_HEADER] == "InvalidEventError"
    assert "RecursionError" in letter.headers[ERROR_HEADER]
    assert letter.headers["x-dlq-original-offset"] == "0"


async def test_records_with_a_header_without_value_are_handled_or_dead_lettered(
    harness: Harness, upstream: UpstreamClient
) -> None:
    """Issue 15: a `null` header value failed the whole batch before the consumer saw it
    (FastStream decodes every header as text). Kafka allows it: it must not stop a partition."""
    key = unique_csn()
    good = product()
    headers = [("x-empty", None), ("x-binary", b"\xff\xfe")]
    async with TopicWatcher(harness.bootstrap, [harness.topic.dlq]) as dlq:
        await upstream.producer.send_and_wait(
            harness.topic.name, b"not json", key=key.encode(), headers=headers
        )
        await upstream.producer.send_and_wait(
            harness.topic.name,
            encode(price_event(good, key)),
            key=key.encode(),
            headers=headers,
        )

        async with harness.running():
            await harness.wait_handled(good)
            [letter] = await dlq.wait_for(lambda seen: True, timeout=10)
            await harness.wait_committed_to_the_end()

    assert letter.value == b"not json"
    assert letter.headers["x-empty"] == ""
    assert "not JSON" in letter.headers[ERROR_HEADER]


async def test_a_deadlock_is_retried_as_the_infrastructure_s_and_never_dead_lettered(
    harness: Harness, upstream: UpstreamClient, admin_db: asyncpg.Connection
) -> None:
    """Issue 15 item 3: a deadlock (SQLSTATE 40P01) was the message's fault — three attempts,
    then the DLQ. It is transient: the batch comes again and the message is handled, once.
    Here a real deadlock aborts the handler's transaction more times than there are attempts."""
    async with connection_to(harness.database) as connection:
        await connection.execute("CREATE TABLE it_locks (id int PRIMARY KEY, n int NOT NULL)")
        await connection.execute("INSERT INTO it_locks VALUES (1, 0), (2, 0)")
    key = unique_csn()
    unlucky, steady = product(), product()
    harness.effects.deadlocks[unlucky] = MAX_ATTEMPTS + 1
    harness.effects.deadlock_partner = admin_db
    events = [price_event(steady, key), price_event(unlucky, key)]
    await upstream.send_many(harness.topic, events)
    async with harness.running():
        await harness.wait_handled(unlucky, steady, timeout=30)
        await harness.wait_committed_to_the_end()

    # Not the message's fault: retried, never dead-lettered.
    assert await harness.dead_letters() == 0
    for ending in harness.effects.partner_endings:
        await ending
    assert harness.effects.deadlocks[unlucky] == 0  # every deadlock happened
    assert harness.effects.calls[events[1].id] == MAX_ATTEMPTS + 2
    assert await harness.effect_count(unlucky) == 1
    assert await harness.effect_count(steady) == 1


async def test_a_record_near_the_broker_s_size_limit_is_dead_lettered_truncated(
    harness: Harness, upstream: UpstreamClient
) -> None:
    """Issue 15 item 1: a record that fitted its topic no longer fits once the dead-letter
    headers are added (the broker's default limit, ~1 MiB): the producer refused the copy and
    the batch came back for ever. Now the copy keeps its headers and the start of its body."""
    key = unique_csn()
    headers = [("x-origin", b"it-test")]
    # Not JSON, and 100 bytes under the producer's 1 MiB (the broker takes 1,048,588).
    room = PRODUCER_LIMIT - DefaultRecordBatchBuilder.estimate_size_in_bytes(
        key.encode(), b"", headers
    )
    big = b"{" + b"x" * (room - 200)
    [letter] = await harness.dead_lettered(upstream, key, big, headers=headers)
    assert letter.value is not None and big.startswith(letter.value)
    assert 1_040_000 < len(letter.value) < len(big)
    assert letter.headers[TRUNCATED_HEADER] == "true"
    assert letter.headers[ORIGINAL_SIZE_HEADER] == str(len(big))
    assert letter.headers["x-dlq-original-topic"] == harness.topic.name
    assert letter.headers["x-dlq-original-offset"] == "0"
    assert "x-dlq-original-partition" in letter.headers
    assert letter.headers["x-origin"] == "it-test"
    assert "not JSON" in letter.headers[ERROR_HEADER]


async def test_a_dead_letter_the_broker_refuses_as_too_large_is_published_shorter(
    harness: Harness, upstream: UpstreamClient
) -> None:
    """Issue 15 item 1: should the DLQ topic take less than the setting says (here 200 KB),
    the broker's refusal must not rewind the batch for ever: a shorter copy goes instead."""
    await harness.admin.alter_configs(
        [
            ConfigResource(
                ConfigResourceType.TOPIC, harness.topic.dlq, {"max.message.bytes": "200000"}
            )
        ]
    )
    key = unique_csn()
    big = b"[" + b"1," * 250_000  # 500 KB, not JSON
    [letter] = await harness.dead_lettered(upstream, key, big)
    assert letter.value is not None and big.startswith(letter.value)
    assert 0 < len(letter.value) <= 64 * 1024
    assert letter.headers[TRUNCATED_HEADER] == "true"
    assert letter.headers[ORIGINAL_SIZE_HEADER] == str(len(big))
    assert letter.headers["x-dlq-original-offset"] == "0"


async def test_issue_19_a_type_the_service_ignores_is_skipped_without_an_inbox_row_and_its_offset_moves_on(
    kafka_bootstrap: str,
    kafka_admin: AIOKafkaAdminClient,
    fresh_topic: Topic,
    scratch_database: DatabaseSettings,
    upstream: UpstreamClient,
) -> None:
    """Issue 19 item 3: a service that handles prices only (`dispatch_some`) skips promotions
    by their `ce-type` header: no handler call, no inbox row, counted; the offsets of the
    partition are committed past them with the batch's."""
    harness = await make_harness(
        kafka_bootstrap,
        kafka_admin,
        fresh_topic,
        scratch_database,
        lambda effects: dispatch_some(
            catalog_events.REGISTRY, {catalog_events.PricePublished: effects.handle}
        ),
    )
    key = unique_csn()
    promotions = [
        event(
            catalog_events.PromotionPublished(
                promotion_code=f"PROMO-{i}",
                product_codes=["ACDLT"],
                percent_off="10",
                starts_on="2026-01-01",
                ends_on="2026-12-31",
            ),
            subject=key,
            source="/it/catalog",
        )
        for i in range(3)
    ]
    handled = product()
    # As the outbox publishes them: the event's type in the `ce-type` header.
    for promotion in promotions:
        await upstream.send_raw(
            harness.topic,
            encode(promotion),
            key.encode(),
            headers=[
                ("content-type", CONTENT_TYPE.encode()),
                (TYPE_HEADER, promotion.type.encode()),
            ],
        )
    await upstream.send(harness.topic, price_event(handled, key))
    labels = {"service": harness.runtime.service, "topic": harness.topic.name}

    async with harness.running():
        await harness.wait_handled(handled)
        await harness.wait_committed_to_the_end()

    assert skipped(labels, "promotion.published") == len(promotions)
    for promotion in promotions:
        assert await harness.inbox_count(promotion.id) == 0
        assert harness.effects.calls[promotion.id] == 0
    assert await harness.effect_count(handled) == 1
    assert handled_count(labels) == 1


async def test_issue_19_a_topic_consumed_without_inbox_leaves_duplicates_to_its_handler(
    kafka_bootstrap: str,
    kafka_admin: AIOKafkaAdminClient,
    fresh_topic: Topic,
    scratch_database: DatabaseSettings,
    upstream: UpstreamClient,
) -> None:
    """`inbox=False` (the followers of `subscription.state`, idempotent by version): no inbox
    row is written, and an event delivered again after it was handled reaches the handler
    again — its own key, not the inbox, makes it one effect (test_state_following)."""
    harness = await make_harness(
        kafka_bootstrap,
        kafka_admin,
        fresh_topic,
        scratch_database,
        lambda effects: dispatch_by_type({catalog_events.PricePublished: effects.handle}),
        inbox=False,
    )
    key = unique_csn()
    again, later = product(), product()
    redelivered = price_event(again, key)
    await upstream.send(harness.topic, redelivered)

    async with harness.running():
        await harness.wait_handled(again)
        await upstream.send_many(harness.topic, [redelivered, price_event(later, key)])
        await harness.wait_handled(later)
        await harness.wait_committed_to_the_end()

    assert harness.effects.calls[redelivered.id] == 2
    assert await harness.inbox_count(redelivered.id) == 0


def skipped(labels: dict[str, str], event_type: str) -> float:
    sample = REGISTRY.get_sample_value(
        "renewals_messages_skipped_total", {**labels, "type": event_type}
    )
    return sample or 0.0


def handled_count(labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value("renewals_messages_handled_total", labels) or 0.0
