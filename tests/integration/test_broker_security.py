"""The broker as a hostile client meets it (issue 16, items 1 and 5; CONTRACT.md "Who may send
what"): without credentials or with a wrong password nothing connects; a principal writing a
topic it may not, or joining another service's consumer group, is refused by the broker; the
right principal still gets through. The ACLs are shared/messaging/principals.py.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    TopicAuthorizationFailedError,
)

from deploy.local import samples
from deploy.local.client import TopicWatcher, UpstreamClient
from shared.contracts import topics
from shared.contracts.clock_commands import SetTestClock
from shared.contracts.payment_events import PaymentReceived
from shared.messaging.credentials import client_options
from shared.messaging.principals import PRINCIPALS, Kind, writers_of

TIMEOUT = 20.0


@asynccontextmanager
async def producer(bootstrap: str, **options: Any) -> AsyncIterator[AIOKafkaProducer]:
    client = AIOKafkaProducer(
        **(options or {"bootstrap_servers": bootstrap}),
        enable_idempotence=True,
        acks="all",
        request_timeout_ms=10_000,
    )
    try:
        await asyncio.wait_for(client.start(), TIMEOUT)
        yield client
    finally:
        await client.stop()


async def test_a_client_without_credentials_is_refused(kafka_bootstrap: str) -> None:
    """A plain client (no SASL) never gets a metadata answer: the listener speaks SASL only."""
    with pytest.raises(KafkaConnectionError):
        async with producer(kafka_bootstrap, bootstrap_servers=kafka_bootstrap):
            pass


async def test_a_wrong_password_is_refused(kafka_bootstrap: str) -> None:
    options = client_options(kafka_bootstrap, principal="portal")
    with pytest.raises(KafkaConnectionError):
        async with producer(kafka_bootstrap, **{**options, "sasl_plain_password": "guessed"}):
            pass


async def test_an_unknown_user_is_refused(kafka_bootstrap: str) -> None:
    options = client_options(kafka_bootstrap, principal="portal")
    with pytest.raises(KafkaConnectionError):
        async with producer(kafka_bootstrap, **{**options, "sasl_plain_username": "mallory"}):
            pass


@pytest.mark.parametrize(
    ("principal", "topic"),
    [
        # Nobody outside the product writes billing's topics (a forged payment.succeeded, or an
        # order.requested with a total of its own).
        ("portal", topics.BILLING_EVENTS.name),
        ("portal", topics.BILLING_COMMANDS.name),
        ("partner-P-1001", topics.BILLING_COMMANDS.name),
        ("operator", topics.BILLING_EVENTS.name),
        # Only the payment provider writes payment.events (a forged payment.received).
        ("portal", topics.PAYMENT_EVENTS.name),
        ("sales", topics.PAYMENT_EVENTS.name),
        # Only the test principal moves test clocks (item 5).
        ("portal", topics.CLOCK_COMMANDS.name),
        ("operator", topics.CLOCK_COMMANDS.name),
        ("subscriptions", topics.CLOCK_COMMANDS.name),
        # A service writes only what it produces: the quote service does not answer for renewal.
        ("quote", topics.RENEWAL_EVENTS.name),
        ("catalog", topics.SUBSCRIPTION_EVENTS.name),
    ],
)
async def test_a_principal_writing_a_topic_it_may_not_is_refused(
    kafka_bootstrap: str, principal: str, topic: str
) -> None:
    options = client_options(kafka_bootstrap, principal=principal)
    async with producer(kafka_bootstrap, **options) as client:
        with pytest.raises(TopicAuthorizationFailedError):
            await asyncio.wait_for(client.send_and_wait(topic, b"forged", key=b"k"), TIMEOUT)
    assert principal not in writers_of(topic)


# Who places an order and who settles a payment (issue 16 item 4; CONTRACT.md "Who may send
# what"): renewal asks billing to charge (quote orders go through renewal's reservation),
# billing announces what the money did, the payment provider says what arrived.
MONEY_WRITERS = {
    topics.BILLING_COMMANDS.name: "renewal",
    topics.BILLING_EVENTS.name: "billing",
    topics.PAYMENT_EVENTS.name: "payments",
}
NOT_SUPER = [p.name for p in PRINCIPALS if p.kind is not Kind.SUPER]


@pytest.mark.parametrize("principal", NOT_SUPER)
async def test_issue_16_nothing_outside_the_product_places_an_order_or_settles_a_payment(
    kafka_bootstrap: str, principal: str
) -> None:
    """Every principal but each money topic's one writer is refused by the broker on it: the
    portal, partner, sales and subscription systems (and the catalog, the operator, the tests,
    the other services) can't ask for a charge with a total of their own (`billing.commands`),
    announce one as paid (`billing.events`) or say money arrived (`payment.events`)."""
    forbidden = [topic for topic, owner in MONEY_WRITERS.items() if owner != principal]
    async with producer(
        kafka_bootstrap, **client_options(kafka_bootstrap, principal=principal)
    ) as client:
        for topic in forbidden:
            with pytest.raises(TopicAuthorizationFailedError):
                await asyncio.wait_for(client.send_and_wait(topic, b"forged", key=b"k"), TIMEOUT)
    for topic, owner in MONEY_WRITERS.items():
        assert writers_of(topic) == [owner]


async def consume_once(bootstrap: str, principal: str, topic: str, group: str) -> None:
    consumer = AIOKafkaConsumer(
        topic,
        **client_options(bootstrap, principal=principal),
        group_id=group,
        enable_auto_commit=False,
    )
    try:
        await asyncio.wait_for(consumer.start(), TIMEOUT)
        await asyncio.wait_for(consumer.getmany(timeout_ms=500), TIMEOUT)
    finally:
        await consumer.stop()


async def test_a_service_joining_another_services_consumer_group_is_refused(
    kafka_bootstrap: str,
) -> None:
    """Billing may read clock.commands, but not as renewal's group: it would take renewal's
    partitions and commit renewal's offsets."""
    with pytest.raises(GroupAuthorizationFailedError):
        await consume_once(
            kafka_bootstrap, "billing", topics.CLOCK_COMMANDS.name, "renewal.clock.commands"
        )


