"""The ACL table (shared/messaging/principals.py) against what the services really do, as the
AsyncAPI document generated from their apps says (`make docs-check` keeps that current), and
against CONTRACT.md "Who may send what" (issue 16)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.contracts import topics
from shared.contracts.topics import ALL_TOPICS
from shared.messaging.principals import (
    PRINCIPALS,
    SERVICE_CONSUMES,
    SERVICE_PRODUCES,
    Kind,
    principal,
    table,
    upstream_writer_of,
    writers_of,
)

ASYNCAPI = Path(__file__).resolve().parents[3] / "docs" / "asyncapi.json"


def declared() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """Per service, the topics its app receives from and sends to."""
    operations = json.loads(ASYNCAPI.read_text())["operations"]
    receives: dict[str, set[str]] = {}
    sends: dict[str, set[str]] = {}
    for name, operation in operations.items():
        service, topic = name.split(":")[:2]
        (receives if operation["action"] == "receive" else sends).setdefault(service, set()).add(
            topic
        )
    return receives, sends


def test_each_service_consumes_and_produces_what_the_table_says() -> None:
    receives, sends = declared()
    assert receives == {s: {t.name for t in ts} for s, ts in SERVICE_CONSUMES.items()}
    assert sends == {s: {t.name for t in ts} for s, ts in SERVICE_PRODUCES.items()}


@pytest.mark.parametrize("service", sorted(SERVICE_CONSUMES))
def test_a_service_may_dead_letter_what_it_consumes_and_join_only_its_own_groups(
    service: str,
) -> None:
    me = principal(service)
    for topic in SERVICE_CONSUMES[service]:
        assert topic.name in me.reads
        assert topic.dlq in me.writes
    assert all(
        prefix.startswith(f"{service}.") or prefix == "bulk_worker." for prefix in me.group_prefixes
    )


def test_who_may_send_what() -> None:
    """CONTRACT.md: nobody outside the product writes billing's topics, only the payment
    provider writes payment.events, only the test principal writes clock.commands."""
    assert writers_of(topics.BILLING_EVENTS.name) == ["billing"]
    # Quote orders go through renewal, which reserves the terms first (issue 14).
    assert writers_of(topics.BILLING_COMMANDS.name) == ["renewal"]
    assert writers_of(topics.QUOTE_ORDERS.name) == ["quote"]
    assert writers_of(topics.QUOTE_ORDER_ANSWERS.name) == ["renewal"]
    assert writers_of(topics.PAYMENT_EVENTS.name) == ["payments"]
    assert writers_of(topics.CLOCK_COMMANDS.name) == ["test"]
    assert writers_of(topics.RENEWAL_EVENTS.name) == ["renewal"]
    assert writers_of(topics.SUBSCRIPTION_STATE.name) == ["renewal"]  # it owns the state


def test_every_topic_someone_reads_has_a_writer_and_upstream_topics_have_an_owner() -> None:
    for topic in ALL_TOPICS:
        assert writers_of(topic.name), topic.name
    assert upstream_writer_of(topics.PAYMENT_EVENTS.name) == "payments"
    assert upstream_writer_of(topics.RENEWAL_COMMANDS.name) == "portal"
    assert upstream_writer_of(topics.CLOCK_COMMANDS.name) == "test"
    assert upstream_writer_of(topics.BILLING_EVENTS.name) is None


def test_only_the_broker_and_the_bootstrap_are_super_users() -> None:
    assert [p.name for p in PRINCIPALS if p.kind is Kind.SUPER] == ["broker", "admin"]


def test_the_readme_shows_the_acl_table_as_it_is() -> None:
    """The README's Security section is a copy of `table()`: regenerate it with
    `uv run python -m shared.messaging.principals` when the table changes."""
    readme = (ASYNCAPI.parents[1] / "README.md").read_text()
    assert table() in readme
