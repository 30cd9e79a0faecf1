"""The due-date engine's rate: many auto-renew subscriptions due on one day, renewed by the engine.

Setup (not timed): the CSNs' test clocks at the day before D = today + 20 days, then one price
and N `subscription.upserted` (auto-renew on, a valid card, renewal date D) spread over those
CSNs, until renewal stored them all and notification looked at their reminders (none left for
D: first seen after its last reminder day, D - 7). The timed part is then the renewal day's
work alone, as a day-by-day clock brings it. (Moved from today to D at once, the clocks made the
reminder scheduler look at 7,906 of 10,000 subscriptions during the timed part: reminders of
the week before, counted as the renewals' cost.)
Timed: `test_clock.set` today = D for each of those CSNs, then until every subscription's
`subscription.renewed` arrived on `renewal.events`:
    engine (claims due subscriptions, `order.requested`) → billing (`order.placed`,
    `payment.succeeded`) → renewal (`subscription.renewed`) → notification (an email).
The engine's own rate comes from renewal's `renewals_due_date_engine_total{outcome=
"auto_renewal_ordered"}` (sampled) and from the `order.requested` records read back from Kafka.
Exactly once: every subscription renewed, none twice, one automatic order each.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import asyncpg

from bench import e2e, procstat
from bench import smtp as mail
from bench.smtp import SmtpSink
from deploy.local import samples
from deploy.local.client import TopicWatcher, UpstreamClient
from deploy.local.launcher import ServiceProcess
from services.notification.reminders import NEXT_REMINDER
from shared.contracts import topics
from shared.contracts.clock_commands import SetTestClock

Progress = e2e.Progress
LOG_DIR = e2e.LOG_DIR.parent / "engine-logs"
DUE_IN_DAYS = 20
ENGINE_ORDERED = (
    "renewals_due_date_engine_total",
    (("outcome", "auto_renewal_ordered"), ("service", "renewal")),
)
SAMPLE_EVERY = 0.25
EMAIL_GRACE_SECONDS = 60.0
SETTLE_SECONDS = 3.0  # after the last renewal: long enough for a duplicate to show up

# The flow's visible steps after the clock moved: (topic, CloudEvent type, by whom).
STEPS = (
    (topics.BILLING_COMMANDS.name, "order.requested", "renewal (due-date engine)"),
    (topics.BILLING_EVENTS.name, "order.placed", "billing"),
    (topics.BILLING_EVENTS.name, "payment.succeeded", "billing"),
    (topics.RENEWAL_EVENTS.name, "subscription.renewed", "renewal"),
    (topics.NOTIFICATION_EVENTS.name, "email.sent", "notification"),
)
FAILURES = {
    "payment.failed",
    "payment.rejected",
    "subscription.lapsed",
    "subscription.expired",
    "email.failed",
}
# What N automatic renewals make each consumer handle: (service, topic) → messages per renewal.
EXPECTED_PER_RENEWAL = {
    ("billing", "billing.commands"): 1,
    ("renewal", "billing.events"): 2,  # order.placed and payment.succeeded
    ("notification", "renewal.events"): 1,
}


class RenewedWatcher(TopicWatcher):
    """Keeps, for each record: when it arrived here, its key, type and subscription_id."""

    def __init__(self, bootstrap: str, watched: list[Any]) -> None:
        super().__init__(bootstrap, watched)
        self.arrivals: list[tuple[float, bytes | None, str | None, str | None]] = []

    async def _collect(self) -> None:
        assert self._consumer is not None
        while True:
            batches = await self._consumer.getmany(timeout_ms=100, max_records=5000)
            now = time.monotonic()
            for records in batches.values():
                for r in records:
                    kind = next((v.decode() for k, v in r.headers or () if k == "ce-type"), None)
                    subscription_id = None
                    if kind == "subscription.renewed" and r.value:
                        subscription_id = json.loads(r.value)["data"].get("subscription_id")
                    self.arrivals.append((now, r.key, kind, subscription_id))


@dataclass
class Step:
    event_type: str
    by: str
    count: int = 0
    first_s: float | None = None  # after the clocks were published (record timestamps)
    last_s: float | None = None

    @property
    def rate(self) -> float | None:
        if self.count < 2 or self.first_s is None or self.last_s is None:
            return None
        return self.count / max(self.last_s - self.first_s, 1e-3)


@dataclass
class EngineResult:
    subscriptions: int
    csns: int
    due_on: date
    complete: bool
    seconds: float  # clocks published → last subscription.renewed arrived here
    renewed: int  # distinct subscriptions of the bench renewed
    renewed_events: int  # subscription.renewed records for the bench's CSNs (duplicates included)
    strangers: int  # subscription.renewed for a subscription id the bench did not create
    auto_orders: int  # rows in renewal.auto_renewals for the bench's subscriptions
    auto_orders_subscriptions: int  # distinct subscriptions among them
    max_attempt: int
    emails: int  # SMTP messages to the bench's buyers
    emails_seconds: float | None  # clocks published → last of the N emails
    engine_first_s: float | None  # metric: when the first automatic order was counted
    engine_done_s: float | None  # metric: when the N-th was
    engine_ordered: float  # metric delta over the timed part
    steps: list[Step]
    failures: dict[str, int]
    services_cpu: dict[str, float]
    infra_cpu: dict[str, float]
    handlers: dict[str, dict[str, dict[str, float]]]
    subscriptions_in_table: int
    mail: mail.MailCheck
    cpu_with_email: dict[str, float]
    clock_samples: list[tuple[float, float]] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.renewed / self.seconds if self.seconds else 0.0

    @property
    def duplicates(self) -> int:
        return self.renewed_events - self.renewed - self.strangers

    @property
    def exactly_once(self) -> bool:
        return (
            self.renewed == self.subscriptions
            and self.duplicates == 0
            and self.strangers == 0
            and self.auto_orders == self.subscriptions
            and self.auto_orders_subscriptions == self.subscriptions
        )

    @property
    def engine_rate(self) -> float | None:
        """Automatic orders per second, clocks published → the N-th counted (metric)."""
        if not self.engine_done_s:
            return None
        return self.subscriptions / self.engine_done_s

    @property
    def engine_busy_rate(self) -> float | None:
        """Automatic orders per second once it started: the first counted → the N-th (metric),
        leaving out the wait for the clocks to be stored and for the engine's next look."""
        if not self.engine_done_s or self.engine_first_s is None:
            return None
        return self.subscriptions / max(self.engine_done_s - self.engine_first_s, SAMPLE_EVERY)

    def pace(self, every: float = 2.0) -> list[tuple[float, float]]:
        """(seconds after the clocks, automatic orders per second in the `every` s before), from
        the sampled metric, until the N-th order: where the engine slowed down."""
        if not self.clock_samples:
            return []
        base = self.clock_samples[0][1]
        pace: list[tuple[float, float]] = []
        mark_t, mark_v = 0.0, base
        for t, v in self.clock_samples:
            if t - mark_t >= every:
                pace.append((t, (v - mark_v) / (t - mark_t)))
                mark_t, mark_v = t, v
                if v - base >= self.subscriptions:
                    break
        return pace

    def step(self, event_type: str) -> Step | None:
        return next((s for s in self.steps if s.event_type == event_type), None)

    def missing_work(self) -> list[str]:
        handled = {
            (service, topic): h.get("handled", 0) + h.get("duplicates", 0) + h.get("skipped", 0)
            for service, per_topic in self.handlers.items()
            for topic, h in per_topic.items()
        }
        missing = [
            f"{service} on {topic}: {handled.get((service, topic), 0):.0f} of {per * self.renewed:,}"
            for (service, topic), per in EXPECTED_PER_RENEWAL.items()
            if handled.get((service, topic), 0) < per * self.renewed
        ]
        if self.engine_ordered < self.auto_orders:
            missing.append(
                f"the bench's due-date engine ordered {self.engine_ordered:.0f} of"
                f" {self.auto_orders:,} automatic renewals"
            )
        return missing


