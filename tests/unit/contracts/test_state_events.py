"""`subscription.state` (issue 14 item 2, CONTRACT.md): exactly the contract's fields, bounded
like every other payload, on a compacted topic only renewal writes."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import pytest

from deploy.local.samples import subscription_state
from shared.contracts import REGISTRIES
from shared.contracts.envelope import InvalidEventError, encode, new_event
from shared.contracts.topics import SUBSCRIPTION_STATE
from shared.messaging.principals import principal, writers_of

STATE = subscription_state("SUB-1", "5100000001", renewal_date=date(2026, 4, 1), version=7)


def parse(**changes: Any) -> Any:
    document = json.loads(
        encode(new_event(STATE, subject="5100000001", source="/t", time=datetime.now(UTC)))
    )
    document["data"].update(changes)
    return REGISTRIES[SUBSCRIPTION_STATE.name].parse(json.dumps(document).encode())


def test_the_payload_is_exactly_the_contract_s_fields() -> None:
    assert set(STATE.model_dump()) == {
        "subscription_id",
        "csn",
        "status",
        "renewal_date",
        "grace_ends",
        "term",
        "seats",
        "next_term",
        "next_seats",
        "auto_renew",
        "payment_method",
        "open_quote",
        "pending_order",
        "version",
    }
    assert parse().data == STATE


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("status", "window_open"),  # trial | active | lapsed | expired only
        ("version", 0),  # grows from 1
        ("seats", 0),
        ("next_seats", 100_001),
        ("open_quote", "Q" * 65),
        ("product_code", "ACDLT"),  # not a field of the contract: no partial copies invented
    ],
)
def test_outside_the_contract_is_malformed(field: str, value: Any) -> None:
    with pytest.raises(InvalidEventError):
        parse(**{field: value})


def test_a_compacted_topic_renewal_alone_writes_and_its_followers_read() -> None:
    assert SUBSCRIPTION_STATE.config == {"cleanup.policy": "compact"}
    assert writers_of(SUBSCRIPTION_STATE.name) == ["renewal"]
    for reader in ("quote", "notification", "portal"):
        assert SUBSCRIPTION_STATE.name in principal(reader).reads
