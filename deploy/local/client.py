"""Talk to the product as an upstream system or an operator would: publish CloudEvents to its
public topics and watch what comes out. Used by the demo, the end-to-end tests and the bench.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Self

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from shared.contracts.envelope import CONTENT_TYPE, CloudEvent, encode, json_object
from shared.contracts.topics import Topic
from shared.messaging.credentials import client_options
from shared.messaging.principals import (
    partner_principal,
    signers_of,
    upstream_writer_of,
)
from shared.messaging.signing import signed_headers, signing_key_of

# Who writes and who signs a topic follow from the fixed table of principals; worked out once
# per topic, not per message (0.4 ms a message: most of the bench's own CPU per renewal).
_signers_of = functools.cache(signers_of)
_upstream_writer_of = functools.cache(upstream_writer_of)


@dataclass(frozen=True)
class Seen:
    """A message read back from a topic, decoded as far as it goes."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: dict[str, str]
    offset: int
    partition: int

    @property
    def event(self) -> dict[str, Any]:
        return json.loads(self.value or b"null")

    @property
    def type(self) -> str | None:
        """The CloudEvent type; None for what is not a JSON object (a dead letter can be)."""
        event = json_object(self.value)
        return event.get("type") if event is not None else None

    @property
    def data(self) -> dict[str, Any]:
        return self.event["data"]