def _plan(count: int, csn_count: int) -> dict[str, list[str]]:
    """CSN → its subscription ids: `count` subscriptions round-robin over `csn_count` CSNs."""
    csns = [samples.unique_csn("BENCHAUTO") for _ in range(max(1, min(csn_count, count)))]
    plan: dict[str, list[str]] = {csn: [] for csn in csns}
    for i in range(count):
        csn = csns[i % len(csns)]
        plan[csn].append(f"{csn}-SUB-{len(plan[csn]) + 1}")
    return plan


async def run(
    bootstrap: str,
    count: int,
    *,
    csn_count: int,
    progress: Progress,
    timeout: float,
    extra_env: dict[str, str],
) -> EngineResult:
    plan = _plan(count, csn_count)
    subscription_ids = {sid for ids in plan.values() for sid in ids}
    due_on = date.today() + timedelta(days=DUE_IN_DAYS)
    buyers = {samples.buyer_of(csn).email for csn in plan}
    step_topics = sorted({topic for topic, *_ in STEPS})
    with SmtpSink(buyers, LOG_DIR.parent) as smtp:  # the stack clears LOG_DIR
        env = {"RENEWALS_NOTIFICATION_SMTP_PORT": str(smtp.port), **extra_env}
        progress(f"engine: the SMTP sink (pid {smtp.pid}) on 127.0.0.1:{smtp.port}")
        with e2e.service_stack(env, progress, LOG_DIR) as services:
            pids = {name: s.process.pid for name, s in services.items() if s.process}
            async with UpstreamClient(bootstrap) as client:
                await _setup(client, plan, due_on, progress)
                admin = await e2e.admin_connect()
                try:
                    in_table = int(
                        await admin.fetchval("SELECT count(*) FROM renewal.subscriptions")
                    )
                finally:
                    await admin.close()
                clocks = [
                    samples.event(SetTestClock(csn=csn, today=due_on), subject=csn) for csn in plan
                ]
                offsets_before = await e2e._end_offsets(bootstrap, step_topics)
                metrics_before = {
                    n: await _scrape(s.port, progress, n) for n, s in services.items()
                }
                cpu_before = e2e._cpu_snapshot(pids, smtp.pid)
                async with RenewedWatcher(bootstrap, [topics.RENEWAL_EVENTS]) as watcher:
                    progress(
                        f"engine timed: publishing test_clock.set today={due_on} for"
                        f" {len(plan):,} CSNs ({count:,} subscriptions due that day)"
                    )
                    started, started_wall = time.monotonic(), time.time()
                    await client.send_many(topics.CLOCK_COMMANDS, clocks)
                    waited = await _wait_renewed(
                        watcher, smtp, services, plan, subscription_ids, started, timeout, progress
                    )
                # CPU until the last renewal (the emails that follow are not part of the rate).
                cpu = e2e._cpu_delta(
                    cpu_before, waited.cpu_at_done or e2e._cpu_snapshot(pids, smtp.pid)
                )
                # And until the last email: what a renewal costs, its confirmation included.
                cpu_with_email = e2e._cpu_delta(
                    cpu_before, waited.cpu_at_emails or e2e._cpu_snapshot(pids, smtp.pid)
                )
                metrics_after = {n: await _scrape(s.port, progress, n) for n, s in services.items()}
                offsets_after = await e2e._end_offsets(bootstrap, step_topics)
            admin = await e2e.admin_connect()
            try:
                orders = await admin.fetchrow(
                    "SELECT count(*) AS orders, count(DISTINCT subscription_id) AS subscriptions,"
                    " coalesce(max(attempt), 0) AS max_attempt FROM renewal.auto_renewals"
                    " WHERE subscription_id = ANY($1::text[])",
                    sorted(subscription_ids),
                )
            finally:
                await admin.close()
    assert orders is not None  # an aggregate without GROUP BY: always one row
    progress("engine analysis: reading the flow's events back from Kafka")
    records = await e2e._read_range(bootstrap, offsets_before, offsets_after)
    steps, failures = _steps(records, set(plan), started_wall)
    engine_ordered = metrics_after["renewal"].get(ENGINE_ORDERED, 0.0) - metrics_before[
        "renewal"
    ].get(ENGINE_ORDERED, 0.0)
    base = metrics_before["renewal"].get(ENGINE_ORDERED, 0.0)
    engine_first = next((t for t, v in waited.samples if v > base), None)
    engine_done = next((t for t, v in waited.samples if v - base >= count), None)
    return EngineResult(
        subscriptions=count,
        csns=len(plan),
        due_on=due_on,
        complete=waited.complete,
        seconds=waited.seconds,
        renewed=len(waited.renewed),
        renewed_events=waited.renewed_events,
        strangers=waited.strangers,
        auto_orders=int(orders["orders"]),
        auto_orders_subscriptions=int(orders["subscriptions"]),
        max_attempt=int(orders["max_attempt"]),
        emails=waited.emails,
        emails_seconds=waited.emails_seconds,
        engine_first_s=engine_first,
        engine_done_s=engine_done,
        engine_ordered=engine_ordered,
        steps=steps,
        failures=failures,
        services_cpu={name: cpu.pop(name) for name in pids},
        infra_cpu=cpu,
        handlers={
            name: procstat.handler_stats(metrics_before[name], metrics_after[name])
            for name in services
        },
        subscriptions_in_table=in_table,
        mail=waited.mail,
        cpu_with_email=cpu_with_email,
        clock_samples=waited.samples,
    )


