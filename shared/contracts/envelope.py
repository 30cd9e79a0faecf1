"""The CloudEvents 1.0 envelope (structured JSON mode) and the registry of event types per topic.

Parsing is strict: bytes that are not JSON (or JSON nested too deep, or with too long an integer),
JSON that is not a CloudEvent, a type the topic does not carry, or data that fails its model each
raise `InvalidEventError` with a one-line reason, which the consumer puts in the dead-letter
headers.
"""

from __future__ import annotations

import json
import os
import threading
from datetime import datetime
from typing import Any, ClassVar, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.messaging import tracing

CONTENT_TYPE = "application/cloudevents+json"
# The Kafka header that names the event's CloudEvents `type` (the outbox writes it): consumers
# read it to skip types they take no action on, and to validate the rest in one pass.
TYPE_HEADER = "ce-type"


class Contract(BaseModel):
    """Base of every payload: unknown fields are errors, values are not coerced from other types."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class EventData(Contract):
    """A payload with its CloudEvents `type`, e.g. `renewal.requested`."""

    event_type: ClassVar[str]


DataT = TypeVar("DataT", bound=EventData)


class CloudEvent(BaseModel, Generic[DataT]):
    model_config = ConfigDict(extra="forbid", frozen=True)

    specversion: Literal["1.0"] = "1.0"
    # Bounded like every field (issue 15): the id is stored in each consumer's inbox.
    id: str = Field(min_length=1, max_length=128)
    source: str = Field(min_length=1, max_length=256)
    type: str = Field(min_length=1, max_length=128)
    time: datetime
    subject: str = Field(min_length=1, max_length=128)
    datacontenttype: str | None = Field(default=None, max_length=128)
    # The CloudEvents distributed-tracing extension (W3C trace context): optional, so that
    # events made before it stay valid; a malformed one is ignored, never a dead letter.
    traceparent: str | None = Field(default=None, max_length=tracing.TRACEPARENT_LENGTH)
    tracestate: str | None = Field(default=None, max_length=tracing.TRACESTATE_MAX_LENGTH)
    data: DataT


class _EventIds:
    """UUID4 strings from the OS's random bytes, drawn 4 KiB at a time (#19): `uuid.uuid4()` is
    a system call and a Python `UUID` per event, 5 µs of the 25 a new event cost. The ids stay
    unpredictable (each consumer's inbox is keyed by them: an id guessed ahead could make it
    skip a real event); the pool is dropped in a forked child so that parent and child never
    hand out the same bytes."""

    POOL_BYTES = 16 * 256

    def __init__(self) -> None:
        self._pool = b""
        self._at = 0
        self._lock = threading.Lock()  # a slice handed out twice would be one id twice
        os.register_at_fork(after_in_child=self.forget)

    def forget(self) -> None:
        self._pool, self._at = b"", 0
        self._lock = threading.Lock()  # a thread of the parent may have held it at the fork

    def next(self) -> str:
        with self._lock:
            if self._at >= len(self._pool):
                self._pool, self._at = os.urandom(self.POOL_BYTES), 0
            raw = bytearray(self._pool[self._at : self._at + 16])
            self._at += 16
        raw[6] = raw[6] & 0x0F | 0x40  # version 4
        raw[8] = raw[8] & 0x3F | 0x80  # RFC 4122 variant
        h = raw.hex()
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


new_event_id = _EventIds().next
"""A new event's id: a random UUID4 string."""


_ENVELOPES: dict[type[EventData], type[CloudEvent[Any]]] = {}


def envelope_of(model: type[EventData]) -> type[CloudEvent[Any]]:
    """`CloudEvent[model]`, made once: pydantic looks a parametrized class up again on each
    `CloudEvent[model]`, about 10 µs, as much as validating the event itself (#19)."""
    envelope = _ENVELOPES.get(model)
    if envelope is None:
        envelope = _ENVELOPES[model] = CloudEvent[model]  # type: ignore[valid-type]
    return envelope


class InvalidEventError(ValueError):
    """The message can't be handled as it is: the reason goes to the dead-letter headers."""


def json_object(raw: bytes | None) -> dict[str, Any] | None:
    """The JSON object in `raw`, or None for anything else: no value, not JSON, JSON Python
    refuses (nested past the recursion limit, an integer too long to convert), not an object.
    For tools that show whatever a topic holds, dead letters included, and must not crash."""
    try:
        document = json.loads(raw or b"null")
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError included
        return None
    return document if isinstance(document, dict) else None


