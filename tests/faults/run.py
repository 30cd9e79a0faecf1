"""`make faults`: the whole system (every service a process, the real broker, PostgreSQL and the
dev SMTP server) through many renewals of every kind while faults hit it; then its figures, like
`make bench`, and a non-zero exit on any lost renewal, second charge, lost email, duplicate
email beyond the stated bound, or poison message not in a DLQ.

    uv run python -m tests.faults.run                  # 10,000 renewals, 10,000 poison messages
    uv run python -m tests.faults.run --reduced        # ~1,000 renewals, a few faults of each kind
    uv run python -m tests.faults.run --brokers 3      # on a three-broker KRaft cluster, one killed
    uv run python -m tests.faults.run --json           # the figures as one JSON line at the end
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import signal
import socket
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from bench.e2e import BACKLOG_QUERIES, admin_connect
from bench.report import table
from deploy.local import samples
from deploy.local.client import UpstreamClient
from deploy.local.launcher import REPO_ROOT, running_services
from shared.contracts import topics
from shared.db.settings import DatabaseSettings
from shared.messaging.settings import MessagingSettings
from tests.faults import chaos, figures, workload
from tests.faults.observe import Record, Recorder, read_mailbox
from tests.faults.poison import Poison, poison_batch
from tests.scenarios.settled import settled
from tests.scenarios.stack import TEST_STACK_SETTINGS

STATE = REPO_ROOT / ".local" / "faults"
MAILDIR = REPO_ROOT / ".local" / "smtp" / "mail"
CLOCK_STARTED = time.monotonic()


def progress(line: str) -> None:
    print(f"[{time.monotonic() - CLOCK_STARTED:6.1f}s] {line}", flush=True)


@dataclass(frozen=True)
class Size:
    renewals: int
    poison: int
    random_kills: int
    broker_restarts: int
    pg_restarts: int
    stall_seconds: float
    drain_seconds: float


FULL = Size(10_000, 10_000, 12, 3, 3, stall_seconds=120, drain_seconds=900)
REDUCED = Size(1_000, 240, 5, 1, 1, stall_seconds=90, drain_seconds=150)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.faults.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--reduced", action="store_true", help="~1,000 renewals, a few faults")
    parser.add_argument("--renewals", type=int, help="subscriptions to renew (10,000)")
    parser.add_argument("--poison", type=int, help="poison messages mixed in (10,000)")
    parser.add_argument("--brokers", type=int, choices=(1, 3), default=1)
    parser.add_argument("--rate", type=float, help="renewals published per second (40; 25 reduced)")
    parser.add_argument(
        "--random-kills", type=int, help="SIGKILLs at random moments (12; 5 reduced)"
    )
    parser.add_argument("--broker-restarts", type=int, help="broker restarts (or cluster kills)")
    parser.add_argument("--pg-restarts", type=int, help="PostgreSQL immediate restarts")
    parser.add_argument("--no-fault-points", action="store_true", help="arm no fault point")
    parser.add_argument("--stall-seconds", type=float, help="give up after no progress this long")
    parser.add_argument("--drain-seconds", type=float, help="longest wait after the load")
    parser.add_argument("--broker-down-seconds", type=float, default=15.0)
    parser.add_argument("--seed", type=int, help="random seed (faults, mix); printed")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON last")
    args = parser.parse_args(argv)
    size = REDUCED if args.reduced else FULL
    for name, value in asdict(size).items():
        if getattr(args, name, None) is None:
            setattr(args, name, value)
    args.rate = args.rate or (25.0 if args.reduced else 40.0)
    args.seed = args.seed if args.seed is not None else random.randrange(1_000_000)
    return args


def _answers(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def smtp_port() -> int:
    return int(os.environ.get("RENEWALS_SMTP_PORT", "12525"))


def preflight(bootstrap: str) -> str | None:
    database = DatabaseSettings()
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    missing = [
        name
        for name, (h, p) in {
            "Kafka": (host, int(port)),
            "PostgreSQL": (database.host, database.port),
            "the dev SMTP server": ("127.0.0.1", smtp_port()),
        }.items()
        if not _answers(p, h)
    ]
    if missing:
        return f"{' and '.join(missing)} not reachable: run `make infra-up` first."
    already = running_services()
    if already:
        return (
            f"the services of `make run` are running ({', '.join(already)}): they would share"
            " the consumer groups. Stop them with `make stop`."
        )
    return None


@dataclass
class Tracker:
    """Progress as outputs arrive: what is resolved, which orders were confirmed by email, and
    the follow-ups (accept a quote, pay a transfer) the product asked for."""

    plan: workload.Plan
    requests: dict[str, list[str]] = field(default_factory=dict)
    renewed: set[str] = field(default_factory=set)
    refused: set[str] = field(default_factory=set)
    orders: set[str] = field(default_factory=set)
    confirmed: set[str] = field(default_factory=set)
    followed: set[str] = field(default_factory=set)
    scanned: int = 0

    def __post_init__(self) -> None:
        self.csns = self.plan.csns
        for action in self.plan.actions:
            request_id = getattr(action.events[0].data, "request_id", None)
            if request_id:
                self.requests[request_id] = action.subscription_ids

    def scan(self, records: list[Record]) -> list[workload.Action]:
        follow_ups = []
        new = records[self.scanned :]
        self.scanned += len(new)
        for r in new:
            if r.topic.endswith(".dlq") or r.event.get("subject") not in self.csns:
                continue
            kind, data = r.type, r.data
            if kind == "subscription.renewed":
                self.renewed.add(data.get("subscription_id", ""))
                self.orders.add(data.get("order_id", ""))
            elif kind == "renewal.rejected":
                sid = data.get("subscription_id")
                self.refused.update(
                    [sid] if sid else self.requests.get(str(data.get("request_id")), [])
                )
            elif kind == "quote.rejected":
                self.refused.update(self.requests.get(str(data.get("request_id")), []))
            elif kind == "bulk.completed":
                self.refused.update(
                    o.get("subscription_id") for o in data.get("outcomes", []) if o.get("reasons")
                )
            elif kind == "email.sent" and data.get("kind") == "order_confirmation":
                self.confirmed.add(data.get("order_id", ""))
            elif kind in ("quote.sent", "payment.awaiting_manual"):
                token = data.get("quote_number") or data.get("order_id") or ""
                if token not in self.followed:
                    action = workload.follow_up(kind, r.event, self.csns)
                    if action is not None:
                        self.followed.add(token)
                        follow_ups.append(action)
        return follow_ups

    @property
    def resolved(self) -> int:
        return len((self.renewed | self.refused) & set(self.plan.subscriptions))

    @property
    def unconfirmed(self) -> int:
        return len(self.orders - self.confirmed)

    def done(self) -> bool:
        return self.resolved >= len(self.plan.subscriptions) and not self.unconfirmed


async def setup(client: UpstreamClient, plan: workload.Plan, db: Any) -> None:
    price = samples.event(samples.price(plan.product), plan.product, source="/fault-suite")
    await client.send_many(topics.CATALOG_EVENTS, [price, price])
    for first in range(0, len(plan.upserts), 1000):
        chunk = plan.upserts[first : first + 1000]
        await client.send_many(topics.SUBSCRIPTION_EVENTS, [e for e in chunk for _ in (0, 1)])
    progress(f"setup: published 1 price and {len(plan.upserts):,} subscriptions (each twice)")
    wanted = len(plan.subscriptions)
    deadline = time.monotonic() + max(120.0, wanted / 20)
    while True:
        stored = {
            service: await db.fetchval(
                f"SELECT count(*) FROM {service}.subscriptions WHERE csn LIKE $1",
                f"{plan.prefix}-%",
            )
            for service in ("renewal", "quote", "notification")
        }
        priced = await db.fetchval(
            "SELECT count(*) FROM renewal.prices WHERE product_code = $1", plan.product
        )
        if all(n >= wanted for n in stored.values()) and priced:
            progress(f"setup: every service stored the {wanted:,} subscriptions")
            return
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"setup: subscriptions stored {stored} of {wanted} (price stored: {bool(priced)})"
                " before any fault was scheduled: a partition of subscription.events or"
                " catalog.events is stalled (a poison message of an earlier run?); see"
                f" {STATE / 'logs'}/"
            )
        await asyncio.sleep(1.0)


@dataclass
class Load:
    poison_sent: list[figures.SentPoison] = field(default_factory=list)
    published: int = 0  # subscriptions whose action went out
    finished: bool = False


async def publish(
    client: UpstreamClient,
    plan: workload.Plan,
    poison: list[Poison],
    rate: float,
    load: Load,
) -> None:
    """The actions at `rate` renewals per second, the poison spread over the same time."""
    started = time.monotonic()
    total = len(plan.subscriptions)
    actions = list(plan.actions)
    poison_left = list(poison)
    while actions or poison_left:
        elapsed = time.monotonic() - started
        due = min(total, int(rate * elapsed) + 1)
        sending: list[workload.Action] = []
        # An action of no subscription (a reminded CSN's clock) goes with the next, or at once
        # when it is among the last.
        while actions and (
            load.published + sum(len(a.subscription_ids) for a in sending) < due
            or not actions[0].subscription_ids
        ):
            sending.append(actions.pop(0))
        if sending:
            await workload.send_actions_retrying(client, sending, progress)
            load.published += sum(len(a.subscription_ids) for a in sending)
        share = len(poison) - int(len(poison) * (1 - min(1.0, load.published / total)))
        while poison_left and len(poison) - len(poison_left) < share:
            batch, poison_left = poison_left[:500], poison_left[500:]
            await send_poison(client, batch, load)
        await asyncio.sleep(0.2)
    load.finished = True


async def send_poison(client: UpstreamClient, batch: list[Poison], load: Load) -> None:
    for attempt in range(300):  # the broker may be away for minutes (a restart)
        try:
            futures = [
                # Each as the system that writes its topic (clock.commands: the test principal).
                await (await client.producer_for(p.topic)).send(
                    p.topic, p.value, key=p.key, headers=p.headers
                )
                for p in batch
            ]
            for p, meta in zip(batch, await asyncio.gather(*futures), strict=True):
                load.poison_sent.append(
                    figures.SentPoison(p.kind, p.topic, meta.partition, meta.offset)
                )
            return
        except Exception as error:
            if attempt % 10 == 0:
                progress(f"poison: publishing failed ({error!r}), retrying")
            await asyncio.sleep(1.0)
    raise RuntimeError("could not publish poison for five minutes")


async def react(
    client: UpstreamClient, recorder: Recorder, tracker: Tracker, stop: asyncio.Event
) -> None:
    while not stop.is_set():
        try:
            for action in tracker.scan(recorder.records):
                await workload.send_retrying(client, action.topic, action.events, progress)
        except Exception as error:  # keep following up; say what went wrong
            progress(f"follow-ups: {error!r}")
        await asyncio.sleep(0.3)


async def run_faults(
    args: argparse.Namespace, fleet: chaos.Fleet, load_seconds: float, rng: random.Random
) -> None:
    planned = chaos.schedule(
        rng,
        random_kills=args.random_kills,
        broker_restarts=args.broker_restarts,
        pg_restarts=args.pg_restarts,
        brokers=args.brokers,
    )
    started = time.monotonic()
    for fault in planned:
        wait = started + fault.at_fraction * load_seconds - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        try:
            await chaos.inject(fault, fleet, progress, args.broker_down_seconds)
        except Exception as error:  # a failed check with its reason, never a traceback
            fleet.errors.append(f"{fault.kind} of {fault.target} could not be injected: {error!r}")
            progress(f"fault: {fault.kind} of {fault.target} could not be injected: {error!r}")


async def wait_done(
    tracker: Tracker, load: Load, faults_task: asyncio.Task[None], args: argparse.Namespace
) -> bool:
    last_change, last_state, last_report = time.monotonic(), None, 0.0
    deadline: float | None = None
    total = len(tracker.plan.subscriptions)
    while True:
        now = time.monotonic()
        state = (tracker.resolved, len(tracker.confirmed))
        if state != last_state:
            last_change, last_state = now, state
        if now - last_report >= 5:
            progress(
                f"load: published {load.published:,}/{total:,}; resolved {tracker.resolved:,}"
                f" (renewed {len(tracker.renewed):,}, refused {len(tracker.refused):,});"
                f" orders {len(tracker.orders):,}, confirmed by email {len(tracker.confirmed):,};"
                f" poison sent {len(load.poison_sent):,}"
            )
            last_report = now
        if load.finished and faults_task.done():
            if tracker.done():
                return True
            if deadline is None:  # the stall clock starts once the last fault is over
                deadline, last_change = now + args.drain_seconds, max(last_change, now)
            if now - last_change > args.stall_seconds or now > deadline:
                progress(
                    f"load: GAVE UP: no progress for {now - last_change:.0f} s"
                    f" ({tracker.resolved:,}/{total:,} resolved, {tracker.unconfirmed:,}"
                    " orders without a confirmation)"
                )
                return False
        await asyncio.sleep(0.5)


async def quiet(db: Any, seconds: float = 30.0) -> dict[str, int]:
    """Until outboxes and pending emails are empty (their effects are then on Kafka/SMTP)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            backlog = {n: int(await db.fetchval(sql)) for n, sql in BACKLOG_QUERIES.items()}
        except Exception:
            backlog = {"database": -1}
        if not any(backlog.values()) or time.monotonic() > deadline:
            return backlog
        await asyncio.sleep(0.5)


