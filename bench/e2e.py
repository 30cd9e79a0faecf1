"""The end-to-end run: every service as its own OS process, renewals through the whole flow.

renewal.requested → renewal (records the request) → bulk worker (orders) → billing (charges)
→ renewal (renews) → notification (queues, sends over SMTP) → email.sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition

from bench import procstat
from bench import smtp as mail
from bench.smtp import SmtpSink, free_port
from deploy.local import samples
from deploy.local.client import TopicWatcher, UpstreamClient
from deploy.local.launcher import REPO_ROOT, SERVICES, ServiceProcess, running_services
from shared import local_secrets
from shared.contracts import topics
from shared.db.settings import DatabaseSettings
from shared.messaging.credentials import client_options

Progress = Callable[[str], None]
LOG_DIR = REPO_ROOT / ".local" / "bench" / "logs"
PUBLISH_CHUNK = 500
IDLE_SECONDS = 2.0
# Renewal dates for which nothing else is due today: reminders go 90, 30 and 7 days before
# (the one 90 days before is already past when the subscription arrives), automatic quotes 30.
QUIET_DAYS = (45,)
# Dates that also make reminders and automatic quotes due, as real subscriptions' do.
BUSY_DAYS = (30, 7)

# The flow's visible steps, in order: (topic, CloudEvent type, what the step did, by whom).
STAGES = (
    (topics.BILLING_COMMANDS.name, "order.requested", "recorded + ordered", "renewal, bulk_worker"),
    (topics.BILLING_EVENTS.name, "payment.succeeded", "charged", "billing"),
    (topics.RENEWAL_EVENTS.name, "subscription.renewed", "renewed", "renewal"),
    (topics.NOTIFICATION_EVENTS.name, "email.sent", "emailed", "notification"),
)
MACHINE = "machine"
OTHERS = "anything else on the machine"
KAFKA = "kafka broker"
POSTGRES = "postgresql: the services' backends"
POSTGRES_SHARED = "postgresql: WAL writer, checkpointer... (shared)"
BENCH = "bench (this process)"
SMTP_SINK = "smtp sink (bench/smtp_sink.py)"
CONFIRMATION = b'"kind":"order_confirmation"'
FAILURES = {"renewal.rejected", "payment.failed", "payment.rejected", "email.failed"}


class DevStackRunning(RuntimeError):
    pass


class TimedWatcher(TopicWatcher):
    """A TopicWatcher that keeps, for each record, when it arrived here, its key and type."""

    def __init__(self, bootstrap: str, watched: list[Any]) -> None:
        super().__init__(bootstrap, watched)
        self.arrivals: list[tuple[float, bytes | None, str | None]] = []

    async def _collect(self) -> None:
        assert self._consumer is not None
        while True:
            batches = await self._consumer.getmany(timeout_ms=100, max_records=5000)
            now = time.monotonic()
            for records in batches.values():
                for r in records:
                    kind = next((v.decode() for k, v in r.headers or () if k == "ce-type"), None)
                    if kind == "email.sent" and r.value and CONFIRMATION not in r.value:
                        kind = "email.sent (not a confirmation)"  # a reminder, a quote...
                    self.arrivals.append((now, r.key, kind))


@dataclass
class Stage:
    name: str
    by: str
    event_type: str
    count: int = 0
    first_s: float | None = None  # after the first command was published
    last_s: float | None = None
    step_ms: list[float] = field(default_factory=list)  # this stage's time minus the previous one's

    @property
    def rate(self) -> float | None:
        if self.count < 2 or self.first_s is None or self.last_s is None:
            return None
        return self.count / max(self.last_s - self.first_s, 1e-3)


@dataclass
class ServiceCost:
    name: str
    pid: int
    cpu_seconds: float
    idle_cpu_share: float  # of one core, measured before the timed part
    peak_rss_mib: float | None
    handlers: dict[str, dict[str, float]] = field(default_factory=dict)
    outbox_published: float = 0.0


@dataclass
class E2EResult:
    subscriptions: int
    complete: bool
    seconds: float
    publish_seconds: float
    emails_sent: int
    smtp_received: int
    latencies_ms: list[float]
    services: list[ServiceCost]
    infra_cpu: dict[str, float]
    stages: list[Stage]
    failures: dict[str, int]
    setup_seconds: float
    idle_cpu: dict[str, float]  # share of one core per process while the stack waited
    mail: mail.MailCheck | None = None
    per_request: int = 1

    @property
    def rate(self) -> float:
        return self.emails_sent / self.seconds if self.seconds else 0.0


def admin_settings() -> dict[str, Any]:
    """The superuser of `make infra-up`'s database (the bench looks into every schema)."""
    database = DatabaseSettings()
    return {
        "host": database.host,
        "port": database.port,
        "database": database.database,
        "user": "postgres",
        "password": local_secrets.database_password("postgres") or "",  # the secrets file's
    }


