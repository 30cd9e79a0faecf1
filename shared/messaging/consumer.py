"""The idempotent batch consumer: inbox, effect and outbox in one transaction, then the offset.

For each consumed batch:
1. every record is parsed on its own; a record that is not a valid CloudEvent of this topic is
   a dead letter (one bad record never fails the batch); on a command topic its signature is
   verified and the proven signer (or why there is none) goes with it (shared/messaging/
   signing.py; the service refuses an unproven command NOT_AUTHORIZED);
2. in ONE PostgreSQL transaction: the event ids are claimed in the inbox (ids already there are
   duplicates and skipped), the service's handler applies the effects and adds outgoing events
   to the outbox, and the outbox rows are written;
3. dead letters are published to `<topic>.dlq` and acknowledged by the broker;
4. only then does FastStream commit the offsets (ack policy NACK_ON_ERROR: commit after the
   handler returns; an exception seeks back and the batch comes again).

A handler error other than the infrastructure's is retried message by message, each in its own
transaction, up to `handler_max_attempts`; then that message alone is dead-lettered. Transient
database errors (an outage, a deadlock, a serialization failure, a read-only primary after a
failover, a statement timeout: `shared.db.errors`) are not the message's fault: the batch is
nacked after a pause that doubles up to a cap, and comes back. Whatever parsing one record
raises makes that record a dead letter, never the batch's failure.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any, Generic, TypeVar

import asyncpg
from faststream import AckPolicy, Context
from faststream.kafka import KafkaBroker
from faststream.kafka.message import KafkaMessage
from pydantic import WithJsonSchema

from shared.contracts.envelope import (
    TYPE_HEADER,
    CloudEvent,
    EventData,
    EventRegistry,
    InvalidEventError,
    inline_json_schema,
)
from shared.contracts.topics import Topic
from shared.db.errors import CONNECTION_ERRORS, is_transient
from shared.db.types import DbConnection
from shared.messaging import tracing
from shared.messaging.dlq import DeadLetter, publish_dead_letters
from shared.messaging.idle_wait import wait_for_records
from shared.messaging.outbox import Outbox
from shared.messaging.settings import MessagingSettings
from shared.messaging.signing import SignatureVerifier, Unproven
from shared.plumbing.committed_counts import counted_on_commit
from shared.plumbing.faults import AFTER_DB_COMMIT, FaultPoints
from shared.plumbing.logs import log_context
from shared.plumbing.metrics import (
    BATCH_SECONDS,
    MESSAGES_DEAD_LETTERED,
    MESSAGES_DUPLICATE,
    MESSAGES_FAILED,
    MESSAGES_HANDLED,
    MESSAGES_SKIPPED,
)

log = logging.getLogger(__name__)

# Connection errors only, for the time-driven loops that still import it; the consumer itself
# retries every transient error (`shared.db.errors.is_transient`: deadlocks, serialization
# failures, a read-only primary after failover, statement timeouts too).
INFRASTRUCTURE_ERRORS: tuple[type[BaseException], ...] = CONNECTION_ERRORS


# The contract type a delivery carries: a handler says which by its signature,
# `Delivery[PaymentFailed]`, and reads `delivery.data` typed, without a cast. A bare `Delivery`
# is `Delivery[Any]`, for the code that handles every type alike (the consumer, the dispatch).
DataT = TypeVar("DataT", bound=EventData)


@dataclass(frozen=True)
class Delivery(Generic[DataT]):
    """One valid event and the record it came in; on a signed topic, who signed it (proven), or
    why nobody is proven to have."""

    event: CloudEvent[DataT]
    record: Any  # aiokafka ConsumerRecord
    signer: str | None = None
    unproven: Unproven | None = None

    @property
    def data(self) -> DataT:
        return self.event.data

    @property
    def inbox_key(self) -> str:
        """What the inbox deduplicates on: the event id, and on a signed topic the event id
        within its signer's and its CSN's space (issue 16 item 3): another sender's event with
        the same id is handled, not taken for a duplicate of this one."""
        if self.signer is None and self.unproven is None:
            return self.event.id
        return f"{self.signer or '-'}|{self.event.subject}|{self.event.id}"


@dataclass
class UnitOfWork:
    """What a handler gets: the open transaction's connection and the outbox to write to."""

    connection: DbConnection
    outbox: Outbox = field(default_factory=Outbox)


