"""Issue 18 item 2: W3C trace context on events — parsing, child spans, and `new_event`
continuing the trace of the work at hand."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime

import pytest

from deploy.local import samples
from shared.contracts import renewal_commands
from shared.contracts.envelope import encode, new_event, span_of
from shared.contracts.renewal_commands import RequestRenewal, SetAutoRenew
from shared.messaging import tracing
from shared.messaging.consumer import Delivery, UnitOfWork, dispatch_by_type, handles_batch

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE}-{SPAN}-01"


def test_a_valid_traceparent_names_its_trace_and_span():
    span = tracing.parse(TRACEPARENT)
    assert span == tracing.Span(TRACE, SPAN, None)
    assert span.traceparent == TRACEPARENT


def test_the_parent_span_rides_in_tracestate():
    span = tracing.parse(TRACEPARENT, "other=x,renewals=1111111111111111")
    assert span is not None and span.parent_id == "1111111111111111"


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "garbage",
        f"01-{TRACE}-{SPAN}-01",  # unknown version
        f"00-{TRACE.upper()}-{SPAN}-01",  # W3C: lowercase hex only
        f"00-{'0' * 32}-{SPAN}-01",  # all-zero trace id is invalid
        f"00-{TRACE}-{'0' * 16}-01",  # all-zero span id is invalid
        f"00-{TRACE}-{SPAN}",
    ],
)
def test_a_missing_or_malformed_traceparent_is_ignored(value):
    assert tracing.parse(value) is None


def test_a_child_span_keeps_the_trace_and_points_at_its_parent():
    parent = tracing.start()
    child = parent.child()
    assert child.trace_id == parent.trace_id
    assert child.parent_id == parent.span_id
    assert child.span_id != parent.span_id
    assert len(child.span_id) == 16 and len(child.trace_id) == 32
    assert tracing.parse(child.traceparent, child.tracestate) == child


def _event(cause=None):
    command = samples.renewal_request("CSN-1", ["S-1"])
    return new_event(command, subject="CSN-1", source="/t", time=datetime.now(UTC), cause=cause)


def test_new_event_without_context_starts_a_trace():
    first, second = _event(), _event()
    assert span_of(first) is not None and span_of(first).parent_id is None
    assert span_of(first).trace_id != span_of(second).trace_id
    assert first.tracestate is None


def test_new_event_inside_a_delivery_is_a_child_of_it():
    cause = _event()
    with tracing.caused_by(cause.traceparent, cause.tracestate):
        made = _event()
    assert span_of(made).trace_id == span_of(cause).trace_id
    assert span_of(made).parent_id == span_of(cause).span_id


def test_an_explicit_cause_wins_over_the_context():
    cause, other = _event(), _event()
    with tracing.caused_by(other.traceparent):
        made = _event(cause=cause)
    assert span_of(made).trace_id == span_of(cause).trace_id
    assert span_of(made).parent_id == span_of(cause).span_id


def test_a_delivery_without_traceparent_starts_one_trace_for_what_it_causes():
    with tracing.caused_by(None) as started:
        first, second = _event(), _event()
    assert span_of(first).trace_id == span_of(second).trace_id == started.trace_id
    assert tracing.current() is None  # the context ends with the delivery


def test_each_decision_is_a_trace_of_its_own():
    with tracing.decision():
        first = _event()
    with tracing.decision():
        second = _event()
    assert span_of(first).trace_id != span_of(second).trace_id


def test_the_envelope_carries_the_extension_and_old_events_stay_valid():
    event = _event()
    document = json.loads(encode(event))
    assert document["traceparent"] == event.traceparent
    registry = renewal_commands.REGISTRY
    assert registry.parse(encode(event)).traceparent == event.traceparent
    del document["traceparent"], document["tracestate"]
    old = registry.parse(json.dumps(document).encode())
    assert old.traceparent is None and span_of(old) is None


def test_the_traceparent_is_bounded_and_a_malformed_one_is_not_a_dead_letter():
    document = json.loads(encode(_event()))
    registry = renewal_commands.REGISTRY
    document["traceparent"] = "not-a-trace"
    assert span_of(registry.parse(json.dumps(document).encode())) is None
    document["traceparent"] = "0" * 1000
    with pytest.raises(ValueError, match="traceparent"):
        registry.parse(json.dumps(document).encode())


async def test_the_consumer_sets_each_delivery_s_trace_and_none_for_a_batch_group():
    """Propagation is central: a per-event handler's events are children of its delivery; a
    batch handler of several deliveries gets no trace of the group's (it names each cause)."""
    made: dict[str, list[tracing.Span | None]] = {"one": [], "group": []}

    async def one(unit, delivery):
        made["one"].append(span_of(_event()))

    async def group(unit, deliveries):
        made["group"].append(tracing.current())

    handle = dispatch_by_type({RequestRenewal: handles_batch(group), SetAutoRenew: one})
    commands = [_event(), _event()]
    auto = new_event(
        SetAutoRenew(**{**_fields_of(samples.renewal_request("CSN-1", ["S-1"])), "enabled": False}),
        subject="CSN-1",
        source="/t",
        time=datetime.now(UTC),
    )
    deliveries = [Delivery(e, None) for e in [*commands, auto]]
    await handle(UnitOfWork(connection=None), deliveries)  # type: ignore[arg-type]
    [child] = made["one"]
    assert child.trace_id == span_of(auto).trace_id and child.parent_id == span_of(auto).span_id
    assert made["group"] == [None]


def _fields_of(command):
    return {name: getattr(command, name) for name in type(command).model_fields}


def test_span_and_trace_ids_are_distinct_lowercase_hex_and_never_all_zeros(monkeypatch):
    """Issue 19 item 6: ids come from a seeded Mersenne Twister, not SystemRandom; they must
    stay unique and valid (W3C: an all-zero id is invalid, so one drawn is drawn again)."""
    spans = [tracing.start() for _ in range(2_000)]
    ids = [s.span_id for s in spans] + [s.trace_id for s in spans]
    assert len(set(ids)) == len(ids)
    assert all(tracing.parse(s.traceparent) == s for s in spans)

    draws = iter([bytes(8), bytes(8), bytes.fromhex("00f067aa0ba902b7")])
    monkeypatch.setattr(tracing._ids, "randbytes", lambda size: next(draws))
    assert tracing.Span(TRACE, SPAN).child().span_id == "00f067aa0ba902b7"


def test_a_forked_child_draws_other_ids_than_its_parent():
    """The generator is seeded again in a forked child: without it, both would draw the same
    sequence of ids from the moment of the fork."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next id, to the parent, then out without pytest's teardown
        os.write(write, tracing.start().span_id.encode())
        os._exit(0)
    os.close(write)
    parent_id = tracing.start().span_id
    with os.fdopen(read) as pipe:
        child_id = pipe.read()
    os.waitpid(pid, 0)
    assert len(child_id) == 16 and child_id != parent_id