async def admin_connect() -> asyncpg.Connection:
    return await asyncpg.connect(**admin_settings())


@contextlib.contextmanager
def service_stack(
    env: dict[str, str], progress: Progress, log_dir: Path = LOG_DIR
) -> Iterator[dict[str, ServiceProcess]]:
    already = running_services()
    if already:
        raise DevStackRunning(
            f"the services of `make run` are running ({', '.join(already)}): they would share"
            " the consumer groups with the bench's own services and take part of its work."
            " Stop them with `make stop`, then run `make bench` again."
        )
    shutil.rmtree(log_dir, ignore_errors=True)
    # Test clocks on in every stack the bench starts: the engine phase moves its CSNs' clocks.
    env = {"RENEWALS_TEST_CLOCKS_ENABLED": "true", **env}
    services = {
        spec.name: ServiceProcess(spec, env=env, log_dir=log_dir, http_port=free_port())
        for spec in SERVICES
    }
    try:
        started = time.monotonic()
        for service in services.values():
            service.start()
        for service in services.values():
            service.wait_ready(timeout=90)
        progress(
            f"services: {len(services)} processes ready in {time.monotonic() - started:.1f} s"
            f" (logs in {log_dir.relative_to(REPO_ROOT)}/)"
        )
        yield services
    finally:
        for service in services.values():
            if service.process is not None and service.process.poll() is None:
                service.process.terminate()
        for service in services.values():
            service.stop()


async def _count_stored(connection: asyncpg.Connection, csns: list[str]) -> tuple[int, int]:
    stored = await connection.fetchval(
        "SELECT count(*) FROM renewal.subscriptions WHERE csn = ANY($1::text[])", csns
    )
    priced = await connection.fetchval(
        "SELECT count(*) FROM renewal.prices"
        " WHERE product_code = 'ACDLT' AND term = 'annual' AND currency = 'USD'"
        " AND renewal_price = 420.00"
    )
    return int(stored), int(priced)


BACKLOG_QUERIES = {
    "outbox rows": "SELECT (SELECT count(*) FROM renewal.outbox) + (SELECT count(*) FROM"
    " billing.outbox) + (SELECT count(*) FROM notification.outbox)"
    " + (SELECT count(*) FROM quote.outbox)",
    "pending renewal requests": "SELECT count(*) FROM renewal.renewal_batches"
    " WHERE status = 'pending'",
    "pending emails": "SELECT count(*) FROM notification.emails WHERE status = 'pending'",
}


async def _backlog(connection: asyncpg.Connection) -> dict[str, int]:
    return {name: int(await connection.fetchval(sql)) for name, sql in BACKLOG_QUERIES.items()}