# Any: a handler of one contract type (`Delivery[QuoteSent]`) is registered for that type only
# (`TypeDispatch`), so it is never handed another's.
BatchHandler = Callable[[UnitOfWork, list[Delivery[Any]]], Awaitable[None]]
EventHandler = Callable[[UnitOfWork, Delivery[Any]], Awaitable[None]]


@dataclass(frozen=True)
class BatchEventHandler:
    """A handler of many deliveries at once, for `dispatch_by_type` (see `handles_batch`).

    It gets, in one call, every delivery of the batch whose type it is registered for, in
    their order — registered for several types, it gets them together, still in order. It must
    give the same effects as handling them one by one in that order: the consumer calls it with
    a single delivery when it retries a failed batch message by message.
    """

    handle: BatchHandler
    name: str

    async def __call__(self, unit: UnitOfWork, deliveries: list[Delivery]) -> None:
        await self.handle(unit, deliveries)


def handles_batch(handler: BatchHandler) -> BatchEventHandler:
    """Mark a batch handler so that `dispatch_by_type` hands it all its deliveries at once.

    Why: one set-based statement for the batch instead of a few round trips per message (the
    database pays per round trip and per commit, MACHINE.md)."""
    return BatchEventHandler(handler, getattr(handler, "__qualname__", repr(handler)))


async def ignore(unit: UnitOfWork, delivery: Delivery) -> None:
    """For an event of the topic that this service has no use for: consumed, changes nothing."""


class TypeDispatch:
    """A batch handler that hands each delivery to the handler for its data type.

    Per-event handlers are called one delivery at a time, in order. A `BatchEventHandler` is
    called once, after them, with all its deliveries of the batch in order. Handlers of
    different types must not depend on the order between them (a batch mixes partitions: only
    the order within a partition means anything, and it is kept within each handler).

    `ignored`: the CloudEvents types of the topic that the service takes no action on. The
    consumer skips a record whose `ce-type` header names one before parsing it and without an
    inbox row (issue 19 item 3): it would cost a validation and a row to change nothing. One
    that comes without the header is parsed, and handed to `ignore`.
    """

    def __init__(
        self,
        handlers: Mapping[type, EventHandler | BatchEventHandler],
        ignored: frozenset[str] = frozenset(),
    ) -> None:
        self.handlers = dict(handlers)
        self.ignored = ignored

    async def __call__(self, unit: UnitOfWork, deliveries: list[Delivery]) -> None:
        handlers = self.handlers
        batched: dict[int, tuple[BatchEventHandler, list[Delivery]]] = {}
        for delivery in deliveries:
            handler = handlers.get(type(delivery.data))
            if handler is None:
                raise PermanentError(f"{delivery.event.type} is not handled by this service yet")
            if isinstance(handler, BatchEventHandler):
                batched.setdefault(id(handler), (handler, []))[1].append(delivery)
                continue
            with _delivery_context(delivery):
                await handler(unit, delivery)
        for handler, group in batched.values():
            if len(group) == 1:
                with _delivery_context(group[0]):
                    await handler(unit, group)
                continue
            # The first delivery names the group in the logs; the count says it is not alone.
            # A failed group is retried message by message, where each log line is exact.
            # No trace is the group's: a handler passes each event's own cause (`new_event`'s
            # `cause=`, or `tracing.caused_by`); an event made without one starts a trace.
            first = group[0]
            with (
                tracing.within(None),
                log_context(
                    event_id=first.event.id,
                    csn=first.event.subject,
                    request_id=getattr(first.data, "request_id", None),
                    trace_id=None,
                    handler=handler.name,
                    batch=len(group),
                ),
            ):
                await handler(unit, group)


def dispatch_some(
    registry: EventRegistry, handlers: Mapping[type, EventHandler | BatchEventHandler]
) -> TypeDispatch:
    """`dispatch_by_type` for a topic of which the service handles only some types: the others
    are ignored on purpose (unlike `dispatch_by_type`, which dead-letters a type it lacks), and
    skipped unparsed when their header names them (`TypeDispatch.ignored`)."""
    ignored = frozenset(
        event_type for event_type, model in registry.models.items() if model not in handlers
    )
    return TypeDispatch({**dict.fromkeys(registry.models.values(), ignore), **handlers}, ignored)


def dispatch_by_type(handlers: Mapping[type, EventHandler | BatchEventHandler]) -> TypeDispatch:
    """A batch handler that hands each delivery to the handler for its data type (see
    `TypeDispatch`); a type it has no handler for is a dead letter."""
    return TypeDispatch(handlers)


