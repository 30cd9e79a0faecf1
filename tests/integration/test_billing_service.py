"""The billing service in-process (its `create_app`) on the real broker and database: an order is
placed and charged once, however many times it is asked for; each payment outcome is announced.
The charge is made outside the placing transaction and survives what fails around it (issue 15):
the provider's own ledger (`simulated_provider_charges`) is what counts as money taken.

The service runs on topics and a schema of its own: as a replica on `billing.commands` it would
share the consumer group of any billing process running beside the tests (`make run`, the
end-to-end stack) and handle their orders with this test's clock, and they ours. Its payment and
clock topics too: the test principal it runs as may not join billing's own groups (issue 16).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client import REGISTRY

from deploy.local.client import Seen, TopicWatcher, UpstreamClient
from deploy.local.samples import event, unique_csn
from services.billing import charges, orders
from services.billing.app import SERVICE, create_app
from services.billing.provider import ChargeRequest, ChargeResult
from services.billing.settings import BillingSettings
from services.billing.simulator import SimulatedPaymentProvider
from shared.clock import FixedClock
from shared.contracts import billing_commands, clock_commands, payment_events
from shared.contracts.billing_commands import PlaceOrder
from shared.contracts.billing_events import OrderLine
from shared.contracts.subscription_events import PaymentMethod
from shared.contracts.topics import (
    BILLING_COMMANDS,
    BILLING_EVENTS,
    CLOCK_COMMANDS,
    PAYMENT_EVENTS,
    Topic,
)
from shared.db.settings import DatabaseSettings
from shared.messaging.settings import MessagingSettings
from tests.integration.helpers import (
    caught_up,
    committed_to_the_end,
    eventually,
    http_ready,
    kafka_admin_client,
    pools_on,
    records_on,
    running,
    scratch_schema,
    topic_pairs,
)
from tests.support.infra import admin_connection
from tests.support.smtp import free_port

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
MANUAL_PAYMENT_DAYS = 14


class SpyProvider:
    """The simulator, watched: what the charger charged and looked up, and a charge held back
    until the test lets it go."""

    def __init__(self, inner: SimulatedPaymentProvider) -> None:
        self.inner = inner
        self.charged: Counter[str] = Counter()
        self.looked_up: Counter[str] = Counter()
        self.held: dict[str, asyncio.Event] = {}
        self.waiting: set[str] = set()

    def hold(self, key: str) -> asyncio.Event:
        return self.held.setdefault(key, asyncio.Event())

    async def charge(self, **asked: object) -> ChargeResult:
        [result] = await self.charge_many([ChargeRequest(**asked)])  # type: ignore[arg-type]
        return result

    async def lookup(self, idempotency_key: str) -> ChargeResult | None:
        return (await self.lookup_many([idempotency_key])).get(idempotency_key)

    async def charge_many(self, requests: Sequence[ChargeRequest]) -> list[ChargeResult]:
        for request in requests:
            if request.idempotency_key in self.held:
                self.waiting.add(request.idempotency_key)
                await self.held[request.idempotency_key].wait()
        self.charged.update(r.idempotency_key for r in requests)
        return await self.inner.charge_many(requests)

    async def lookup_many(self, keys: Sequence[str]) -> dict[str, ChargeResult]:
        self.looked_up.update(keys)
        return await self.inner.lookup_many(keys)


@dataclass(frozen=True)
class Billing:
    commands: Topic
    events: Topic
    database: DatabaseSettings
    provider: SpyProvider
    bootstrap: str
    admin: AIOKafkaAdminClient

    @property
    def schema(self) -> str:
        return self.database.schema_name

    async def dead_letters(self) -> int:
        """The records ever written to the commands' DLQ, as the broker counts them, once billing
        committed past every command sent so far: a letter goes out before the offset moves past
        its record, so a count that did not grow over a test proves it dead-lettered nothing (a
        watcher's empty list would also mean a letter not read yet). The DLQ is the module's:
        count before and after."""
        # One consumer group per service and topic (ServiceRuntime.consume).
        group_id = f"{SERVICE}.{self.commands.name}"
        await committed_to_the_end(self.bootstrap, self.admin, group_id, self.commands.name)
        return await records_on(self.bootstrap, self.commands.dlq)


@pytest.fixture(scope="module")
async def billing(kafka_bootstrap: str) -> AsyncIterator[Billing]:
    run = uuid.uuid4().hex[:12]
    commands = Topic(f"it.{run}.{BILLING_COMMANDS.name}", public=False)
    events = Topic(f"it.{run}.{BILLING_EVENTS.name}", public=False)
    payments = Topic(f"it.{run}.{PAYMENT_EVENTS.name}", public=False)
    clocks = Topic(f"it.{run}.{CLOCK_COMMANDS.name}", partitions=1, public=False)
    admin_db = await admin_connection()
    try:
        async with (
            kafka_admin_client(kafka_bootstrap) as admin,
            topic_pairs(admin, commands, events, payments, clocks),
            scratch_schema(admin_db, "billing") as database,
            pools_on(database) as provider_pools,
        ):
            port = free_port()
            settings = BillingSettings(
                messaging=MessagingSettings(
                    kafka_bootstrap=kafka_bootstrap, http_port=port, outbox_poll_seconds=0.2
                ),
                database=database,
                manual_payment_days=MANUAL_PAYMENT_DAYS,
                charge_poll_seconds=0.2,
            )
            provider = SpyProvider(SimulatedPaymentProvider(provider_pools, FixedClock(NOW)))
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(billing_commands, "TOPIC", commands)
                patch.setattr(payment_events, "TOPIC", payments)
                patch.setattr(clock_commands, "TOPIC", clocks)
                patch.setattr(orders, "BILLING_EVENTS", events)
                patch.setattr(charges, "BILLING_EVENTS", events)
                app = create_app(settings, clock=FixedClock(NOW), provider=provider)

                async def ready() -> bool:
                    return await http_ready(port)

                async with running(app, ready):
                    yield Billing(commands, events, database, provider, kafka_bootstrap, admin)
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


def place_order(
    method: str = "card", *, valid: bool = True, seats: int = 2, unit_price: str = "420.00"
) -> PlaceOrder:
    """An order whose money holds together: its total is the sum of its one line."""
    csn = unique_csn()
    amount = Decimal(unit_price) * seats
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
                seats=seats,
                unit_price=Decimal(unit_price),
                amount=amount,
            )
        ],
        total=amount,
    )


Ask = Callable[[PlaceOrder], Awaitable[list[Seen]]]


@pytest.fixture
def ask(
    billing: Billing,
    upstream: UpstreamClient,
    watcher: TopicWatcher,
    admin_db: asyncpg.Connection,
) -> Ask:
    """Ask billing for the order once: its events about the order, once it settled."""

    async def ask_once(command: PlaceOrder) -> list[Seen]:
        asked = event(command, subject=command.csn)
        await upstream.send(billing.commands, asked)
        return await settled(billing, admin_db, watcher, command, [asked.id])

    return ask_once


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

    async def charged() -> bool:
        status = await admin_db.fetchval(
            f"SELECT charge_status FROM {billing.schema}.orders WHERE order_id = $1",
            command.order_id,
        )
        return status == "recorded"

    await eventually(consumed, timeout=15, what="billing to consume the commands")
    await eventually(charged, timeout=15, what="billing to record the charge's outcome")
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
    letters_before = await billing.dead_letters()
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
    assert await billing.dead_letters() == letters_before


async def test_an_invalid_payment_method_fails_the_payment_with_a_reason(
    billing: Billing,
    ask: Ask,
    admin_db: asyncpg.Connection,
) -> None:
    command = place_order("card", valid=False)
    seen = await ask(command)

    assert [s.type for s in seen] == ["order.placed", "payment.failed"]
    failed = seen[1].data
    assert "declined" in failed["reason"]
    assert failed["next_retry_on"] is None
    # Issue 17 item 3: what its email needs, from billing's own order row.
    assert failed["csn"] == command.csn
    assert failed["subscription_ids"] == [command.lines[0].subscription_id]
    assert (failed["amount"], failed["currency"]) == ("840.00", "USD")
    assert (await order_row(billing, admin_db, command.order_id))["status"] == "failed"
    [payment] = await payment_rows(billing, admin_db, command.order_id)
    assert (payment["outcome"], payment["reason"]) == ("failed", failed["reason"])
    assert payment["payment_reference"] is None


async def test_auto_4_a_bank_transfer_waits_for_a_manual_payment(
    billing: Billing,
    ask: Ask,
    admin_db: asyncpg.Connection,
) -> None:
    command = place_order("bank_transfer")
    seen = await ask(command)

    assert [s.type for s in seen] == ["order.placed", "payment.awaiting_manual"]
    awaiting = seen[1].data
    assert awaiting["amount"] == "840.00"
    assert awaiting["currency"] == "USD"
    assert awaiting["payment_reference"].startswith("SIM-")
    assert date.fromisoformat(awaiting["pay_by"]) == date(2026, 3, 16)  # NOW + 14 days
    assert awaiting["csn"] == command.csn  # issue 17 item 3: what its email needs
    assert awaiting["subscription_ids"] == [command.lines[0].subscription_id]
    assert (await order_row(billing, admin_db, command.order_id))["status"] == "awaiting_manual"
    [payment] = await payment_rows(billing, admin_db, command.order_id)
    assert payment["outcome"] == "awaiting_manual"
    assert payment["payment_reference"] == awaiting["payment_reference"]


async def test_issue_14_pay_by_counts_from_the_csns_today_in_its_time_zone(
    billing: Billing,
    ask: Ask,
    admin_db: asyncpg.Connection,
) -> None:
    """DOMAIN.md: a customer's today is the date in its CSN's time zone. At NOW (09:30 UTC on
    2 March) it is still 1 March, 22:30, in Pago Pago (UTC-11): the bank transfer is due 14
    days from 1 March, not from the UTC date."""
    command = place_order("bank_transfer").model_copy(update={"timezone": "Pacific/Pago_Pago"})
    seen = await ask(command)

    assert [s.type for s in seen] == ["order.placed", "payment.awaiting_manual"]
    assert date.fromisoformat(seen[1].data["pay_by"]) == date(2026, 3, 15)


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
    letters_before = await billing.dead_letters()

    await upstream.send_raw(billing.commands, json.dumps(broken).encode(), key=command.csn.encode())
    await upstream.send(billing.commands, good)
    seen = await settled(billing, admin_db, watcher, command, [good.id])

    assert [s.type for s in seen] == ["order.placed", "payment.succeeded"]
    [letter] = await watcher.wait_for(lambda s: s.topic == billing.commands.dlq, timeout=10)
    assert "data.total" in letter.headers["x-dlq-error"]
    assert letter.event["id"] == broken["id"]
    assert await billing.dead_letters() == letters_before + 1  # that one, once


def refused_count(reason: str) -> float:
    labels = {"service": "billing", "reason": reason}
    return REGISTRY.get_sample_value("renewals_billing_orders_refused_total", labels) or 0.0


def with_money(command: PlaceOrder, *, total: str | None = None, **line: Any) -> PlaceOrder:
    """The order with another total, or its line changed, and nothing else recomputed."""
    [first] = command.lines
    return command.model_copy(
        update={
            "total": Decimal(total) if total is not None else command.total,
            "lines": [first.model_copy(update=line)],
        }
    )


async def test_issue_16_an_order_whose_money_does_not_add_up_is_refused_and_never_charged(
    billing: Billing,
    upstream: UpstreamClient,
    watcher: TopicWatcher,
    admin_db: asyncpg.Connection,
) -> None:
    """No client-set money (OWASP API3): billing recomputes the total from the lines. A total
    the lines don't make, a line with no seats or no price, or an amount finer than the
    currency's minor unit is refused: no `order.placed`, no charge asked of the provider, one
    `payment.failed` naming every reason (no retry) however many times it is asked, and a
    counter per reason. A sound order of the same batch is placed and charged."""
    cases = {
        "TOTAL_MISMATCH": with_money(place_order(), total="1.00"),
        "INVALID_QUANTITY": with_money(place_order(), total="0", seats=0, amount=Decimal(0)),
        "INVALID_PRICE": with_money(
            place_order(), total="0", unit_price=Decimal(0), amount=Decimal(0)
        ),
        "AMOUNT_PRECISION": with_money(
            place_order(),
            total="840.005",
            unit_price=Decimal("420.0025"),
            amount=Decimal("840.005"),
        ),
    }
    sound = place_order()
    before = {reason: refused_count(reason) for reason in cases}
    letters_before = await billing.dead_letters()
    asked = [event(c, subject=c.csn) for c in cases.values()]
    again = [event(c, subject=c.csn) for c in cases.values()]  # a retried request: new event ids

    await upstream.send_many(billing.commands, [*asked, event(sound, subject=sound.csn), *again])

    assert [s.type for s in await settled(billing, admin_db, watcher, sound, [])] == [
        "order.placed",
        "payment.succeeded",
    ]
    for (reason, command), first, second in zip(cases.items(), asked, again, strict=True):
        seen = await settled(billing, admin_db, watcher, command, [first.id, second.id])
        assert [s.type for s in seen] == ["payment.failed"], reason
        failed = seen[0].data
        assert failed["refusals"] == [reason]
        assert failed["reason"] == f"order refused: {reason}"
        assert failed["next_retry_on"] is None
        assert seen[0].key == command.csn.encode()
        order = await order_row(billing, admin_db, command.order_id)
        assert (order["status"], order["charge_status"], order["refusals"]) == (
            "refused",
            "recorded",
            [reason],
        )
        assert order["charge_attempts"] == 0
        assert await payment_rows(billing, admin_db, command.order_id) == []
        assert await ledger_rows(billing, admin_db, command.order_id) == []
        assert billing.provider.charged[command.order_id] == 0
        assert refused_count(reason) == before[reason] + 1
    assert await billing.dead_letters() == letters_before


async def ledger_rows(
    billing: Billing, admin_db: asyncpg.Connection, order_id: str
) -> list[asyncpg.Record]:
    """The provider's record of the money taken for the order (one row per charge made)."""
    return await admin_db.fetch(
        f"SELECT * FROM {billing.schema}.simulated_provider_charges WHERE idempotency_key = $1",
        order_id,
    )


async def test_a_declined_charge_repeats_when_renewal_tries_again(
    billing: Billing,
    ask: Ask,
    admin_db: asyncpg.Connection,
) -> None:
    """AUTO-1: `next_retry_on` of the order comes back in its `payment.failed`."""
    command = place_order(seats=1, unit_price="840.13").model_copy(
        update={"next_retry_on": date(2026, 3, 3)}
    )
    seen = await ask(command)

    assert [s.type for s in seen] == ["order.placed", "payment.failed"]
    assert seen[1].data["next_retry_on"] == "2026-03-03"
    assert seen[1].data["reason"] == "card declined: insufficient funds"
    [charge] = await ledger_rows(billing, admin_db, command.order_id)
    assert (charge["outcome"], charge["amount"]) == ("failed", Decimal("840.13"))


async def test_issue_15_the_order_is_placed_and_announced_before_the_provider_is_called(
    billing: Billing,
    upstream: UpstreamClient,
    watcher: TopicWatcher,
    admin_db: asyncpg.Connection,
) -> None:
    """The placing transaction calls no provider: the order and its `order.placed` are committed,
    and the attempt recorded, while the charge is still held at the provider."""
    command = place_order()
    release = billing.provider.hold(command.order_id)
    asked = event(command, subject=command.csn)

    await upstream.send(billing.commands, asked)
    await eventually(
        lambda: command.order_id in billing.provider.waiting, what="the charge to be asked for"
    )
    [placed] = await watcher.wait_for(about(billing, command.order_id), timeout=10)
    assert placed.type == "order.placed"
    order = await order_row(billing, admin_db, command.order_id)
    assert (order["status"], order["charge_status"], order["charge_attempts"]) == (
        "placed",
        "charging",
        1,
    )
    assert order["charge_attempt_at"] == NOW
    assert await ledger_rows(billing, admin_db, command.order_id) == []

    release.set()
    seen = await settled(billing, admin_db, watcher, command, [asked.id])

    assert [s.type for s in seen] == ["order.placed", "payment.succeeded"]
    [charge] = await ledger_rows(billing, admin_db, command.order_id)
    assert (charge["outcome"], charge["amount"], charge["currency"]) == (
        "succeeded",
        Decimal("840.00"),
        "USD",
    )
    assert charge["payment_reference"] == seen[1].data["payment_reference"]


async def abandoned_attempt(
    billing: Billing, admin_db: asyncpg.Connection, command: PlaceOrder
) -> None:
    """An order whose charge a crashed process left `charging` an hour ago."""
    await admin_db.execute(
        f"""INSERT INTO {billing.schema}.orders (order_id, csn, currency, purchase_method,
                payment_method, lines, total, status, charge_status, charge_attempts,
                charge_attempt_at, created_at)
            VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb, $7, 'placed', 'charging', 1, $8, $8)""",
        command.order_id,
        command.csn,
        command.currency,
        command.purchase_method,
        command.payment_method.model_dump_json(),
        json.dumps([line.model_dump(mode="json") for line in command.lines]),
        command.total,
        NOW - timedelta(hours=1),
    )


async def test_issue_15_an_attempt_a_crash_left_after_the_charge_is_recorded_not_charged_again(
    billing: Billing, watcher: TopicWatcher, admin_db: asyncpg.Connection
) -> None:
    command = place_order()
    # The provider took the money; the process died before recording it.
    taken = await billing.provider.inner.charge(
        idempotency_key=command.order_id,
        amount=command.total,
        currency=command.currency,
        method=command.payment_method,
    )
    await abandoned_attempt(billing, admin_db, command)

    seen = await settled(billing, admin_db, watcher, command, [])

    assert [s.type for s in seen] == ["payment.succeeded"]
    assert seen[0].data["payment_reference"] == taken.payment_reference
    assert billing.provider.looked_up[command.order_id] == 1
    assert billing.provider.charged[command.order_id] == 0
    assert len(await ledger_rows(billing, admin_db, command.order_id)) == 1
    order = await order_row(billing, admin_db, command.order_id)
    assert (order["status"], order["charge_attempts"]) == ("succeeded", 2)
    [payment] = await payment_rows(billing, admin_db, command.order_id)
    assert payment["payment_reference"] == taken.payment_reference


async def test_issue_15_an_attempt_a_crash_left_before_the_charge_is_charged_once(
    billing: Billing, watcher: TopicWatcher, admin_db: asyncpg.Connection
) -> None:
    command = place_order()
    await abandoned_attempt(billing, admin_db, command)  # the provider never heard of it

    seen = await settled(billing, admin_db, watcher, command, [])

    assert [s.type for s in seen] == ["payment.succeeded"]
    assert billing.provider.looked_up[command.order_id] == 1
    assert billing.provider.charged[command.order_id] == 1
    [charge] = await ledger_rows(billing, admin_db, command.order_id)
    assert charge["outcome"] == "succeeded"
    assert [p["outcome"] for p in await payment_rows(billing, admin_db, command.order_id)] == [
        "succeeded"
    ]


def deadlocks_seen() -> float:
    labels = {"service": "billing", "loop": "charger", "error_type": "DeadlockDetectedError"}
    return REGISTRY.get_sample_value("renewals_loop_errors_total", labels) or 0.0


async def test_issue_15_a_deadlock_recording_the_outcome_charges_once_and_records_next_step(
    billing: Billing,
    ask: Ask,
    admin_db: asyncpg.Connection,
) -> None:
    """A transient database error after the provider call is the infrastructure's, not the
    order's: the loop backs off and the next step records the outcome it kept, with no second
    charge and no reconciliation (the lease never runs out on this test's fixed clock)."""
    command = place_order()
    schema = billing.schema
    # PostgreSQL itself raises a deadlock the first time the order's outcome is recorded.
    await admin_db.execute(
        f"""CREATE SEQUENCE {schema}.it_deadlocks;
            CREATE FUNCTION {schema}.it_deadlock_once() RETURNS trigger
            LANGUAGE plpgsql SECURITY DEFINER AS $$
            BEGIN
                IF NEW.order_id = '{command.order_id}' AND NEW.charge_status = 'recorded'
                   AND nextval('{schema}.it_deadlocks') = 1 THEN
                    RAISE EXCEPTION 'deadlock (injected)' USING ERRCODE = 'deadlock_detected';
                END IF;
                RETURN NEW;
            END $$;
            CREATE TRIGGER it_deadlock_once BEFORE UPDATE ON {schema}.orders
                FOR EACH ROW EXECUTE FUNCTION {schema}.it_deadlock_once();"""
    )
    before = deadlocks_seen()
    letters_before = await billing.dead_letters()
    try:
        seen = await ask(command)
    finally:
        await admin_db.execute(
            f"DROP TRIGGER it_deadlock_once ON {schema}.orders;"
            f" DROP FUNCTION {schema}.it_deadlock_once(); DROP SEQUENCE {schema}.it_deadlocks"
        )

    assert deadlocks_seen() == before + 1
    assert [s.type for s in seen] == ["order.placed", "payment.succeeded"]
    assert billing.provider.charged[command.order_id] == 1
    assert billing.provider.looked_up[command.order_id] == 0
    assert len(await ledger_rows(billing, admin_db, command.order_id)) == 1
    order = await order_row(billing, admin_db, command.order_id)
    assert (order["status"], order["charge_attempts"]) == ("succeeded", 1)
    assert [p["outcome"] for p in await payment_rows(billing, admin_db, command.order_id)] == [
        "succeeded"
    ]
    assert await billing.dead_letters() == letters_before