async def _end_offsets(bootstrap: str, names: list[str]) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(**client_options(bootstrap), enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        partitions = [
            TopicPartition(name, p)
            for name in names
            for p in sorted(consumer.partitions_for_topic(name) or ())
        ]
        return dict(await consumer.end_offsets(partitions))
    finally:
        await consumer.stop()


async def _read_range(
    bootstrap: str, start: dict[TopicPartition, int], end: dict[TopicPartition, int]
) -> list[tuple[str, bytes | None, str | None, int]]:
    """(topic, key, ce-type, timestamp ms) of every record between two offset snapshots."""
    wanted = {
        tp: (start.get(tp, 0), offset) for tp, offset in end.items() if offset > start.get(tp, 0)
    }
    if not wanted:
        return []
    consumer = AIOKafkaConsumer(**client_options(bootstrap), enable_auto_commit=False)
    await consumer.start()
    found: list[tuple[str, bytes | None, str | None, int]] = []
    try:
        consumer.assign(list(wanted))
        for tp, (first, _) in wanted.items():
            consumer.seek(tp, first)
        remaining = set(wanted)
        deadline = time.monotonic() + 60
        while remaining and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500, max_records=10000)
            for tp, records in batches.items():
                for r in records:
                    if r.offset < wanted[tp][1]:
                        kind = next(
                            (v.decode() for k, v in r.headers or () if k == "ce-type"), None
                        )
                        if kind == "email.sent" and r.value and CONFIRMATION not in r.value:
                            kind = "email.sent (not a confirmation)"
                        found.append((r.topic, r.key, kind, r.timestamp))
                if records and records[-1].offset >= wanted[tp][1] - 1:
                    remaining.discard(tp)
                    consumer.pause(tp)
    finally:
        await consumer.stop()
    return found


def _stages(
    records: list[tuple[str, bytes | None, str | None, int]],
    published_wall: dict[str, float],
    first_wall: float,
) -> tuple[list[Stage], dict[str, int]]:
    firsts: dict[tuple[str, str], float] = {}
    failures: dict[str, int] = {}
    for topic, key, kind, timestamp_ms in records:
        csn = key.decode() if key else ""
        if csn not in published_wall:
            continue
        if kind in FAILURES:
            failures[kind] = failures.get(kind, 0) + 1
        moment = timestamp_ms / 1000
        slot = (f"{topic}:{kind}", csn)
        if slot not in firsts or moment < firsts[slot]:
            firsts[slot] = moment
    stages = []
    previous: dict[str, float] = published_wall
    for topic, kind, name, by in STAGES:
        stage = Stage(name, by, kind)
        moments: dict[str, float] = {}
        for csn in published_wall:
            first = firsts.get((f"{topic}:{kind}", csn))
            if first is None:
                continue
            moments[csn] = first
            if csn in previous:
                stage.step_ms.append((first - previous[csn]) * 1000)
        if moments:
            stage.count = len(moments)
            stage.first_s = min(moments.values()) - first_wall
            stage.last_s = max(moments.values()) - first_wall
        stages.append(stage)
        previous = moments
    return stages, failures