def ignored_types(handler: BatchHandler) -> frozenset[str]:
    """The types a consumer of `handler` may skip unparsed: none unless it is a `TypeDispatch`."""
    return handler.ignored if isinstance(handler, TypeDispatch) else frozenset()


@contextmanager
def _delivery_context(delivery: Delivery) -> Iterator[None]:
    """The delivery's log fields and trace: what its handler makes continues the trace of the
    event (one that came without a valid traceparent starts a new one here)."""
    event = delivery.event
    with (
        tracing.caused_by(event.traceparent, event.tracestate) as span,
        log_context(
            event_id=event.id,
            csn=event.subject,
            request_id=getattr(delivery.data, "request_id", None),
            trace_id=span.trace_id,
        ),
    ):
        yield


# What the AsyncAPI document says of a signed topic (shared/messaging/signing.py).
SIGNED_TOPIC_NOTE = (
    " Every command is signed by the upstream system that sends it (issue 16): header"
    " `x-renewals-signer` is its principal (`portal`, `sales`, `partner-<partner CSN>`), header"
    " `x-renewals-signature` the hex HMAC-SHA256, keyed with its signing key, of the topic, the"
    " Kafka key and the value, each preceded by its length as 8 bytes big-endian. The channel"
    " and the partner are the signer's: an unsigned or badly signed command, a `channel` that is"
    " not the signer's, or an actor acting for what it may not is answered NOT_AUTHORIZED."
)


class PermanentError(Exception):
    """The event is well formed but can never be handled here: dead-letter it without retrying."""


class PoolHolder:
    """The pool exists only once the app has started; consumers are registered before that."""

    pool: asyncpg.Pool | None = None

    def get(self) -> asyncpg.Pool:
        if self.pool is None:
            raise RuntimeError("the database pool is not open yet")
        return self.pool