async def _setup(
    client: UpstreamClient, plan: dict[str, list[str]], due_on: date, progress: Progress
) -> None:
    """Not timed: the CSNs' clocks at the day before, the price and the subscriptions, until
    renewal has stored them all and notification has looked at their reminders."""
    eve = due_on - timedelta(days=1)
    admin = await e2e.admin_connect()
    try:
        await client.send_many(
            topics.CLOCK_COMMANDS,
            [samples.event(SetTestClock(csn=csn, today=eve), subject=csn) for csn in plan],
        )
        await _wait_clocks(admin, list(plan), eve)
        progress(f"engine setup: the {len(plan):,} CSNs' test clocks at {eve}, the day before")
        await client.send(topics.CATALOG_EVENTS, samples.event(samples.price(), subject="ACDLT"))
        upserts = [
            samples.event(
                samples.subscription(sid, csn, renewal_date=due_on, auto_renew=True), subject=csn
            )
            for csn, ids in plan.items()
            for sid in ids
        ]
        for first in range(0, len(upserts), 1000):
            await client.send_many(topics.SUBSCRIPTION_EVENTS, upserts[first : first + 1000])
        progress(
            f"engine setup: published 1 price and {len(upserts):,} subscription.upserted"
            f" (auto-renew, valid card, renewal date {due_on}) over {len(plan):,} CSNs"
        )
        await e2e._wait_stored(admin, list(plan), progress, expected=len(upserts))
        await _wait_reminders_looked(admin, list(plan), eve, progress)
        await e2e._wait_quiet(admin, progress)
    finally:
        await admin.close()


