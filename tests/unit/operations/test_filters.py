"""The operator tools' pure parts: durations, dead-letter references, event filters."""

from __future__ import annotations

import json
from datetime import timedelta
from types import SimpleNamespace

import pytest

from services.operations.dlq import DeadLetter, DeadLetterFilter, parse_ref
from services.operations.kafka import Record
from services.operations.tail import EventFilter, decode, parse_since


def record(value: bytes | None, key: str | None = "CSN-1", **headers: str) -> Record:
    return Record("t.dlq", 0, 7, 0, key.encode() if key else None, value, dict(headers))


EVENT = json.dumps(
    {"id": "e-1", "type": "renewal.requested", "subject": "CSN-1", "data": {"request_id": "r-1"}}
).encode()


@pytest.mark.parametrize(
    ("text", "expected"),
    [("30s", timedelta(seconds=30)), ("10m", timedelta(minutes=10)), ("2h", timedelta(hours=2))],
)
def test_since_takes_seconds_minutes_hours(text: str, expected: timedelta) -> None:
    assert parse_since(text) == expected


def test_since_refuses_what_is_not_a_duration() -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_since("yesterday")


def test_a_dead_letter_reference_may_leave_out_the_only_partition() -> None:
    assert parse_ref("renewal.commands.dlq:12") == ("renewal.commands.dlq", 0, 12)
    assert parse_ref("renewal.commands.dlq:0:12") == ("renewal.commands.dlq", 0, 12)
    with pytest.raises(ValueError):
        parse_ref("renewal.commands.dlq")


def test_event_filter_matches_csn_type_and_request() -> None:
    assert EventFilter(csn="CSN-1", type="renewal.requested", request_id="r-1").matches(
        record(EVENT)
    )
    assert not EventFilter(csn="CSN-2").matches(record(EVENT, key="CSN-2-other"))
    assert not EventFilter(request_id="r-2").matches(record(EVENT))
    # Bytes that are not JSON still match by their key.
    assert EventFilter(csn="CSN-1").matches(record(b"\x00 not json"))
    assert not EventFilter(type="renewal.requested").matches(record(b"\x00 not json"))


def test_a_dead_letter_reads_its_headers() -> None:
    letter = DeadLetter.of(
        record(
            EVENT,
            **{
                "x-dlq-error": "boom",
                "x-dlq-error-type": "InvalidEventError",
                "x-dlq-original-topic": "t",
                "x-dlq-original-partition": "3",
                "x-dlq-original-offset": "41",
                "x-dlq-consumer-group": "svc.t",
                "x-dlq-attempts": "0",
            },
        )
    )
    assert (letter.ref, letter.original_topic, letter.original_partition) == ("t.dlq:0:7", "t", 3)
    assert (letter.csn, letter.event_type, letter.event_id) == ("CSN-1", "renewal.requested", "e-1")
    assert DeadLetterFilter(topic="t", error_type="InvalidEventError").matches(letter)
    assert not DeadLetterFilter(group="other.t").matches(letter)
    assert "raw_value" not in letter.as_dict()


@pytest.mark.parametrize(
    "poison",
    [b"[" * 100_000 + b"]" * 100_000, b'{"n": ' + b"9" * 5000 + b"}", b"\xff\xfe", None, b"[1]"],
    ids=["deep nesting", "huge integer", "not utf-8", "no value", "not an object"],
)
def test_the_tools_read_a_poison_message_as_no_event_instead_of_crashing(
    poison: bytes | None,
) -> None:
    # Dead-letter topics hold exactly such messages; `dlq list`, `tail` and the console read them.
    assert decode(poison) == {}


def test_a_header_without_a_value_is_read_as_empty_not_a_crash() -> None:
    raw = SimpleNamespace(
        topic="renewal.commands.dlq",
        partition=0,
        offset=7,
        timestamp=0,
        key=None,
        value=b"{}",
        headers=[("x-dlq-error", b"bad"), ("ce-type", None)],
    )
    assert Record.of(raw).headers == {"x-dlq-error": "bad", "ce-type": ""}