class EventConsumer:
    def __init__(
        self,
        *,
        service: str,
        topic: Topic,
        registry: EventRegistry,
        group_id: str,
        handler: BatchHandler,
        pools: PoolHolder,
        settings: MessagingSettings,
        faults: FaultPoints,
        verifier: SignatureVerifier | None = None,
        inbox: bool = True,
    ) -> None:
        self.service = service
        self.verifier = verifier
        self.inbox = inbox
        self.topic = topic
        self.registry = registry
        self.group_id = group_id
        self.handler = handler
        self.ignored = ignored_types(handler)
        self.pools = pools
        self.settings = settings
        self.faults = faults
        self.broker: KafkaBroker | None = None
        self.subscriber: Any = None
        self._transient_failures = 0  # batches in a row that failed for the infrastructure

    def _backoff(self) -> float:
        """The pause before a batch comes again: doubling from the base, capped, so that an
        outage is not hammered and a lost deadlock race is soon tried again."""
        base = self.settings.infrastructure_retry_seconds
        doubled = base * 2 ** min(self._transient_failures - 1, 16)
        return min(doubled, max(base, self.settings.infrastructure_retry_max_seconds))

    @property
    def assigned(self) -> bool:
        """Whether the group gave this consumer its partitions (readiness)."""
        consumer = getattr(self.subscriber, "consumer", None)
        return consumer is not None and bool(consumer.assignment())

    def register(self, broker: KafkaBroker) -> None:
        self.broker = broker
        # The AsyncAPI document shows the contract's event types; the handler takes raw records
        # and validates each one itself, so that one bad record can't fail a whole batch.
        schema = {"type": "array", "items": inline_json_schema(*self.registry.envelopes())}
        RawBatch = Annotated[list[Any], WithJsonSchema(schema)]

        async def consume(
            body: RawBatch,
            message: KafkaMessage = Context("message"),  # noqa: B008
        ) -> None:
            await self.consume_batch(message.raw_message)

        consume.__name__ = f"{self.service}_{self.topic.name.replace('.', '_')}"
        # Resolved here: with postponed annotations FastStream could not see the local alias.
        consume.__annotations__["body"] = RawBatch
        self.subscriber = broker.subscriber(
            self.topic.name,
            group_id=self.group_id,
            batch=True,
            max_records=self.settings.consumer_max_records,
            batch_timeout_ms=self.settings.consumer_wait_ms,
            fetch_min_bytes=self.settings.consumer_fetch_min_bytes,
            fetch_max_wait_ms=self.settings.consumer_fetch_max_wait_ms,
            auto_offset_reset="earliest",
            ack_policy=AckPolicy.NACK_ON_ERROR,
            parser=_tolerant_batch_parser,
            decoder=_raw_values,
            title=f"{self.service}:{self.topic.name}",
            description=(
                f"{self.service} consumes {self.topic.name} in batches, exactly once."
                + (SIGNED_TOPIC_NOTE if self.verifier is not None else "")
            ),
        )
        wait_for_records(self.subscriber)
        self.subscriber(consume)

    async def consume_batch(self, records: Sequence[Any]) -> None:
        started = time.perf_counter()
        deliveries, letters, skipped = self._parse(records)
        try:
            handled, duplicates, failed = await self._handle(deliveries)
        except Exception as error:
            if not is_transient(error):
                raise  # a bug of the consumer itself: FastStream logs it and redelivers
            self._transient_failures += 1
            pause = self._backoff()
            log.warning(
                "transient infrastructure error; the batch will be redelivered",
                extra={
                    "topic": self.topic.name,
                    "error": repr(error),
                    "failures_in_a_row": self._transient_failures,
                    "pause_seconds": pause,
                },
            )
            await asyncio.sleep(pause)
            raise
        self._transient_failures = 0
        letters.extend(failed)
        self.faults.hit(AFTER_DB_COMMIT)
        if letters:
            assert self.broker is not None
            await publish_dead_letters(
                self.broker,
                letters,
                group_id=self.group_id,
                max_bytes=self.settings.max_message_bytes,
            )
            for letter in letters:
                log.error(
                    "dead-lettered",
                    extra={
                        "topic": self.topic.name,
                        "offset": letter.record.offset,
                        "partition": letter.record.partition,
                        "error_type": letter.error_type,
                        "error": letter.error,
                    },
                )
        labels = (self.service, self.topic.name)
        MESSAGES_HANDLED.labels(*labels).inc(handled)
        MESSAGES_DUPLICATE.labels(*labels).inc(duplicates)
        MESSAGES_DEAD_LETTERED.labels(*labels).inc(len(letters))
        for event_type, count in skipped.items():
            MESSAGES_SKIPPED.labels(*labels, event_type).inc(count)
        BATCH_SECONDS.labels(*labels).observe(time.perf_counter() - started)

    def _parse(
        self, records: Sequence[Any]
    ) -> tuple[list[Delivery], list[DeadLetter], dict[str, int]]:
        """(deliveries, dead letters, records skipped by type)."""
        deliveries: list[Delivery] = []
        letters: list[DeadLetter] = []
        skipped: dict[str, int] = {}
        seen: set[str] = set()
        for record in records:
            event_type = header_type(record.headers)
            if event_type is not None and event_type in self.ignored:
                # A type this service takes no action on: no parsing, no inbox row; its offset
                # is committed with the batch's.
                skipped[event_type] = skipped.get(event_type, 0) + 1
                continue
            try:
                event = self.registry.parse(record.value, event_type)
            except InvalidEventError as error:
                letters.append(DeadLetter(record, "InvalidEventError", str(error)))
                continue
            except Exception as error:
                # Whatever else one record makes parsing raise is that record's fault too: were
                # it to escape, the batch would be rewound and fail the same way for ever.
                log.exception("unexpected error parsing a record", extra={"topic": record.topic})
                letters.append(DeadLetter(record, type(error).__name__, str(error) or repr(error)))
                continue
            delivery = Delivery(event, record)
            if self.verifier is not None:
                proof = self.verifier.verify(
                    record.topic, record.key, record.value, record.headers or ()
                )
                delivery = Delivery(event, record, proof.signer, proof.unproven)
            if delivery.inbox_key in seen:
                continue  # the same event twice in one batch: the inbox would skip it anyway
            seen.add(delivery.inbox_key)
            deliveries.append(delivery)
        return deliveries, letters, skipped

    async def _handle(self, deliveries: list[Delivery]) -> tuple[int, int, list[DeadLetter]]:
        """Returns (handled, duplicates, dead letters)."""
        if not deliveries:
            return 0, 0, []
        pool = self.pools.get()
        try:
            # A batch that fails is handled again message by message: what it counted, only
            # if it commits.
            with counted_on_commit():
                async with pool.acquire() as connection, connection.transaction():
                    fresh = await self._claim(connection, deliveries)
                    await self._apply(connection, fresh)
            return len(fresh), len(deliveries) - len(fresh), []
        except Exception as error:
            if is_transient(error):
                raise  # the same batch will do, once the database is back or the race is over
            log.exception(
                "batch failed; retrying its messages one by one", extra={"topic": self.topic.name}
            )
        handled = duplicates = 0
        letters: list[DeadLetter] = []
        for delivery in deliveries:
            outcome = await self._handle_alone(pool, delivery)
            if isinstance(outcome, DeadLetter):
                letters.append(outcome)
            elif outcome:
                handled += 1
            else:
                duplicates += 1
        return handled, duplicates, letters

    async def _handle_alone(self, pool: asyncpg.Pool, delivery: Delivery) -> bool | DeadLetter:
        """Handle one message in its own transaction; True handled, False duplicate."""
        error: Exception | None = None
        attempt = 0
        for attempt in range(1, self.settings.handler_max_attempts + 1):
            try:
                with counted_on_commit():
                    async with pool.acquire() as connection, connection.transaction():
                        fresh = await self._claim(connection, [delivery])
                        await self._apply(connection, fresh)
                return bool(fresh)
            except Exception as exc:
                if is_transient(exc):
                    raise
                error = exc
                if isinstance(exc, PermanentError):
                    break
                MESSAGES_FAILED.labels(self.service, self.topic.name).inc()
                log.warning(
                    "handling failed",
                    extra={"event_id": delivery.event.id, "attempt": attempt, "error": repr(exc)},
                )
                await asyncio.sleep(0.05 * attempt)
        assert error is not None
        return DeadLetter(
            delivery.record, type(error).__name__, str(error) or repr(error), attempts=attempt
        )

    async def _claim(self, connection: DbConnection, deliveries: list[Delivery]) -> list[Delivery]:
        if not self.inbox:
            return deliveries  # the handler's own key makes the same event twice one effect
        rows = await connection.fetch(
            "INSERT INTO inbox (event_id, topic) SELECT unnest($1::text[]), $2"
            " ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
            [d.inbox_key for d in deliveries],
            self.topic.name,
        )
        claimed = {row["event_id"] for row in rows}
        return [d for d in deliveries if d.inbox_key in claimed]

    async def _apply(self, connection: DbConnection, fresh: list[Delivery]) -> None:
        if not fresh:
            return
        unit = UnitOfWork(connection)
        first = fresh[0].event
        with log_context(event_id=first.id, csn=first.subject, batch=len(fresh)):
            await self.handler(unit, fresh)
        await unit.outbox.flush(connection)