# Every service that keeps the CSNs' test clocks (each its own copy, from `clock.commands`).
CLOCK_HOLDERS = ("renewal", "quote", "notification")


async def _wait_clocks(admin: asyncpg.Connection, csns: list[str], today: date) -> None:
    """Until every service holds each CSN's clock at `today`: a subscription seen before its
    CSN's clock would be looked at on the system's date first."""
    deadline = time.monotonic() + 60
    held = {}
    while time.monotonic() < deadline:
        held = {
            schema: await admin.fetchval(
                f"SELECT count(*) FROM {schema}.test_clocks"
                " WHERE csn = ANY($1::text[]) AND today = $2",
                csns,
                today,
            )
            for schema in CLOCK_HOLDERS
        }
        if all(count == len(csns) for count in held.values()):
            return
        await asyncio.sleep(0.2)
    raise TimeoutError(f"the CSNs' clocks held at {today} after 60 s, by service: {held}")


# The subscriptions of these CSNs whose reminder look (reminders.NEXT_REMINDER, the scheduler's
# claim key) is due on `$2`.
REMINDERS_DUE = f"""
SELECT count(*) FROM notification.subscriptions AS s
WHERE s.csn = ANY($1::text[]) AND {NEXT_REMINDER} <= $2"""


async def _wait_reminders_looked(
    admin: asyncpg.Connection, csns: list[str], today: date, progress: Progress
) -> None:
    """Until notification has looked at every reminder due on `today` (a subscription first
    seen after its last reminder day gets none: no email, its next look a year on)."""
    deadline = time.monotonic() + 120
    due = None
    while time.monotonic() < deadline:
        due = await admin.fetchval(REMINDERS_DUE, csns, today)
        if due == 0:
            progress("engine setup: notification looked at every reminder due before the day")
            return
        await asyncio.sleep(0.2)
    raise TimeoutError(
        f"{due:,} reminder looks still due on {today} after 120 s;"
        f" see notification.log under {LOG_DIR.parent}/"
    )


