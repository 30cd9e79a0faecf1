"""A new event's id (a random UUID4, never the same twice, not even across a fork) and its
bytes (#19)."""

from __future__ import annotations

import os
import uuid
from datetime import date

from deploy.local import samples
from shared.contracts.envelope import CloudEvent, encode, envelope_of, new_event_id
from shared.contracts.state_events import SubscriptionState


def test_an_event_id_is_a_version_4_uuid_in_its_canonical_form() -> None:
    for _ in range(1000):
        event_id = new_event_id()
        parsed = uuid.UUID(event_id)
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
        assert str(parsed) == event_id


def test_event_ids_do_not_repeat_across_pools() -> None:
    drawn = [new_event_id() for _ in range(20_000)]  # several 256-id pools
    assert len(set(drawn)) == len(drawn)


def test_a_forked_child_draws_other_ids_than_its_parent() -> None:
    new_event_id()  # the parent holds a pool with ids left in it
    reading, writing = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        os.write(writing, new_event_id().encode())
        os._exit(0)
    os.close(writing)
    os.waitpid(child, 0)
    childs = os.read(reading, 64).decode()
    os.close(reading)
    assert uuid.UUID(childs).version == 4
    assert childs != new_event_id()  # without the reset, both take the pool's next 16 bytes


def test_each_models_envelope_is_made_once_and_is_pydantics_own() -> None:
    assert envelope_of(SubscriptionState) is envelope_of(SubscriptionState)
    assert envelope_of(SubscriptionState) is CloudEvent[SubscriptionState]


def test_an_event_is_encoded_as_pydantic_dumps_it() -> None:
    """`encode` takes the serializer's bytes directly (#19): the same bytes as the JSON dump."""
    event = samples.event(
        samples.subscription("5100000001", "S-1", renewal_date=date(2027, 1, 1)), "5100000001"
    )
    assert encode(event) == event.model_dump_json(exclude_none=False).encode()