async def run(args: argparse.Namespace) -> tuple[figures.Figures, dict[str, Any]]:
    rng = random.Random(args.seed)
    prefix = f"FLT{uuid.uuid4().hex[:8].upper()}"
    plan = workload.plan(args.renewals, prefix, rng)
    poison = poison_batch(args.poison, prefix, rng)
    bootstrap = MessagingSettings().kafka_bootstrap
    if args.brokers == 3:
        progress("cluster: starting three KRaft brokers (replication 3, min.insync.replicas 2)")
        await chaos.infra("cluster", "up", progress=progress)
        bootstrap = await cluster_bootstrap()
    env = {
        **TEST_STACK_SETTINGS,
        # A lease long enough that no single send outlives half of it on a loaded machine (the
        # tests' 3 s would add duplicates no crash explains); a killed sender's claim waits it.
        "RENEWALS_NOTIFICATION_LEASE_SECONDS": "20",
        "RENEWALS_NOTIFICATION_SMTP_PORT": str(smtp_port()),
        "RENEWALS_KAFKA_BOOTSTRAP": bootstrap,
    }
    fleet = chaos.Fleet(env, STATE / "logs", progress, CLOCK_STARTED)
    summary: dict[str, Any] = {"prefix": prefix, "seed": args.seed, "brokers": args.brokers}
    mail_since = time.time() - 5
    db = await admin_connect()
    load_seconds = len(plan.subscriptions) / args.rate
    try:
        await fleet.start_all()
        progress(
            f"services: {len(fleet.services)} processes ready, fault points"
            f" {'off' if args.no_fault_points else 'armed at their first restart in the load'}"
            f" (logs in {fleet.log_dir})"
        )
        recorder = Recorder(bootstrap)
        async with UpstreamClient(bootstrap) as client, recorder:
            await setup(client, plan, db)
            tracker, load, stop = Tracker(plan), Load(), asyncio.Event()
            progress(
                f"load: {len(plan.subscriptions):,} renewals ({len(plan.actions):,} actions, each"
                f" delivered twice) over ~{load_seconds:.0f} s, {len(poison):,} poison messages"
            )
            load_started = time.monotonic()
            if not args.no_fault_points:  # armed by each service's next start (chaos.schedule)
                fleet.plan_points(
                    rng,
                    load_started + chaos.POINTS_FROM * load_seconds,
                    load_started + chaos.POINTS_UNTIL * load_seconds,
                )
            reactor = asyncio.create_task(react(client, recorder, tracker, stop))
            publisher = asyncio.create_task(publish(client, plan, poison, args.rate, load))
            faults_task = asyncio.create_task(run_faults(args, fleet, load_seconds, rng))
            try:
                complete = await wait_done(tracker, load, faults_task, args)
                if publisher.done() and publisher.exception():
                    raise publisher.exception()  # type: ignore[misc]
            finally:
                stop.set()
                for task in (publisher, faults_task, reactor):
                    task.cancel()
                await asyncio.gather(publisher, faults_task, reactor, return_exceptions=True)
            summary["complete"] = complete
            summary["load_seconds"] = round(time.monotonic() - load_started, 1)
            await db.close()
            db = await admin_connect()  # the first one may have died with a PostgreSQL restart
            backlog = await quiet(db)
            try:  # every group read to its end, nothing left to do: a duplicate would show now
                await settled(bootstrap, db, timeout=60)
            except TimeoutError as error:
                summary["not_settled"] = str(error)
            summary["backlog_at_end"] = backlog
            records = list(recorder.records)
        result = figures.Figures()
        orders = figures.renewal_figures(plan, records, result)
        renewed_subscriptions = set(tracker.renewed) & set(plan.subscriptions)
        await figures.charge_figures(db, plan, renewed_subscriptions, result)
        mails = await asyncio.to_thread(read_mailbox, MAILDIR, prefix.lower(), mail_since)
        figures.email_figures(plan, records, mails, orders, fleet, result)
        figures.dead_letter_figures(plan, records, load.poison_sent, result)
        figures.fault_figures(fleet, records, CLOCK_STARTED, result)
        result.failures.extend(fleet.errors)
        if not complete:
            result.failures.insert(0, "the run did not complete: outputs stopped coming")
        return result, summary
    finally:
        await db.close()
        await fleet.stop_all()
        if args.brokers == 3:
            await chaos.infra("cluster", "down", progress=progress)
        await leave_infrastructure_up(bootstrap if args.brokers == 1 else None)