@dataclass
class Waited:
    renewed: dict[str, float]  # subscription id → monotonic arrival of its first renewal
    renewed_events: int
    strangers: int
    emails: int
    emails_seconds: float | None
    complete: bool
    seconds: float
    samples: list[tuple[float, float]]  # (seconds after the clocks, engine metric value)
    cpu_at_done: e2e.CpuSnapshot | None
    cpu_at_emails: e2e.CpuSnapshot | None
    mail: mail.MailCheck


async def _wait_renewed(
    watcher: RenewedWatcher,
    smtp: SmtpSink,
    services: dict[str, ServiceProcess],
    plan: dict[str, list[str]],
    subscription_ids: set[str],
    started: float,
    timeout: float,
    progress: Progress,
) -> Waited:
    """Until every subscription's subscription.renewed arrived (then the emails, not timed)."""
    count = len(subscription_ids)
    csns = {csn.encode() for csn in plan}
    renewed: dict[str, float] = {}
    events = strangers = 0
    scanned = 0
    metrics_port = services["renewal"].port
    samples_: list[tuple[float, float]] = []
    next_sample = last_report = time.monotonic()
    done_at: float | None = None
    complete = False
    cpu_at_done: e2e.CpuSnapshot | None = None
    cpu_at_emails: e2e.CpuSnapshot | None = None
    pids = {name: s.process.pid for name, s in services.items() if s.process}
    while True:
        arrivals = watcher.arrivals
        for arrived, key, kind, subscription_id in arrivals[scanned:]:
            if kind != "subscription.renewed" or key not in csns:
                continue
            events += 1
            if subscription_id not in subscription_ids:
                strangers += 1
            elif subscription_id not in renewed:
                renewed[subscription_id] = arrived
        scanned = len(arrivals)
        now = time.monotonic()
        if now >= next_sample and done_at is None:
            try:
                scraped = await asyncio.to_thread(procstat.scrape, metrics_port, 2.0)
                samples_.append((time.monotonic() - started, scraped.get(ENGINE_ORDERED, 0.0)))
            except OSError:
                pass  # a busy process: the next sample will do
            next_sample = time.monotonic() + SAMPLE_EVERY
        if done_at is None and len(renewed) >= count:
            done_at = max(renewed.values())
            complete = True
            cpu_at_done = e2e._cpu_snapshot(pids, smtp.pid)
            progress(
                f"engine timed: {len(renewed):,}/{count:,} subscription.renewed after"
                f" {done_at - started:.1f} s; {smtp.count:,}/{count:,} emails so far"
            )
        if done_at is not None:
            emails_done = smtp.count >= count
            if emails_done and cpu_at_emails is None:
                cpu_at_emails = e2e._cpu_snapshot(pids, smtp.pid)
            if (emails_done or now - done_at > EMAIL_GRACE_SECONDS) and (
                now - done_at >= SETTLE_SECONDS
            ):
                break
        dead = [
            f"{name} (exit {s.process.returncode}, log {s.log_path})"
            for name, s in services.items()
            if s.process is not None and s.process.poll() is not None
        ]
        if dead:
            raise RuntimeError(f"service process died during the engine phase: {', '.join(dead)}")
        if done_at is None and now - started > timeout:
            progress(
                f"engine timed: GAVE UP after {timeout:.0f} s: {len(renewed):,}/{count:,}"
                f" subscription.renewed, engine ordered"
                f" {samples_[-1][1] - samples_[0][1] if samples_ else 0:,.0f} (metric)"
            )
            break
        if now - last_report >= 2:
            ordered = f"{samples_[-1][1]:,.0f}" if samples_ else "?"
            progress(
                f"engine timed: {len(renewed):,}/{count:,} subscription.renewed,"
                f" {smtp.count:,} emails after {now - started:.1f} s"
                f" (renewal's engine counter: {ordered} automatic orders)"
            )
            last_report = now
        await asyncio.sleep(0.02)
    received = smtp.received()
    arrivals_smtp = sorted(r.arrived for r in received if r.watched)
    emails_seconds = arrivals_smtp[count - 1] - started if len(arrivals_smtp) >= count else None
    if complete:
        progress(
            f"engine timed: {len(arrivals_smtp):,}/{count:,} emails"
            + (f", the last after {emails_seconds:.1f} s" if emails_seconds else "")
        )
    end = done_at if done_at is not None else time.monotonic()
    return Waited(
        renewed=renewed,
        renewed_events=events,
        strangers=strangers,
        emails=len(arrivals_smtp),
        mail=mail.check(received),
        emails_seconds=emails_seconds,
        complete=complete,
        seconds=end - started,
        samples=samples_,
        cpu_at_done=cpu_at_done,
        cpu_at_emails=cpu_at_emails,
    )