def header_type(headers: Sequence[tuple[str, bytes | None]] | None) -> str | None:
    """The CloudEvents type the record's `ce-type` header names (the outbox writes it), or None
    when it has none readable. Only a hint: the body's `type` is the one that counts."""
    for name, value in headers or ():
        if name == TYPE_HEADER:
            try:
                return value.decode() if value else None
            except UnicodeDecodeError:
                return None
    return None


async def _tolerant_batch_parser(
    records: tuple[Any, ...], original: Callable[[tuple[Any, ...]], Awaitable[KafkaMessage]]
) -> KafkaMessage:
    """FastStream's batch parser, shown the batch's first record only.

    It decodes every header value of every record as UTF-8 for its own `message.headers` and
    `batch_headers`, which nothing here reads: a header without value, or of other bytes, would
    fail the whole batch before the consumer saw it, for ever; and it cost ~7 µs a message
    (bench/message_cost.py). It gets a readable copy of the first record, which is all it needs
    to make the message (the consumer it commits with); the message then carries every record
    as it came: the consumer reads them (a dead letter keeps the original headers), and a nack
    seeks each partition back to its first offset in them."""
    first = records[0]
    message = await original(
        (dataclasses.replace(first, headers=_readable_headers(first.headers)),)
    )
    message.raw_message = records
    message.body = [record.value or b"" for record in records]
    message.message_id = f"{first.offset}-{records[-1].offset}-{first.timestamp}"
    return message


def _readable_headers(headers: Sequence[tuple[str, bytes | None]]) -> tuple[tuple[str, bytes], ...]:
    return tuple(
        (name, (value or b"").decode(errors="replace").encode()) for name, value in headers or ()
    )


async def _raw_values(message: KafkaMessage) -> list[Any]:
    # Leave the bytes alone: each record is validated by the consumer, not by FastStream.
    return [record.value for record in message.raw_message]