class UpstreamClient:
    """Idempotent producers that send CloudEvents keyed by their subject (the CSN), each as a
    principal: `principal` when given, else the upstream system that writes the topic (the
    portal for `renewal.commands`, the payment provider for `payment.events`: see
    shared/messaging/principals.py), else RENEWALS_KAFKA_USERNAME's or the operator's. A command
    whose body names a channel goes as the system of that channel (a `sales` quote as the sales
    tool, a `partner` one as that partner's tool), and a command is signed by whoever sends it
    (shared/messaging/signing.py) unless `sign=False` (a hostile test)."""

    def __init__(self, bootstrap: str, *, principal: str | None = None, sign: bool = True) -> None:
        self.bootstrap = bootstrap
        self.principal = principal
        self.sign = sign
        self._producers: dict[str | None, AIOKafkaProducer] = {}
        # Each signer's key, looked up once: without a key in the environment, a lookup reads
        # the whole secrets file (issue 19: the largest part of the bench's own CPU per manual
        # renewal, a read for every command it signed).
        self._signing_keys: dict[str, str | None] = {}

    async def __aenter__(self) -> UpstreamClient:
        await self.producer_for(None)  # connects now: a refused principal fails here
        return self

    async def __aexit__(self, *_: object) -> None:
        for producer in self._producers.values():
            await producer.stop()
        self._producers.clear()

    @property
    def producer(self) -> AIOKafkaProducer:
        """The producer of the default principal."""
        return self._producers[self.principal]

    def principal_for(self, topic: str | None, event: CloudEvent[Any] | None = None) -> str | None:
        """Who sends `event` to `topic`: the one asked for, else the system of the command's
        channel, else the topic's upstream writer."""
        if self.principal or topic is None:
            return self.principal
        signers = _signers_of(topic)
        data = event.data if event is not None else None
        channel = getattr(data, "channel", None)
        if signers and channel is not None:
            actor = getattr(data, "actor", None)
            wanted = {
                "sales": "sales",
                "partner": partner_principal(actor.csn) if actor is not None else None,
            }.get(channel)
            if wanted in signers:
                return wanted
        return _upstream_writer_of(topic)

    def headers_for(
        self, principal: str | None, topic: str, key: bytes | None, value: bytes
    ) -> list[tuple[str, bytes]]:
        """The content type, and the signature of a command topic's signer."""
        headers = [("content-type", CONTENT_TYPE.encode())]
        if not self.sign or principal is None or principal not in _signers_of(topic):
            return headers
        if principal not in self._signing_keys:
            self._signing_keys[principal] = signing_key_of(principal)
        secret = self._signing_keys[principal]
        if secret is None:  # the consumer will refuse it, and say why: unsigned
            return headers
        return headers + signed_headers(principal, secret, topic, key, value)

    async def producer_for(
        self, topic: str | None, event: CloudEvent[Any] | None = None
    ) -> AIOKafkaProducer:
        """The producer of whoever writes `topic` (the default principal's for None)."""
        name = self.principal_for(topic, event)
        producer = self._producers.get(name)
        if producer is None:
            producer = AIOKafkaProducer(
                **client_options(self.bootstrap, principal=name),
                enable_idempotence=True,
                acks="all",
                linger_ms=5,
            )
            await producer.start()
            self._producers[name] = producer
        return producer

    async def send(self, topic: Topic | str, event: CloudEvent[Any]) -> None:
        await self.send_many(topic, [event])

    async def send_many(self, topic: Topic | str, events: Iterable[CloudEvent[Any]]) -> None:
        name = topic.name if isinstance(topic, Topic) else topic
        sends = []
        for event in events:
            producer = await self.producer_for(name, event)
            key, value = event.subject.encode(), encode(event)
            headers = self.headers_for(self.principal_for(name, event), name, key, value)
            sends.append(await producer.send(name, value, key=key, headers=headers))
        await asyncio.gather(*sends)

    async def send_raw(
        self,
        topic: Topic | str,
        value: bytes,
        key: bytes | None = None,
        *,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        """Bytes as they are, signed like a command unless `headers` are given (a test's own)."""
        name = topic.name if isinstance(topic, Topic) else topic
        if headers is None:
            headers = self.headers_for(self.principal_for(name), name, key, value)
        await (await self.producer_for(name)).send_and_wait(name, value, key=key, headers=headers)


class TopicWatcher:
    """Reads topics from their current end (as of `start`), collecting everything that arrives."""

    def __init__(
        self, bootstrap: str, topics: Iterable[Topic | str], *, principal: str | None = None
    ) -> None:
        self.bootstrap = bootstrap
        self.principal = principal
        self.topics = [t.name if isinstance(t, Topic) else t for t in topics]
        self.seen: list[Seen] = []
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        consumer = AIOKafkaConsumer(
            **client_options(self.bootstrap, principal=self.principal), enable_auto_commit=False
        )
        await consumer.start()
        partitions = [
            TopicPartition(topic, p)
            for topic in self.topics
            for p in sorted(
                consumer.partitions_for_topic(topic) or await _partitions(consumer, topic)
            )
        ]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        for partition, offset in ends.items():
            consumer.seek(partition, offset)
        self._consumer = consumer
        self._task = asyncio.create_task(self._collect())
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()

    async def _collect(self) -> None:
        assert self._consumer is not None
        while True:
            batches = await self._consumer.getmany(timeout_ms=100, max_records=5000)
            for records in batches.values():
                for r in records:
                    headers = {k: v.decode(errors="replace") for k, v in r.headers or ()}
                    self.seen.append(Seen(r.topic, r.key, r.value, headers, r.offset, r.partition))

    def matching(self, predicate: Callable[[Seen], bool]) -> list[Seen]:
        return [s for s in self.seen if predicate(s)]

    async def wait_for(
        self, predicate: Callable[[Seen], bool], *, count: int = 1, timeout: float = 30.0
    ) -> list[Seen]:
        """Wait until `count` messages match; raise TimeoutError naming what did arrive."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.matching(predicate)
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                kinds = sorted({f"{s.topic}:{s.type}" for s in self.seen})
                raise TimeoutError(
                    f"waited {timeout}s for {count} matching message(s), saw {len(found)};"
                    f" arrived meanwhile: {kinds}"
                )
            await asyncio.sleep(0.05)


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    await consumer._client.force_metadata_update()  # a fresh consumer may not know the topic yet
    partitions = consumer.partitions_for_topic(topic)
    if not partitions:
        raise LookupError(f"topic {topic} does not exist: run `make infra-up`")
    return partitions


def of_type(event_type: str, *, subject: str | None = None) -> Callable[[Seen], bool]:
    def match(seen: Seen) -> bool:
        return seen.type == event_type and (subject is None or seen.event.get("subject") == subject)

    return match