async def run(
    bootstrap: str,
    count: int,
    *,
    progress: Progress,
    timeout: float,
    extra_env: dict[str, str],
    per_request: int = 1,
    pace_per_s: float | None = None,
    renewal_in_days: tuple[int, ...] = QUIET_DAYS,
) -> E2EResult:
    """`count` renewal requests of `per_request` subscriptions each (one CSN per request),
    published at once or `pace_per_s` a second; renewal dates `renewal_in_days` from today,
    in turn (QUIET_DAYS: no reminder or automatic quote is due for them)."""
    setup_started = time.monotonic()
    csns = [samples.unique_csn("BENCH") for _ in range(count)]
    plan = {csn: [f"{csn}-SUB-{i + 1}" for i in range(per_request)] for csn in csns}
    buyers = {samples.buyer_of(csn).email for csn in csns}
    stage_topics = sorted({topic for topic, *_ in STAGES})
    with SmtpSink(buyers, LOG_DIR.parent) as smtp:  # the stack clears LOG_DIR
        env = {"RENEWALS_NOTIFICATION_SMTP_PORT": str(smtp.port), **extra_env}
        progress(f"smtp: the sink (pid {smtp.pid}) on 127.0.0.1:{smtp.port}")
        with service_stack(env, progress) as services:
            pids = {name: s.process.pid for name, s in services.items() if s.process}
            sink = smtp.pid
            async with UpstreamClient(bootstrap) as client:
                await _setup(client, plan, renewal_in_days, progress)
                idle = await _idle_cpu(pids, sink, progress)
                commands = [
                    samples.event(samples.renewal_request(csn, ids), subject=csn)
                    for csn, ids in plan.items()
                ]
                offsets_before = await _end_offsets(bootstrap, stage_topics)
                metrics_before = {n: procstat.scrape(s.port) for n, s in services.items()}
                cpu_before = _cpu_snapshot(pids, sink)
                setup_seconds = time.monotonic() - setup_started
                timed = await _timed(
                    bootstrap, client, commands, smtp, services, timeout, progress, pace_per_s
                )
                cpu = _cpu_delta(cpu_before, _cpu_snapshot(pids, sink))
                metrics_after = {n: procstat.scrape(s.port) for n, s in services.items()}
                costs = [
                    ServiceCost(
                        name=name,
                        pid=pid,
                        cpu_seconds=cpu.pop(name),
                        idle_cpu_share=idle[name],
                        peak_rss_mib=procstat.peak_rss_mib(pid),
                        handlers=procstat.handler_stats(metrics_before[name], metrics_after[name]),
                        outbox_published=procstat.outbox_published(
                            metrics_before[name], metrics_after[name]
                        ),
                    )
                    for name, pid in pids.items()
                ]
                offsets_after = await _end_offsets(bootstrap, stage_topics)
            checked = mail.check(smtp.received())
    progress("analysis: reading the flow's intermediate events back from Kafka")
    records = await _read_range(bootstrap, offsets_before, offsets_after)
    stages, failures = _stages(records, timed.published_wall, timed.started_wall)
    return E2EResult(
        subscriptions=count,
        complete=timed.complete,
        seconds=timed.seconds,
        publish_seconds=timed.publish_seconds,
        emails_sent=len(timed.sent),
        smtp_received=timed.smtp_received,
        latencies_ms=sorted(
            (arrived - timed.published[csn]) * 1000 for csn, arrived in timed.sent.items()
        ),
        services=costs,
        infra_cpu=cpu,
        stages=stages,
        failures=failures,
        setup_seconds=setup_seconds,
        idle_cpu=idle,
        mail=checked,
        per_request=per_request,
    )


async def _setup(
    client: UpstreamClient,
    plan: dict[str, list[str]],
    renewal_in_days: tuple[int, ...],
    progress: Progress,
) -> None:
    """Not timed: the price and the subscriptions, until renewal has stored them all."""
    await client.send(topics.CATALOG_EVENTS, samples.event(samples.price(), subject="ACDLT"))
    dates = [date.today() + timedelta(days=days) for days in renewal_in_days]
    upserts = [
        samples.event(
            samples.subscription(sid, csn, renewal_date=dates[n % len(dates)]), subject=csn
        )
        for n, (csn, ids) in enumerate(plan.items())
        for sid in ids
    ]
    for first in range(0, len(upserts), 1000):
        await client.send_many(topics.SUBSCRIPTION_EVENTS, upserts[first : first + 1000])
    progress(
        f"setup: published 1 price and {len(upserts):,} subscription.upserted (renewal dates"
        f" {', '.join(f'+{d}' for d in renewal_in_days)} days)"
    )
    admin = await admin_connect()
    try:
        await _wait_stored(admin, list(plan), progress, expected=len(upserts))
        await _wait_quiet(admin, progress)
    finally:
        await admin.close()


async def _idle_cpu(pids: dict[str, int], sink: int, progress: Progress) -> dict[str, float]:
    """What each process burns while the stack has nothing to do (share of one core)."""
    before = _cpu_snapshot(pids, sink)
    await asyncio.sleep(IDLE_SECONDS)
    after = _cpu_snapshot(pids, sink)
    idle = {k: v / IDLE_SECONDS for k, v in _cpu_delta(before, after).items()}
    progress(
        f"setup: the idle stack uses {sum(idle[n] for n in pids):.0%} of a core (services),"
        f" Kafka {idle.get(KAFKA, 0):.0%}, PostgreSQL {idle.get(POSTGRES, 0):.0%};"
        f" other work on the machine {idle[OTHERS]:.0%}"
    )
    return idle