async def leave_infrastructure_up(bootstrap: str | None) -> None:
    """The developer's broker and database answer where they did before the run: a restart
    that failed half-way is undone with `infra.sh up` (same ports, from the environment)."""
    database = DatabaseSettings()
    checks = [(database.host, database.port)]
    if bootstrap:
        host, _, port = bootstrap.split(",")[0].rpartition(":")
        checks.append((host, int(port)))
    if all(_answers(p, h) for h, p in checks):
        return
    progress("infra: the broker or PostgreSQL does not answer after the run; starting it again")
    error = await chaos.restore_infrastructure(progress)
    if error:
        print(f"faults: could not start the infrastructure again: {error}", file=sys.stderr)


async def cluster_bootstrap() -> str:
    process = await asyncio.create_subprocess_exec(
        str(chaos.INFRA), "cluster", "bootstrap", cwd=REPO_ROOT, stdout=asyncio.subprocess.PIPE
    )
    output, _ = await process.communicate()
    return output.decode().strip()


def render(result: figures.Figures, summary: dict[str, Any]) -> None:
    renewals = result.renewals
    print("\nRenewals (every subscription due: renewed, or refused with a reason)")
    rows: list[list[object]] = [
        [kind, r.get("due", 0), r.get("renewed", 0), r.get("refused", 0), r.get("lost", 0)]
        for kind, r in renewals.get("by_kind", {}).items()
    ]
    print(table(["kind", "due", "renewed", "refused", "LOST"], rows))
    print(f"  refusal reasons: {json.dumps(renewals.get('refusal_reasons', {}))}")
    print(
        f"  renewed twice for one term: {renewals.get('renewed_twice', 0)}; renewed though a"
        f" refusal was expected: {renewals.get('renewed_though_refusal_expected', 0)}"
    )
    charges = result.charges
    print(
        "\nCharges per subscription (each renews for one term): orders the provider charged"
        " (its ledger) or billing recorded as paid"
    )
    print(
        table(
            ["charges", "subscriptions"],
            [[n, c] for n, c in charges.get("subscriptions_with_n_charges", {}).items()],
        )
    )
    print(
        f"  charged twice: {charges.get('charged_twice', 0)}; renewed without a charge:"
        f" {charges.get('renewed_without_charge', 0)}; provider ledger:"
        f" {json.dumps(charges.get('provider_ledger'))}"
    )
    emails = result.emails
    print("\nEmails per notification key (dev SMTP server's mail folder, and email.sent)")
    print(
        table(
            ["received n times", "notification keys"],
            [[n, c] for n, c in emails.get("keys_received_n_times", {}).items()],
        )
    )
    print(
        f"  by kind: {json.dumps(emails.get('keys_by_kind', {}))}; confirmations expected"
        f" {emails.get('confirmations_expected', 0):,}, missing at SMTP"
        f" {emails.get('confirmations_missing_at_smtp', 0)}, without email.sent"
        f" {emails.get('confirmations_without_email_sent', 0)}; duplicates"
        f" {emails.get('duplicates', 0)} (allowed {emails.get('duplicates_allowed', 0)}:"
        f" {figures.EMAIL_DUPLICATES_PER_CRASH} (its senders × mark_every) per notification crash ×"
        f" {emails.get('sender_crashes', 0)}, and"
        f" {emails.get('duplicates_of_marks_lost_by_postgres', 0)} first sent in the last"
        f" {figures.LOST_MARKS_SECONDS} s before a PostgreSQL crash)"
    )
    dead = result.dead_letters
    print("\nDead letters vs poison sent (matched by original topic, partition, offset)")
    print(
        table(
            ["poison kind", "sent", "dead-lettered", "MISSING"],
            [
                [k, v.get("sent", 0), v.get("dead-lettered", 0), v.get("missing", 0)]
                for k, v in dead.get("by_kind", {}).items()
            ],
        )
    )
    print(
        f"  workload messages dead-lettered: {dead.get('workload_messages_dead_lettered', 0)}"
        f" {json.dumps(dead.get('workload_dead_letter_errors', {}))}"
    )
    print("\nFaults and recovery (seconds since the run started; outputs = any output event)")
    print(
        table(
            ["at s", "fault", "target", "detail", "down s", "outputs resumed after s"],
            [
                [
                    f["at_s"],
                    f["kind"],
                    f["target"],
                    f["detail"],
                    f["down_s"],
                    f["outputs_resumed_s"],
                ]
                for f in result.faults
            ],
        )
    )
    reached = [p for p in result.fault_points if p["reached"]]
    print(f"\nFault points: {len(reached)} of {len(result.fault_points)} reached")
    print(
        table(
            ["service", "point", "reached at s"],
            [
                [p["service"], p["point"], p["reached_at_s"] if p["reached"] else "not reached"]
                for p in result.fault_points
            ],
        )
    )
    print(
        f"\nRun {summary['prefix']} (seed {summary['seed']}, {summary['brokers']} broker(s)):"
        f" load and drain {summary.get('load_seconds')} s; backlog at the end"
        f" {json.dumps(summary.get('backlog_at_end'))}"
    )
    if "not_settled" in summary:
        print(f"Not settled when counted: {summary['not_settled']}")
    if result.failures:
        print("\nFAILED:")
        for failure in result.failures:
            print(f"  - {failure}")
    else:
        print("\nOK: nothing lost, nothing charged twice, every poison message dead-lettered")


