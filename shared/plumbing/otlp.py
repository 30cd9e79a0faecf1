"""OpenTelemetry spans over OTLP/HTTP, off unless `RENEWALS_OTLP_ENDPOINT` is set.

Every event is already a span of its trace (shared/messaging/tracing.py: its `traceparent`
names its span, its `tracestate` the span that caused it). The outbox relay hands each event it
published here, and it is exported as a PRODUCER span with those same ids — from the event's
`time` to its publication — named by the event type, with the service as `service.name`. A
tracing backend (Jaeger, Tempo…) then shows a renewal as one tree across the services, the
same one `renewals trace` reads back from the topics.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import SpanContext, SpanKind, TraceFlags

from shared.contracts.envelope import json_object
from shared.messaging import tracing

log = logging.getLogger(__name__)


class PublishedSpans:
    """Exports one span per published event, in the background (a batching processor)."""

    def __init__(self, service: str, exporter: SpanExporter) -> None:
        self.resource = Resource.create({"service.name": f"renewals-{service}"})
        self.processor = BatchSpanProcessor(exporter)

    @classmethod
    def to_endpoint(cls, service: str, endpoint: str) -> PublishedSpans:
        """To an OTLP/HTTP collector, e.g. http://127.0.0.1:4318 (its /v1/traces)."""
        return cls(service, OTLPSpanExporter(endpoint=f"{endpoint.rstrip('/')}/v1/traces"))

    def published(self, events: Iterable[tuple[str, bytes]]) -> None:
        """(topic, CloudEvent bytes) just acknowledged by the broker."""
        now = time.time_ns()
        for topic, value in events:
            span = _span_of(topic, json_object(value), now, self.resource)
            if span is not None:
                self.processor.on_end(span)

    def flush(self, timeout_millis: int = 5000) -> bool:
        return self.processor.force_flush(timeout_millis)

    def shutdown(self) -> None:
        self.processor.shutdown()


def _span_of(
    topic: str, event: dict[str, Any] | None, published_ns: int, resource: Resource
) -> ReadableSpan | None:
    if event is None:
        return None
    own = tracing.parse(event.get("traceparent"), event.get("tracestate"))
    if own is None:
        return None  # an event made before traces (or by an upstream system without one)
    trace_id = int(own.trace_id, 16)
    parent = None
    if own.parent_id is not None:
        parent = SpanContext(trace_id, int(own.parent_id, 16), is_remote=True)
    return ReadableSpan(
        name=str(event.get("type", "event")),
        context=SpanContext(
            trace_id, int(own.span_id, 16), is_remote=False, trace_flags=TraceFlags(1)
        ),
        parent=parent,
        kind=SpanKind.PRODUCER,
        resource=resource,
        start_time=min(_nanoseconds(event.get("time")) or published_ns, published_ns),
        end_time=published_ns,
        attributes={
            "messaging.system": "kafka",
            "messaging.destination.name": topic,
            "cloudevents.event_id": str(event.get("id", "")),
            "cloudevents.event_source": str(event.get("source", "")),
            "cloudevents.event_subject": str(event.get("subject", "")),
            "cloudevents.event_type": str(event.get("type", "")),
        },
    )


def _nanoseconds(timestamp: object) -> int | None:
    if not isinstance(timestamp, str):
        return None
    try:
        return int(datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp() * 1e9)
    except ValueError:
        return None