@dataclass
class Timed:
    published: dict[str, float]  # CSN → monotonic publish time
    published_wall: dict[str, float]  # CSN → wall-clock publish time (for record timestamps)
    started_wall: float
    publish_seconds: float
    sent: dict[str, float]  # CSN → monotonic arrival of its email.sent
    smtp_received: int
    complete: bool
    seconds: float


async def _timed(
    bootstrap: str,
    client: UpstreamClient,
    commands: list[Any],
    smtp: SmtpSink,
    services: dict[str, ServiceProcess],
    timeout: float,
    progress: Progress,
    pace_per_s: float | None = None,
) -> Timed:
    """Publish the commands (as fast as possible, or `pace_per_s` a second); wait for every
    confirmation's email.sent and SMTP message."""
    published: dict[str, float] = {}
    published_wall: dict[str, float] = {}
    chunk_size = 1 if pace_per_s else PUBLISH_CHUNK
    async with TimedWatcher(bootstrap, [topics.NOTIFICATION_EVENTS]) as watcher:
        progress(
            f"timed: publishing {len(commands):,} renewal.requested"
            + (f", {pace_per_s:.2f} a second" if pace_per_s else "")
        )
        started, started_wall = time.monotonic(), time.time()
        for first in range(0, len(commands), chunk_size):
            if pace_per_s:
                await asyncio.sleep(max(0.0, started + first / pace_per_s - time.monotonic()))
            chunk = commands[first : first + chunk_size]
            now, wall = time.monotonic(), time.time()
            for event in chunk:
                published[event.subject] = now
                published_wall[event.subject] = wall
            await client.send_many(topics.RENEWAL_COMMANDS, chunk)
        publish_seconds = time.monotonic() - started
        progress(
            f"timed: {len(commands):,} commands published in {publish_seconds:.2f} s;"
            " waiting for email.sent and SMTP"
        )
        sent, complete = await _wait_done(
            watcher, smtp, services, published, started, timeout, progress
        )
    stats = smtp.stats()
    last_email = [stats["last_confirmation"]] if stats["last_confirmation"] else []
    ended = max([*sent.values(), *last_email]) if complete else time.monotonic()
    return Timed(
        published=published,
        published_wall=published_wall,
        started_wall=started_wall,
        publish_seconds=publish_seconds,
        sent=sent,
        smtp_received=int(stats["watched_confirmations"]),
        complete=complete,
        seconds=ended - started,
    )


@dataclass(frozen=True)
class CpuSnapshot:
    processes: dict[str, float]  # name → CPU seconds
    postgres: dict[int, float]  # PostgreSQL backend serving our services → CPU seconds
    postgres_shared: dict[int, float]  # PostgreSQL background process → CPU seconds
    machine: float  # the whole machine's busy CPU seconds


def _cpu_snapshot(pids: dict[str, int], sink: int | None = None) -> CpuSnapshot:
    processes = {name: procstat.cpu_seconds(pid) or 0.0 for name, pid in pids.items()}
    if sink:
        processes[SMTP_SINK] = procstat.cpu_seconds(sink) or 0.0
    kafka = procstat.infra_pid("kafka")
    if kafka:
        processes[KAFKA] = procstat.cpu_seconds(kafka) or 0.0
    processes[BENCH] = procstat.cpu_seconds(os.getpid()) or 0.0
    postmaster = procstat.infra_pid("postgres")
    ours, shared = (
        procstat.postgres_cpu(postmaster, pids.values(), admin_settings()["port"])
        if postmaster
        else ({}, {})
    )
    return CpuSnapshot(processes, ours, shared, procstat.machine_busy_seconds())


def _cpu_delta(before: CpuSnapshot, after: CpuSnapshot) -> dict[str, float]:
    """CPU seconds per process between two snapshots, and what the rest of the machine used."""
    delta = {k: v - before.processes.get(k, 0.0) for k, v in after.processes.items()}
    if after.postgres_shared:
        # A backend opened in between counts from zero; one closed in between is lost (small).
        delta[POSTGRES] = sum(v - before.postgres.get(p, 0.0) for p, v in after.postgres.items())
        delta[POSTGRES_SHARED] = sum(
            v - before.postgres_shared.get(p, 0.0) for p, v in after.postgres_shared.items()
        )
    delta[OTHERS] = max(0.0, after.machine - before.machine - sum(delta.values()))
    return delta