async def _scrape(port: int, progress: Progress, name: str) -> procstat.Samples:
    """A service's /metrics, tried a few times (a busy process may answer late); {} at worst."""
    for attempt in range(1, 4):
        try:
            return await asyncio.to_thread(procstat.scrape, port, 10.0)
        except OSError as error:
            progress(f"engine: /metrics of {name} did not answer (try {attempt}/3): {error!r}")
    return {}


def _steps(
    records: list[tuple[str, bytes | None, str | None, int]], csns: set[str], started_wall: float
) -> tuple[list[Step], dict[str, int]]:
    """Each step's count and first / last record timestamp, for the bench's CSNs only."""
    moments: dict[str, list[float]] = {}
    failures: dict[str, int] = {}
    for _topic, key, kind, timestamp_ms in records:
        if key is None or key.decode() not in csns or kind is None:
            continue
        if kind in FAILURES:
            failures[kind] = failures.get(kind, 0) + 1
        moments.setdefault(kind, []).append(timestamp_ms / 1000 - started_wall)
    steps = []
    for _topic, kind, by in STEPS:
        step = Step(kind, by)
        found = moments.get(kind, [])
        if found:
            step.count = len(found)
            step.first_s, step.last_s = min(found), max(found)
        steps.append(step)
    return steps, failures