class EventRegistry:
    """The event types one topic carries, keyed by their CloudEvents `type`."""

    def __init__(self, topic: str, *models: type[EventData]) -> None:
        self.topic = topic
        self.models: dict[str, type[EventData]] = {m.event_type: m for m in models}
        self._envelopes = {m.event_type: envelope_of(m) for m in models}

    def envelopes(self) -> list[type[CloudEvent[Any]]]:
        """`CloudEvent[Model]` for each type: what travels on the topic, for documents."""
        return list(self._envelopes.values())

    def parse(self, raw: bytes | None, type_hint: str | None = None) -> CloudEvent[Any]:
        """The event in `raw`. `type_hint` (the record's `ce-type` header) lets a valid event be
        validated straight from its bytes, in one pass; the body's own `type` must agree with
        it. Anything else, and an event without the hint, takes the path that says why."""
        envelope = self._envelopes.get(type_hint) if type_hint is not None else None
        if envelope is not None and raw is not None:
            try:
                event = _validate(envelope, raw)
            except ValidationError:
                pass  # the careful path below finds the reason
            else:
                if event.type == type_hint:
                    return event
        return self._parse_carefully(raw)

    def _parse_carefully(self, raw: bytes | None) -> CloudEvent[Any]:
        if raw is None:
            raise InvalidEventError("empty message: no value")
        try:
            document = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise InvalidEventError(f"not JSON: {error}") from None
        except (ValueError, RecursionError) as error:
            # JSON, but not a document Python takes: nested deeper than the recursion limit, or
            # an integer of more digits than `int` converts (both from ~10 KB of hostile input).
            raise InvalidEventError(
                f"not acceptable JSON: {type(error).__name__}: {error}"
            ) from None
        if not isinstance(document, dict):
            raise InvalidEventError("not a CloudEvent: the JSON is not an object")
        event_type = document.get("type")
        envelope = self._envelopes.get(event_type) if isinstance(event_type, str) else None
        if envelope is None:
            known = ", ".join(sorted(self.models))
            raise InvalidEventError(
                f"unknown type {event_type!r} on {self.topic} (expected one of: {known})"
            )
        try:
            return _validate(envelope, raw)
        except ValidationError as error:
            raise InvalidEventError(_one_line(error)) from None


def _validate(envelope: type[CloudEvent[Any]], raw: bytes) -> CloudEvent[Any]:
    # Strict JSON validation: no "3" for 3, dates only in ISO form, money only as strings.
    return envelope.model_validate_json(raw, strict=True)


def _one_line(error: ValidationError) -> str:
    problems = []
    for item in error.errors(include_url=False):
        where = ".".join(str(part) for part in item["loc"]) or "(root)"
        problems.append(f"{where}: {item['msg']}")
    return f"invalid {error.title}: " + "; ".join(problems)


def new_event(
    data: EventData,
    *,
    subject: str,
    source: str,
    time: datetime,
    event_id: str | None = None,
    cause: CloudEvent[Any] | tracing.Span | None = None,
) -> CloudEvent[Any]:
    """A new event in a span of its own: a child of `cause` (an event, or a span) when given,
    else of the work at hand (`tracing.current()`: the delivery being handled, the decision
    being made), else the root of a new trace."""
    parent = span_of(cause) if isinstance(cause, CloudEvent) else cause
    span = tracing.next_span(parent)
    return envelope_of(type(data))(
        id=event_id or new_event_id(),
        source=source,
        type=data.event_type,
        time=time,
        subject=subject,
        datacontenttype="application/json",
        traceparent=span.traceparent,
        tracestate=span.tracestate,
        data=data,
    )


def span_of(event: CloudEvent[Any]) -> tracing.Span | None:
    """The span an event names, if it carries a valid `traceparent`."""
    return tracing.parse(event.traceparent, event.tracestate)


def trace_of(event: CloudEvent[Any]) -> tracing.Span:
    """The span that work caused by `event` continues: the event's own; for one that came
    without, the trace the consumer started for it, else (in a batch) a new one."""
    return span_of(event) or tracing.current() or tracing.start()


def encode(event: CloudEvent[Any]) -> bytes:
    # The serializer's own bytes: `model_dump_json` decodes them to a str, which was encoded
    # back here (2 of 5.5 µs for a 1 kB event, #19). Same bytes.
    return event.__pydantic_serializer__.to_json(event, exclude_none=False)


def inline_json_schema(*models: type[BaseModel]) -> dict[str, Any]:
    """One self-contained JSON schema for any of the models (their `$ref`s resolved in place),
    for documents that embed it somewhere else than at their root (AsyncAPI payloads)."""
    variants = []
    for model in models:
        schema = model.model_json_schema()
        definitions = schema.pop("$defs", {})
        variants.append(_resolve(schema, definitions))
    return variants[0] if len(variants) == 1 else {"anyOf": variants}


def _resolve(node: Any, definitions: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        reference = node.get("$ref")
        if isinstance(reference, str) and reference.startswith("#/$defs/"):
            return _resolve(definitions[reference.removeprefix("#/$defs/")], definitions)
        return {key: _resolve(value, definitions) for key, value in node.items()}
    if isinstance(node, list):
        return [_resolve(item, definitions) for item in node]
    return node