async def _wait_stored(
    admin: asyncpg.Connection,
    csns: list[str],
    progress: Progress,
    expected: int | None = None,
    timeout: float = 120.0,
) -> None:
    """Until renewal stored `expected` subscriptions of these CSNs (one each by default)."""
    wanted = len(csns) if expected is None else expected
    deadline = time.monotonic() + timeout
    last_report = 0.0
    while True:
        stored, priced = await _count_stored(admin, csns)
        if stored >= wanted and priced:
            progress(f"setup: renewal stored {stored:,}/{wanted:,} subscriptions and the price")
            return
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"renewal stored only {stored:,}/{wanted:,} subscriptions"
                f" (price stored: {bool(priced)}) after {timeout:.0f} s;"
                f" see renewal.log under {LOG_DIR.parent}/"
            )
        if time.monotonic() - last_report > 2:
            progress(f"setup: renewal stored {stored:,}/{wanted:,} subscriptions")
            last_report = time.monotonic()
        await asyncio.sleep(0.1)


async def _wait_quiet(admin: asyncpg.Connection, progress: Progress) -> None:
    """Work left over from an earlier, interrupted run would compete with the timed part."""
    deadline = time.monotonic() + 60
    while True:
        backlog = await _backlog(admin)
        if not any(backlog.values()):
            return
        if time.monotonic() > deadline:
            progress(f"warning: backlog from earlier runs still there, timing anyway: {backlog}")
            return
        progress(f"setup: waiting for earlier work to drain: {backlog}")
        await asyncio.sleep(1)


async def _wait_done(
    watcher: TimedWatcher,
    smtp: SmtpSink,
    services: dict[str, ServiceProcess],
    published: dict[str, float],
    started: float,
    timeout: float,
    progress: Progress,
) -> tuple[dict[str, float], bool]:
    """Until every command has its email.sent and the SMTP server got every email."""
    count = len(published)
    sent: dict[str, float] = {}
    scanned = received = 0
    last_report = time.monotonic()
    while True:
        arrivals = watcher.arrivals
        for arrived, key, kind in arrivals[scanned:]:
            if kind == "email.sent" and key is not None:
                csn = key.decode()
                if csn in published and csn not in sent:
                    sent[csn] = arrived
        scanned = len(arrivals)
        now = time.monotonic()
        all_sent = len(sent) >= count
        timed_out = now - started > timeout
        report = now - last_report >= 2
        # The sink is asked (a round trip to its process) once its count can end the wait, or
        # for the progress line: asked every turn, 50 times a second, it cost the bench and the
        # sink CPU the services then lacked. Its count cannot end the wait before every
        # email.sent came, and its last arrival is read off the sink afterwards, not timed here.
        if all_sent or report or timed_out:
            received = smtp.confirmations
        if all_sent and received >= count:
            progress(
                f"timed: {len(sent):,}/{count:,} email.sent, {received:,}/{count:,} SMTP messages"
                f" after {now - started:.1f} s"
            )
            return sent, True
        dead = [
            f"{name} (exit {s.process.returncode}, log {s.log_path})"
            for name, s in services.items()
            if s.process is not None and s.process.poll() is not None
        ]
        if dead:
            raise RuntimeError(f"service process died during the timed part: {', '.join(dead)}")
        if timed_out:
            progress(
                f"timed: GAVE UP after {timeout:.0f} s: {len(sent):,}/{count:,} email.sent,"
                f" {received:,}/{count:,} SMTP messages"
            )
            return sent, False
        if report:
            progress(
                f"timed: {len(sent):,}/{count:,} email.sent, {received:,}/{count:,} SMTP messages"
                f" after {now - started:.1f} s"
            )
            last_report = now
        await asyncio.sleep(0.02)
