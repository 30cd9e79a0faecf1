"""One service process: its broker, pool, consumers, outbox relay, background loops and HTTP.

Each service's `create_app(settings)` builds a `ServiceRuntime`, registers its consumers and
loops on it, and returns `runtime.build_app()`: the FastStream app that `python -m` runs.
At start it serves `/live` at once, then waits for PostgreSQL and Kafka (shared/messaging/
waiting.py) however long they are down; `/ready` says `database` only while a `SELECT 1`
through the pool succeeded lately (the metrics loop checks it every few seconds).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any, Union

import asyncpg
from faststream import FastStream
from faststream.specification import AsyncAPI

from shared.contracts.envelope import EventRegistry
from shared.contracts.topics import Topic
from shared.db.migrate import apply_migrations
from shared.db.pool import close_pool
from shared.db.settings import DatabaseSettings
from shared.messaging.broker import BrokerSender, create_broker
from shared.messaging.consumer import BatchHandler, EventConsumer, PoolHolder
from shared.messaging.credentials import client_options
from shared.messaging.loops import WorkLoop
from shared.messaging.outbox import OutboxRelay
from shared.messaging.principals import signers_of
from shared.messaging.settings import MessagingSettings
from shared.messaging.signing import SignatureVerifier
from shared.plumbing.collector import tune_garbage_collector
from shared.plumbing.faults import FaultPoints
from shared.plumbing.http import HealthServer
from shared.plumbing.logs import configure_logging
from shared.plumbing.metrics import sample_backlogs
from shared.plumbing.otlp import PublishedSpans
from shared.plumbing.waiting import kafka_when_up, pool_when_up

log = logging.getLogger(__name__)

Loop = Callable[[], Coroutine[Any, Any, None]]
# A WorkLoop built once the pool exists (the loops of the services work on its rows).
# Builds a service's loop(s) from its pool, which only exists once the service has started.
LoopFactory = Callable[[asyncpg.Pool], WorkLoop | list[WorkLoop]]


class ServiceRuntime:
    def __init__(
        self, service: str, messaging: MessagingSettings, database: DatabaseSettings
    ) -> None:
        self.service = service
        self.messaging = messaging
        self.database = database
        self.broker = create_broker(messaging, client_id=service)
        self.pools = PoolHolder()
        self.faults = FaultPoints(messaging.faults, messaging.faults_after)
        self.consumers: list[EventConsumer] = []
        self.loops: dict[str, Loop] = {}
        self.work_loops: list[WorkLoop] = []
        self._loop_factories: list[LoopFactory] = []
        self.relay: OutboxRelay | None = None
        self.health: HealthServer | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._running = False
        self._database_answered_at: float | None = None  # time.monotonic() of the last SELECT 1
        # The schema's migrations to apply at start: the bulk worker works renewal's schema.
        self.migrations_of = service

    def consume(
        self,
        topic: Topic,
        registry: EventRegistry,
        handler: BatchHandler,
        *,
        signed: bool = False,
        inbox: bool = True,
    ) -> None:
        """`signed`: a command topic several upstream systems write; each record's signature is
        verified (shared/messaging/signing.py) and its handler is told who sent it.
        `inbox=False`: the handler is idempotent by a key of its own — following
        `subscription.state`, the newest version wins and an older or equal one changes nothing
        (shared/state_following.py) — so the same event twice is one effect without an inbox
        row: the row would cost an insert into a table that grows with every message (two
        states a renewal, in each follower; issue 19) to skip what the handler skips anyway."""
        consumer = EventConsumer(
            service=self.service,
            topic=topic,
            registry=registry,
            # One group per service and topic: a new subscriber never rebalances the others.
            group_id=f"{self.service}.{topic.name}",
            handler=handler,
            pools=self.pools,
            settings=self.messaging,
            faults=self.faults,
            verifier=SignatureVerifier(topic.name, signers_of(topic.name)) if signed else None,
            inbox=inbox,
        )
        consumer.register(self.broker)
        self.consumers.append(consumer)

    def produces(self, topic: Topic, registry: EventRegistry) -> None:
        """Declare a topic this service publishes to (through its outbox), for the AsyncAPI
        document: the relay publishes raw bytes, so the contract's models are named here."""
        schema = Union[tuple(registry.envelopes())]  # type: ignore[valid-type]  # noqa: UP007
        self.broker.publisher(
            topic.name,
            title=f"{self.service}:{topic.name}:publish",
            description=f"{self.service} publishes to {topic.name} through its outbox.",
            schema=schema,
        )

    def loop(self, name: str, body: Loop) -> None:
        """A background loop (a relay, a scheduler) started once the broker is connected."""
        self.loops[name] = body

    def work(self, loop: WorkLoop | LoopFactory) -> None:
        """A background `WorkLoop` (shared/messaging/loops.py), or a function that builds one
        from the service's pool, started with the others; its liveness is part of `/live`."""
        if isinstance(loop, WorkLoop):
            self.work_loops.append(loop)
        else:
            self._loop_factories.append(loop)

    def readiness(self) -> dict[str, bool]:
        return {
            "started": self._running,
            "database": self.database_answered_lately(),
            "outbox_relay": self.relay is not None and self.relay.healthy,
            "loops": all(not task.done() for task in self._tasks),
            "partitions_assigned": all(consumer.assigned for consumer in self.consumers),
        }

    def database_answered_lately(self) -> bool:
        answered = self._database_answered_at
        # Three samples missed (or 10 s): the database is away, whatever the pool object says.
        limit = max(3 * self.messaging.metrics_sample_seconds, 10.0)
        return answered is not None and time.monotonic() - answered < limit

    async def check_database(self) -> None:
        """A real round trip through the pool; readiness remembers when it last succeeded."""
        await self.pools.get().fetchval("SELECT 1")
        self._database_answered_at = time.monotonic()

    def liveness(self) -> dict[str, bool]:
        """`/live`: every background loop still running and none stuck in a step. Before the
        loops start (migrations, connecting) the process counts as live."""
        if not self._running:
            return {"process": True}
        return {
            **{loop.name: loop.alive for loop in self.work_loops},
            **{task.get_name(): not task.done() for task in self._tasks},
        }

    def build_app(self) -> FastStream:
        app = FastStream(
            self.broker,
            specification=AsyncAPI(
                title=f"renewals {self.service} service",
                version="0.1.0",
                schema_version="3.0.0",
            ),
        )
        app.on_startup(self._open)
        app.after_startup(self._start_loops)
        # Loops stop before the broker, the pool after it: a batch in flight can still commit.
        app.on_shutdown(self._stop_loops)
        app.after_shutdown(self._close)
        return app

    async def _open(self) -> None:
        configure_logging(self.service, self.messaging.log_level)
        # Live (not ready) while it waits: a supervisor must not kill a service waiting for
        # its database.
        self.health = HealthServer(
            self.messaging.http_host, self.messaging.http_port, self.readiness, self.liveness
        )
        port = await self.health.start()
        log.info("http listening", extra={"url": f"http://{self.messaging.http_host}:{port}"})
        pool = await pool_when_up(self.database)
        async with pool.acquire() as connection:
            applied = await apply_migrations(
                connection, self.database.schema_name, self.migrations_of
            )
        if applied:
            log.info("migrations applied", extra={"migrations": applied})
        self.pools.pool = pool
        await self.check_database()
        # FastStream connects the broker after this hook, and exits if that fails: wait here.
        await kafka_when_up(
            self.messaging.kafka_bootstrap,
            self.service,
            client_options(service=self.service, settings=self.messaging),
        )
        self.relay = OutboxRelay(
            pool,
            BrokerSender(self.broker),
            service=self.service,
            schema=self.database.schema_name,
            batch_size=self.messaging.outbox_batch_size,
            poll_seconds=self.messaging.outbox_poll_seconds,
            faults=self.faults,
            spans=self._published_spans(),
        )

    def _published_spans(self) -> PublishedSpans | None:
        endpoint = self.messaging.otlp_endpoint
        if not endpoint:
            return None
        log.info("exporting spans over OTLP", extra={"endpoint": endpoint})
        return PublishedSpans.to_endpoint(self.service, endpoint)

    async def _start_loops(self) -> None:
        assert self.relay is not None
        self.work_loops.insert(0, self.relay.loop)
        self.work_loops.insert(1, self._metrics_loop())
        for build in self._loop_factories:
            built = build(self.pools.get())
            self.work_loops += built if isinstance(built, list) else [built]
        self._tasks = [asyncio.create_task(body(), name=name) for name, body in self.loops.items()]
        self._tasks += [loop.start() for loop in self.work_loops]
        for task in self._tasks:
            task.add_done_callback(self._loop_ended)
        tune_garbage_collector(self.messaging.gc_young_threshold)
        self._running = True
        log.info("service started", extra={"consumers": [c.topic.name for c in self.consumers]})

    def _metrics_loop(self) -> WorkLoop:
        """Outbox backlog and age, consumer lag: gauges Prometheus alerts on (deploy/monitoring);
        and the database's answer, for readiness."""

        async def sample() -> int:
            await self.check_database()
            consumers = [
                (c.topic.name, getattr(c.subscriber, "consumer", None)) for c in self.consumers
            ]
            await sample_backlogs(self.service, self.pools.get(), consumers)
            return 0

        return WorkLoop(
            "metrics",
            sample,
            service=self.service,
            poll_seconds=self.messaging.metrics_sample_seconds,
        )

    def _loop_ended(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error(
                "background loop died", extra={"loop": task.get_name()}, exc_info=task.exception()
            )

    async def _stop_loops(self) -> None:
        self._running = False
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _close(self) -> None:
        if self.relay is not None and self.relay.spans is not None:
            self.relay.spans.shutdown()  # exports what is still buffered
        if self.health is not None:
            await self.health.stop()
        if self.pools.pool is not None:
            await close_pool(self.pools.pool)