def _interrupted(*_: object) -> None:
    # As Ctrl-C: asyncio.run cancels the run, whose `finally` stops the services and the cluster.
    os.kill(os.getpid(), signal.SIGINT)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # The broker restarts on purpose: aiokafka's reconnection chatter is not news here.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    bootstrap = MessagingSettings().kafka_bootstrap
    refusal = preflight(bootstrap)
    if refusal:
        print(f"faults: {refusal}", file=sys.stderr)
        return 2
    progress(
        f"faults: {args.renewals:,} renewals, {args.poison:,} poison messages,"
        f" {args.random_kills} random kills, {args.broker_restarts} broker restart(s),"
        f" {args.pg_restarts} PostgreSQL restart(s), fault points"
        f" {'off' if args.no_fault_points else 'armed'}; {args.brokers} broker(s); seed {args.seed}"
    )
    # SIGTERM (a timeout, `kill`) unwinds like Ctrl-C: the services, the cluster and the
    # developer's broker and database are left as they were found.
    signal.signal(signal.SIGTERM, _interrupted)
    try:
        result, summary = asyncio.run(run(args))
    except Exception as error:  # the run itself broke: say why, as a failed check
        print(f"\nFAILED:\n  - the run stopped: {error!r}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            "\nfaults: interrupted; services stopped, broker and database left up", file=sys.stderr
        )
        return 130
    finally:
        chaos.stop_leftovers()  # whatever the run's own cleanup did not get to
    render(result, summary)
    if args.json:
        print(json.dumps({**summary, **asdict(result)}, separators=(",", ":"), default=str))
    return 1 if result.failures else 0


if __name__ == "__main__":
    sys.exit(main())
