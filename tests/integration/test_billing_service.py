"""The billing service in-process (its `create_app`) on the real broker and database: an order is
placed and charged once, however many times it is asked for; each payment outcome is announced.

The service runs on topics and a schema of its own: as a replica on `billing.commands` it would
share the consumer group of any billing process running beside the tests (`make run`, the
end-to-end stack) and handle their orders with this test's clock, and they ours.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

import asyncpg
import pytest

from services.billing import orders
from services.billing.app import create_app
from services.billing.settings import BillingSettings
from shared.clock import FixedClock
from shared.contracts import billing_commands
from shared.contracts.billing_commands import PlaceOrder
from shared.contracts.billing_events import OrderLine
from shared.contracts.subscription_events import PaymentMethod
from shared.contracts.topics import BILLING_COMMANDS, BILLING_EVENTS, Topic
from shared.db.settings import DatabaseSettings
from shared.messaging.client import Seen, TopicWatcher, UpstreamClient
from shared.messaging.settings import MessagingSettings
from shared.samples import event, unique_csn
from tests.integration.helpers import (
    caught_up,
    eventually,
    http_ready,
    kafka_admin_client,
    running,
    scratch_schema,
    topic_pairs,
)
from tests.support.infra import admin_connection
from tests.support.smtp import free_port

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
MANUAL_PAYMENT_DAYS = 14


@dataclass(frozen=True)
class Billing:
    commands: Topic
    events: Topic
    database: DatabaseSettings

    @property
    def schema(self) -> str:
        return self.database.schema_name


@pytest.fixture(scope="module")
async def billing(kafka_bootstrap: str) -> AsyncIterator[Billing]:
    run = uuid.uuid4().hex[:12]
    commands = Topic(f"it.{run}.{BILLING_COMMANDS.name}", public=False)
    events = Topic(f"it.{run}.{BILLING_EVENTS.name}", public=False)
    admin_db = await admin_connection()
    try:
        async with (
            kafka_admin_client(kafka_bootstrap) as admin,
            topic_pairs(admin, commands, events),
            scratch_schema(admin_db, "billing") as database,
        ):
            port = free_port()
            settings = BillingSettings(
                messaging=MessagingSettings(
                    kafka_bootstrap=kafka_bootstrap, http_port=port, outbox_poll_seconds=0.2
                ),
                database=database,
                manual_payment_days=MANUAL_PAYMENT_DAYS,
            )
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(billing_commands, "TOPIC", commands)
                patch.setattr(orders, "BILLING_EVENTS", events)
                app = create_app(settings, clock=FixedClock(NOW))

                async def ready() -> bool:
                    return await http_ready(port)

                async with running(app, ready):
                    yield Billing(commands, events, database)
    finally:
        await admin_db.close()


@pytest.fixture
async def upstream(kafka_bootstrap: str) -> AsyncIterator[UpstreamClient]:
    async with UpstreamClient(kafka_bootstrap) as client:
        yield client


@pytest.fixture
async def watcher(billing: Billing, kafka_bootstrap: str) -> AsyncIterator[TopicWatcher]:
    async with TopicWatcher(kafka_bootstrap, [billing.events, billing.commands.dlq]) as watching:
        yield watching


def place_order(method: str = "card", *, valid: bool = True) -> PlaceOrder:
    csn = unique_csn()
    subscription_id = f"sub-{uuid.uuid4().hex[:10]}"
    return PlaceOrder(
        request_id=f"req-{uuid.uuid4()}",
        order_id=f"ORD-{uuid.uuid4().hex[:12].upper()}",
        csn=csn,
        currency="USD",
        purchase_method="direct_online",
        payment_method=PaymentMethod(type=method, recurring=True, valid=valid),  # type: ignore[arg-type]
        lines=[
            OrderLine(
                subscription_id=subscription_id,
                product_code="ACDLT",
                product_name="AutoCAD LT",
                term="annual",
                seats=2,
                unit_price=Decimal("420.00"),
                amount=Decimal("840.00"),
            )
        ],
        total=Decimal("840.00"),
    )


def about(billing: Billing, order_id: str) -> Callable[[Seen], bool]:
    def match(seen: Seen) -> bool:
        return seen.topic == billing.events.name and seen.data.get("order_id") == order_id

    return match


async def settled(
    billing: Billing,
    admin_db: asyncpg.Connection,
    watcher: TopicWatcher,
    command: PlaceOrder,
    event_ids: list[str],
) -> list[Seen]:
    """Wait until billing consumed every command, published its outbox, and the watcher read all
    of it; return the billing events about the order, in their order on the topic."""

    async def consumed() -> bool:
        count = await admin_db.fetchval(
            f"SELECT count(*) FROM {billing.schema}.inbox WHERE event_id = ANY($1::text[])",
            event_ids,
        )
        return count == len(event_ids)

    async def published() -> bool:
        pending = await admin_db.fetchval(
            f"SELECT count(*) FROM {billing.schema}.outbox WHERE position($1::bytea IN value) > 0",
            command.order_id.encode(),
        )
        return pending == 0

    await eventually(consumed, timeout=15, what="billing to consume the commands")
    await eventually(published, timeout=10, what="billing's outbox to be published")
    [first, *_] = await watcher.wait_for(about(billing, command.order_id), timeout=10)
    await caught_up(watcher, billing.events.name, first.partition)
    return watcher.matching(about(billing, command.order_id))


async def order_row(
    billing: Billing, admin_db: asyncpg.Connection, order_id: str
) -> asyncpg.Record:
    rows = await admin_db.fetch(
        f"SELECT * FROM {billing.schema}.orders WHERE order_id = $1", order_id
    )
    assert len(rows) == 1
    return rows[0]


async def payment_rows(
    billing: Billing, admin_db: asyncpg.Connection, order_id: str
) -> list[asyncpg.Record]:
    return await admin_db.fetch(
        f"SELECT * FROM {billing.schema}.payments WHERE order_id = $1", order_id
    )


async def test_an_order_asked_for_twice_is_placed_and_charged_once(
    billing: Billing,
    upstream: UpstreamClient,
    watcher: TopicWatcher,
    admin_db: asyncpg.Connection,
) -> None:
    command = place_order()
    # The same order asked twice (a retried request): two different events.
    asked = [event(command, subject=command.csn), event(command, subject=command.csn)]
    assert asked[0].id != asked[1].id

    await upstream.send_many(billing.commands, asked)
    seen = await settled(billing, admin_db, watcher, command, [e.id for e in asked])

    assert [s.type for s in seen] == ["order.placed", "payment.succeeded"]
    placed, succeeded = seen
    assert placed.data["total"] == "840.00"
    assert placed.data["request_id"] == command.request_id
    assert placed.data["lines"][0]["amount"] == "840.00"
    assert placed.event["subject"] == command.csn
    assert placed.key == command.csn.encode()
    assert succeeded.data["amount"] == "840.00"
    assert succeeded.data["currency"] == "USD"
    assert succeeded.key == command.csn.encode()
    order = await order_row(billing, admin_db, command.order_id)
    assert order["total"] == Decimal("840.00")
    payments = await payment_rows(billing, admin_db, command.order_id)
    assert [p["outcome"] for p in payments] == ["succeeded"]
    assert payments[0]["payment_reference"] == succeeded.data["payment_reference"]
    assert watcher.matching(lambda s: s.topic == billing.commands.dlq) == []


async def test_an_invalid_payment_method_fails_the_payment_with_a_reason(
    billing: Billing,
    upstream: UpstreamClient,
    watcher: TopicWatcher,
    admin_db: asyncpg.Connection,
) -> None:
    command = place_order("card", valid=False)
    asked = event(command, subject=command.csn)

    await upstream.send(billing.commands, asked)
    seen = await settled(billing, admin_db, watcher, command, [asked.id])

    assert [s.type for s in seen] == ["order.placed", "payment.failed"]
    failed = seen[1].data
    assert "declined" in failed["reason"]
    assert failed["next_retry_on"] is None
    assert (await order_row(billing, admin_db, command.order_id))["status"] == "failed"
    [payment] = await payment_rows(billing, admin_db, command.order_id)
    assert (payment["outcome"], payment["reason"]) == ("failed", failed["reason"])
    assert payment["payment_reference"] is None


async def test_auto_4_a_bank_transfer_waits_for_a_manual_payment(
    billing: Billing,
    upstream: UpstreamClient,
    watcher: TopicWatcher,
    admin_db: asyncpg.Connection,
) -> None:
    command = place_order("bank_transfer")
    asked = event(command, subject=command.csn)

    await upstream.send(billing.commands, asked)
    seen = await settled(billing, admin_db, watcher, command, [asked.id])

    assert [s.type for s in seen] == ["order.placed", "payment.awaiting_manual"]
    awaiting = seen[1].data
    assert awaiting["amount"] == "840.00"
    assert awaiting["currency"] == "USD"
    assert awaiting["payment_reference"].startswith("SIM-")
    assert date.fromisoformat(awaiting["pay_by"]) == date(2026, 3, 16)  # NOW + 14 days
    assert (await order_row(billing, admin_db, command.order_id))["status"] == "awaiting_manual"
    [payment] = await payment_rows(billing, admin_db, command.order_id)
    assert payment["outcome"] == "awaiting_manual"
    assert payment["payment_reference"] == awaiting["payment_reference"]


async def test_a_malformed_command_is_dead_lettered_and_orders_go_on(
    billing: Billing,
    upstream: UpstreamClient,
    watcher: TopicWatcher,
    admin_db: asyncpg.Connection,
) -> None:
    command = place_order()
    broken = event(command, subject=command.csn).model_dump(mode="json")
    broken["data"]["total"] = 840.0  # money as a float: refused by the contract
    good = event(command, subject=command.csn)

    await upstream.send_raw(billing.commands, json.dumps(broken).encode(), key=command.csn.encode())
    await upstream.send(billing.commands, good)
    seen = await settled(billing, admin_db, watcher, command, [good.id])

    assert [s.type for s in seen] == ["order.placed", "payment.succeeded"]
    [letter] = await watcher.wait_for(lambda s: s.topic == billing.commands.dlq, timeout=10)
    assert "data.total" in letter.headers["x-dlq-error"]
    assert letter.event["id"] == broken["id"]
