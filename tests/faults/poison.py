"""Poison messages: bytes no consumer can handle, each of a kind issue 15 names. Every one must
end in its topic's `.dlq` (matched by original topic, partition and offset) while the
partition moves on."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from shared.contracts import topics

# The input topics the services consume; poison goes to each.
POISONED_TOPICS = (
    topics.RENEWAL_COMMANDS.name,
    topics.QUOTE_COMMANDS.name,
    topics.PAYMENT_EVENTS.name,
    topics.CLOCK_COMMANDS.name,
    topics.SUBSCRIPTION_EVENTS.name,
    topics.CATALOG_EVENTS.name,
)
# A type each topic carries, so that only the poison in the message is wrong.
TYPE_OF = {
    topics.RENEWAL_COMMANDS.name: "renewal.requested",
    topics.QUOTE_COMMANDS.name: "quote.requested",
    topics.PAYMENT_EVENTS.name: "payment.received",
    topics.CLOCK_COMMANDS.name: "test_clock.set",
    topics.SUBSCRIPTION_EVENTS.name: "subscription.upserted",
    topics.CATALOG_EVENTS.name: "price.published",
}
# The broker's default message.max.bytes is 1,048,588: a record just under it is accepted, and
# its dead-letter copy (the same bytes and more headers) may not be.
NEAR_LIMIT_BYTES = 1_040_000
# Near-limit messages cost a megabyte each: a few per run are enough.
NEAR_LIMIT_PER_RUN = 3


@dataclass(frozen=True)
class Poison:
    kind: str
    topic: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes | None]]


def _envelope(topic: str, subject: str, data: object, **fields: object) -> dict[str, object]:
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "/fault-suite/poison",
        "type": TYPE_OF[topic],
        "time": datetime.now(UTC).isoformat(),
        "subject": subject,
        "datacontenttype": "application/json",
        "data": data,
        **fields,
    }


def _renewal_like(subject: str) -> dict[str, object]:
    return {
        "request_id": f"req-poison-{uuid.uuid4()}",
        "actor": {"user_id": f"{subject}-buyer", "csn": subject},
        "subscription_ids": [f"{subject}-SUB"],
    }


def _json(value: object) -> bytes:
    return json.dumps(value).encode()


CE_HEADERS: list[tuple[str, bytes | None]] = [("content-type", b"application/cloudevents+json")]


def not_json(topic: str, subject: str) -> tuple[bytes, list[tuple[str, bytes | None]]]:
    return b"\xff\xfe{not json at all" + uuid.uuid4().bytes, CE_HEADERS


def deeply_nested(topic: str, subject: str) -> tuple[bytes, list[tuple[str, bytes | None]]]:
    depth = 5000  # ~10 KB: past Python's recursion limit
    return b"[" * depth + b"]" * depth, CE_HEADERS


def huge_integer(topic: str, subject: str) -> tuple[bytes, list[tuple[str, bytes | None]]]:
    data = _renewal_like(subject)
    body = _json(_envelope(topic, subject, data)).replace(b'"data": {', b'"data": {"seats": ', 1)
    # Python's int parsing refuses more than 4,300 digits (ValueError, not JSONDecodeError).
    body = body.replace(b'"seats": ', b'"seats": ' + b"9" * 5000 + b", ", 1)
    return body, CE_HEADERS


def null_header(topic: str, subject: str) -> tuple[bytes, list[tuple[str, bytes | None]]]:
    # Headers without a value once failed the whole batch before any parsing; the body is not
    # a valid command of any topic either, so that the one right ending is the DLQ (a valid
    # body with a null header is simply handled).
    body = _json(_envelope(topic, subject, {"null_header": True}))
    return body, [*CE_HEADERS, ("ce-type", None), ("x-fault-suite", None)]


def wrong_types(topic: str, subject: str) -> tuple[bytes, list[tuple[str, bytes | None]]]:
    data = {"request_id": 42, "actor": "nobody", "subscription_ids": 7, "csn": ["x"], "today": 1}
    return _json(_envelope(topic, subject, data, time=12345)), CE_HEADERS


def unknown_type(topic: str, subject: str) -> tuple[bytes, list[tuple[str, bytes | None]]]:
    return _json(_envelope(topic, subject, _renewal_like(subject), type="renewal.teleported")), (
        CE_HEADERS
    )


def oversized_ids(topic: str, subject: str) -> tuple[bytes, list[tuple[str, bytes | None]]]:
    long = "X" * 5_000  # far past any sane id, small enough to send thousands
    data = {
        "request_id": f"req-{long}",
        "actor": {"user_id": long, "csn": subject},
        "subscription_ids": [f"S-{long}"],
    }
    event = _envelope(topics.RENEWAL_COMMANDS.name, long, data, id=long, source=f"/{long}")
    return _json(event), CE_HEADERS


def near_size_limit(topic: str, subject: str) -> tuple[bytes, list[tuple[str, bytes | None]]]:
    data = {**_renewal_like(subject), "padding": ""}
    body = _json(_envelope(topic, subject, data))
    padding = b"p" * (NEAR_LIMIT_BYTES - len(body))
    return body.replace(b'"padding": ""', b'"padding": "' + padding + b'"', 1), CE_HEADERS


KINDS: dict[str, Callable[[str, str], tuple[bytes, list[tuple[str, bytes | None]]]]] = {
    "not JSON": not_json,
    "deeply nested JSON (10 KB)": deeply_nested,
    "huge integer": huge_integer,
    "null header value": null_header,
    "wrong types": wrong_types,
    "unknown event type": unknown_type,
    "oversized ids": oversized_ids,
    "near the broker's size limit": near_size_limit,
}
NEAR_LIMIT = "near the broker's size limit"


def poison_batch(count: int, prefix: str, rng: random.Random) -> list[Poison]:
    """`count` poison messages: every kind at least once (when count allows), spread over the
    input topics, each keyed by a CSN of its own (so they land on every partition)."""
    kinds = [k for k in KINDS if k != NEAR_LIMIT]
    chosen = [NEAR_LIMIT] * min(NEAR_LIMIT_PER_RUN, max(1, count // 1000)) if count else []
    while len(chosen) < count:
        chosen.append(kinds[len(chosen) % len(kinds)])
    rng.shuffle(chosen)
    batch = []
    for n, kind in enumerate(chosen):
        topic = POISONED_TOPICS[rng.randrange(len(POISONED_TOPICS))]
        subject = f"{prefix}-POISON-{n:05}"
        value, headers = KINDS[kind](topic, subject)
        batch.append(Poison(kind, topic, subject.encode(), value, headers))
    return batch