async def test_a_service_reading_a_topic_it_does_not_consume_is_refused(
    kafka_bootstrap: str,
) -> None:
    with pytest.raises(TopicAuthorizationFailedError):
        await consume_once(
            kafka_bootstrap,
            "notification",
            topics.BILLING_COMMANDS.name,
            f"notification.it-{uuid.uuid4().hex[:6]}",
        )


async def test_issue_19_the_quote_service_reading_billing_events_is_refused(
    kafka_bootstrap: str,
) -> None:
    """Renewal answers the payment of a quote's order (`quote.order_answers`): quote has no
    read of `billing.events` left, whose payments are nearly all of renewal's orders."""
    with pytest.raises(TopicAuthorizationFailedError):
        await consume_once(
            kafka_bootstrap,
            "quote",
            topics.BILLING_EVENTS.name,
            f"quote.it-{uuid.uuid4().hex[:6]}",
        )


async def test_an_upstream_system_reading_the_product_s_internal_topic_is_refused(
    kafka_bootstrap: str,
) -> None:
    with pytest.raises(TopicAuthorizationFailedError):
        await consume_once(
            kafka_bootstrap,
            "portal",
            topics.BILLING_COMMANDS.name,
            f"portal.it-{uuid.uuid4().hex[:6]}",
        )


async def test_the_right_principals_still_get_through(kafka_bootstrap: str) -> None:
    """The same kinds of message, from their owners, land on the topics (read back)."""
    csn = samples.unique_csn("SEC")
    payment = samples.event(
        PaymentReceived(
            payment_reference=f"PR-{uuid.uuid4().hex[:10].upper()}",
            order_id=f"ORD-{uuid.uuid4()}",
            amount="10.00",
            currency="USD",
        ),
        csn,
    )
    clock = samples.event(SetTestClock(csn=csn, today=date(2031, 1, 1)), csn)
    request = samples.renewal_request(csn, [f"SUB-{csn}"])
    watched = [topics.PAYMENT_EVENTS, topics.CLOCK_COMMANDS, topics.RENEWAL_COMMANDS]
    async with TopicWatcher(kafka_bootstrap, watched) as watcher:
        async with UpstreamClient(kafka_bootstrap, principal="payments") as payments:
            await payments.send(topics.PAYMENT_EVENTS, payment)
        async with UpstreamClient(kafka_bootstrap, principal="test") as tests:
            await tests.send(topics.CLOCK_COMMANDS, clock)
        async with UpstreamClient(kafka_bootstrap, principal="portal") as portal:
            await portal.send(topics.RENEWAL_COMMANDS, samples.event(request, csn))
        seen = await watcher.wait_for(
            lambda s: s.event.get("subject") == csn, count=3, timeout=TIMEOUT
        )
    assert sorted(s.topic for s in seen) == sorted(t.name for t in watched)
    assert writers_of(topics.PAYMENT_EVENTS.name) == ["payments"]
    assert writers_of(topics.CLOCK_COMMANDS.name) == ["test"]


async def test_the_product_s_own_topics_are_written_by_services_only() -> None:
    """What a consumer may conclude from the topic alone (design for item 2)."""
    assert writers_of(topics.BILLING_EVENTS.name) == ["billing"]
    # Quote orders go through renewal, which reserves the terms first (issue 14).
    assert writers_of(topics.BILLING_COMMANDS.name) == ["renewal"]
