"""W3C trace context for events: parse a `traceparent`, start a trace, make a child span, and
the trace of the work at hand (a contextvar the consumer sets per delivery) for `new_event`.

An event's `traceparent` names its own span; its `tracestate` (`renewals=<span id>`) names the
span it was caused by, so that a trace read back from the topics has its parent/child links.
Standard library only: the contracts import it.
"""

from __future__ import annotations

import os
import random
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

# version 00, 32 hex trace id, 16 hex span id, 2 hex flags (W3C Trace Context level 1).
_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_PARENT_STATE = re.compile(r"(?:^|,)\s*renewals=([0-9a-f]{16})\s*(?:,|$)")
TRACEPARENT_LENGTH = 55
TRACESTATE_MAX_LENGTH = 512  # W3C: at most 32 members; a vendor may cut it to 512 characters
_SAMPLED = "01"


@dataclass(frozen=True)
class Span:
    """One span of a trace: where an event (or the handling of one) sits in it."""

    trace_id: str
    span_id: str
    parent_id: str | None = None

    @property
    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{_SAMPLED}"

    @property
    def tracestate(self) -> str | None:
        return f"renewals={self.parent_id}" if self.parent_id else None

    def child(self) -> Span:
        """A new span of the same trace caused by this one."""
        return Span(self.trace_id, _span_id(), self.span_id)


def parse(traceparent: str | None, tracestate: str | None = None) -> Span | None:
    """The span a `traceparent` names, or None for none or a malformed one (W3C: ignored, a new
    trace is started). All-zero ids are invalid too."""
    if not traceparent:
        return None
    match = _TRACEPARENT.match(traceparent.strip())
    if not match or set(match.group(1)) == {"0"} or set(match.group(2)) == {"0"}:
        return None
    parent = _PARENT_STATE.search(tracestate or "")
    return Span(match.group(1), match.group(2), parent.group(1) if parent else None)


def start() -> Span:
    """The root span of a new trace: a command that came without one, or a loop's decision."""
    return Span(_random_hex(16), _span_id())


def _span_id() -> str:
    return _random_hex(8)


# Trace and span ids only need to be unique, not unpredictable (W3C: "randomly generated"; no
# secret rides on them): a Mersenne Twister seeded from the OS, not `secrets` (SystemRandom,
# a getrandom() system call per id: 2.5 % of renewal's CPU, two ids an event). Seeded again in
# a forked child, so that parent and child never draw the same ids.
_ids = random.Random()
os.register_at_fork(after_in_child=_ids.seed)
_ZERO_IDS = {bytes(8), bytes(16)}


def _random_hex(size: int) -> str:
    """`size` random bytes as lowercase hex; never all zeros (an invalid id, W3C)."""
    value = _ids.randbytes(size)
    while value in _ZERO_IDS:
        value = _ids.randbytes(size)
    return value.hex()


_current: ContextVar[Span | None] = ContextVar("trace_span", default=None)


def current() -> Span | None:
    """The span of the work at hand: what an event made now is caused by."""
    return _current.get()


@contextmanager
def within(span: Span | None) -> Iterator[Span | None]:
    """Events made inside are children of `span` (None: each starts its own trace)."""
    token = _current.set(span)
    try:
        yield span
    finally:
        _current.reset(token)


@contextmanager
def caused_by(traceparent: str | None, tracestate: str | None = None) -> Iterator[Span]:
    """Work caused by an event (or a row that kept its traceparent): what it makes continues
    that trace; without a valid one, it starts a new trace (W3C)."""
    span = parse(traceparent, tracestate) or start()
    with within(span):
        yield span


@contextmanager
def decision() -> Iterator[Span]:
    """A time-driven decision (the due-date engine, reminders, automatic quotes, expiry): a new
    trace whose events are its children."""
    with within(start()) as span:
        assert span is not None
        yield span


def next_span(cause: Span | None = None) -> Span:
    """The span of an event made now: a child of `cause`, else of the work at hand, else the
    root of a new trace."""
    parent = cause or current()
    return parent.child() if parent else start()
