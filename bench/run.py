"""`make bench`: what the product does per second, what it costs, and whether it did it right.

    uv run python -m bench.run                 # the full set (make bench): 1,000,000 at scale
    uv run python -m bench.run --quick         # a few minutes: 200 / 1,000 / 5 bulk / 50,000
    uv run python -m bench.run --engine-only   # only the due-date engine's phase
    uv run python -m bench.run --subscriptions 5000 --service-env RENEWALS_NOTIFICATION_SENDERS=4

Phases, in this order, all in a database of the bench's own (`--database`, default
`renewals_bench`), made afresh at the start and dropped at the end (`--keep-database` keeps it),
so that "empty tables" means empty and runs do not feed each other:
  ceilings      Kafka round trip, PostgreSQL renewal-shaped transactions (`--no-ceilings`)
  warm-up       renewals end to end, not counted (`--warmup N`, default 4,000; 0: none): a
                broker just started runs its JVM's code interpreted, and the first timed phase
                would pay for that (Kafka up to twice its warm CPU per renewal) while the phases
                after it, at scale too, run warm
  manual        N renewal requests of one subscription end to end: request → order → charge →
                renewed → confirmation accepted by SMTP (`--subscriptions`, `--no-e2e`); renewal
                dates 45 days out, so nothing else (reminders, automatic quotes) is due
  automatic     N auto-renew subscriptions due on one day, renewed by the due-date engine once
                their CSNs' test clocks move (`--engine-subscriptions`, `--engine-csns`,
                `--no-engine`)
  busy dates    the manual phase again with renewal dates 30 and 7 days out, as real ones have:
                reminders and automatic quotes are due too; their emails are counted apart
                (`--busy-subscriptions`, `--no-busy`)
  bulk-100      requests of 100 subscriptions, paced at half the highest manual rate measured
                above (a load, not a flood): latency p50 / p99 per request (`--bulk-requests`,
                `--no-bulk`)
  scale         N subscriptions and a year of their history loaded set-based into each
                service's schema with its own role (bench/scale_data.py), VACUUM (ANALYZE), then the
                manual and automatic phases again: each rate against its empty-table figure
                (target: within 10 %), and the hot statements' EXPLAIN (ANALYZE, BUFFERS)
                (bench/hotspots.py; plans in .local/bench/explain.txt) — `pg_stat_statements`'
                top statements too when the server preloads it (`--scale N`, `--no-scale`)

Every phase starts every service as its own OS process (deploy/local/launcher.py) and an SMTP sink
of the bench's own as another (bench/smtp_sink.py): a raw asyncio SMTP server that counts
messages and reads their `X-Notification-Key` and whether a confirmation shows its total,
without parsing MIME. The tables then give CPU-ms per renewal per process — each service, the
bulk worker, Kafka, the PostgreSQL backends, the SMTP sink and the bench apart — for every
path, and the emails' correctness: confirmations sent without their total and duplicate emails
(the same notification key twice) must both be 0 for a good run.

It prints a progress line per step, then one table per phase, then one JSON line (the last line)
for machines; it exits 1 when a phase is incomplete, a renewal failed or happened twice, or an
email was wrong. The machine is 2 cores: rates and latencies move with whatever else runs on it
(the tables show "anything else on the machine"); CPU-ms per renewal is the steadier figure.
It refuses to run while the dev stack of `make run` is up.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sys
import time
from datetime import date
from typing import Any

from bench import (
    ceilings,
    costs,
    database,
    e2e,
    engine,
    hotspots,
    machine_speed,
    scale_data,
    smtp,
)
from bench.report import percentile, table
from deploy.local.launcher import running_services
from shared.db.settings import DatabaseSettings
from shared.messaging.settings import MessagingSettings

TARGET_PER_SECOND = 2000
BULK_SIZE = 100
PLANS = e2e.LOG_DIR.parent / "explain.txt"
CLOCK_STARTED = time.monotonic()


def progress(line: str) -> None:
    print(f"[{time.monotonic() - CLOCK_STARTED:6.1f}s] {line}", flush=True)


def count(text: str, minimum: int = 0) -> int:
    """An argparse type: a whole number of things, `minimum` or more."""
    value = int(text)
    if value < minimum:
        raise argparse.ArgumentTypeError(f"{value}: a count is {minimum} or more")
    return value


def positive_count(text: str) -> int:
    """An argparse type: a whole number of things, 1 or more."""
    return count(text, minimum=1)


def positive(text: str) -> float:
    """An argparse type: seconds or a rate, more than 0."""
    value = float(text)
    if not value > 0:  # NaN too
        raise argparse.ArgumentTypeError(f"{text}: more than 0")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--subscriptions", type=count, help="renewals end to end (default 2,000)")
    parser.add_argument("--kafka-messages", type=count, help="Kafka ceiling messages (20,000)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 200 and 2,000")
    parser.add_argument("--timeout", type=positive, help="give up the timed part after (seconds)")
    parser.add_argument("--no-ceilings", action="store_true", help="only the end-to-end part")
    parser.add_argument("--no-e2e", action="store_true", help="skip the end-to-end part")
    parser.add_argument(
        "--warmup",
        type=count,
        help="renewals end to end before the timed phases, not counted (4,000; --quick 200)",
    )
    parser.add_argument(
        "--engine-subscriptions",
        type=count,
        help="automatic renewals due on one day for the due-date engine (default 10,000)",
    )
    parser.add_argument(
        "--engine-csns", type=positive_count, default=100, help="CSNs they are spread over (100)"
    )
    parser.add_argument(
        "--engine-timeout", type=positive, help="give up the engine's timed part after (seconds)"
    )
    parser.add_argument("--no-engine", action="store_true", help="skip the due-date engine part")
    parser.add_argument("--engine-only", action="store_true", help="only the due-date engine part")
    parser.add_argument(
        "--service-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for the service processes (to try a setting), repeatable",
    )
    parser.add_argument(
        "--scale",
        type=count,
        help="subscriptions (and their history) loaded for the scale phase (1,000,000; quick"
        " 50,000)",
    )
    parser.add_argument("--no-scale", action="store_true", help="skip the scale phase")
    parser.add_argument(
        "--busy-subscriptions",
        type=count,
        help="end to end with renewal dates 30 and 7 days out, reminders and automatic quotes"
        " due (default: --subscriptions)",
    )
    parser.add_argument("--no-busy", action="store_true", help="skip the busy-dates phase")
    parser.add_argument(
        "--bulk-requests",
        type=count,
        help=f"bulk-{BULK_SIZE} requests paced at half the highest manual rate (20; quick 5)",
    )
    parser.add_argument("--no-bulk", action="store_true", help="skip the paced bulk phase")
    parser.add_argument(
        "--bulk-fallback-rate",
        type=positive,
        default=200.0,
        help="renewals/s taken as the maximum when no manual phase ran (200)",
    )
    parser.add_argument(
        "--database",
        default="renewals_bench",
        help="the bench's own database, made afresh and dropped at the end (renewals_bench)",
    )
    parser.add_argument(
        "--keep-database", action="store_true", help="keep the bench's database at the end"
    )
    args = parser.parse_args(argv)
    if args.database == DatabaseSettings().database:
        parser.error(f"--database {args.database} is the dev database: the bench drops its own")
    if args.engine_only:
        if args.no_engine:
            parser.error("--engine-only and --no-engine exclude each other")
        args.no_ceilings = args.no_e2e = args.no_busy = args.no_bulk = True
        args.no_scale = args.no_scale or args.scale is None  # at scale only when asked
    args.engine_subscriptions = args.engine_subscriptions or (1000 if args.quick else 10_000)
    args.engine_timeout = args.engine_timeout or max(120.0, args.engine_subscriptions / 20)
    args.subscriptions = args.subscriptions or (200 if args.quick else 2000)
    if args.warmup is None:  # nothing timed to warm up for: none
        args.warmup = 0 if args.no_e2e and args.no_engine else (200 if args.quick else 4000)
    args.scale = 0 if args.no_scale else args.scale or (50_000 if args.quick else 1_000_000)
    args.busy_subscriptions = (
        0 if args.no_busy or args.no_e2e else args.busy_subscriptions or args.subscriptions
    )
    args.bulk_requests = 0 if args.no_bulk else args.bulk_requests or (5 if args.quick else 20)
    args.kafka_messages = args.kafka_messages or (2000 if args.quick else 20_000)
    args.timeout = args.timeout or max(60.0, args.subscriptions / 20)
    if args.quick:
        args.pg = {"single": 300, "batched": 3000, "statementwise": 1000}
    else:
        args.pg = {"single": 2000, "batched": 20_000, "statementwise": 5000}
    try:
        args.env = dict(item.split("=", 1) for item in args.service_env)
    except ValueError:
        parser.error("--service-env takes KEY=VALUE")
    return args


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def preflight(bootstrap: str) -> str | None:
    database = DatabaseSettings()
    host, _, port = bootstrap.rpartition(":")
    missing = [
        name
        for name, (h, p) in {
            "Kafka": (host, int(port)),
            "PostgreSQL": (database.host, database.port),
        }.items()
        if not _answers(h, p)
    ]
    if missing:
        return f"{' and '.join(missing)} not reachable: run `make infra-up` first."
    already = running_services()
    if already:
        return (
            f"the dev stack of `make run` is running ({', '.join(already)}): its services would"
            " share the consumer groups with the bench's own and take part of the work."
            " Stop it with `make stop`, then run the bench again."
        )
    return None


async def measure(args: argparse.Namespace, bootstrap: str) -> dict[str, Any]:
    """Every phase, in the bench's own database made afresh (dropped at the end)."""
    previous = os.environ.get("RENEWALS_PG_DATABASE")
    progress(f"database: `{args.database}` made afresh for this run (bench/database.py)")
    await database.create_fresh(args.database)
    try:
        return await _phases(args, bootstrap)
    finally:
        if args.keep_database:
            progress(f"database: `{args.database}` kept (--keep-database)")
        else:
            await database.drop(args.database, previous)
            progress(f"database: `{args.database}` dropped")


async def _manual(
    args: argparse.Namespace, bootstrap: str, count: int, **options: Any
) -> e2e.E2EResult:
    return await e2e.run(
        bootstrap,
        count,
        progress=progress,
        timeout=args.timeout,
        extra_env=args.env,
        **options,
    )


async def _automatic(args: argparse.Namespace, bootstrap: str) -> engine.EngineResult:
    progress(
        f"due-date engine: {args.engine_subscriptions:,} automatic renewals due on one day"
        f" over {args.engine_csns:,} CSNs"
    )
    return await engine.run(
        bootstrap,
        args.engine_subscriptions,
        csn_count=args.engine_csns,
        progress=progress,
        timeout=args.engine_timeout,
        extra_env=args.env,
    )


async def _phases(args: argparse.Namespace, bootstrap: str) -> dict[str, Any]:
    results: dict[str, Any] = {}
    if not args.no_ceilings:
        progress(f"ceilings: Kafka round trip of {args.kafka_messages:,} messages, 6 partitions")
        results["kafka"] = await ceilings.kafka_roundtrip(bootstrap, args.kafka_messages, progress)
        progress("ceilings: PostgreSQL renewal-shaped transactions in schema `bench`")
        results["pg"] = await ceilings.postgres_transactions(
            e2e.admin_connect, progress=progress, **args.pg
        )
    if args.warmup:
        progress(f"warm-up: {args.warmup:,} renewals end to end, not counted (a cold broker's JIT)")
        results["warmup"] = await _manual(args, bootstrap, args.warmup)
        progress(f"warm-up: done at {results['warmup'].rate:,.0f} renewals/s (not counted)")
    speed = results["speed"] = {}
    if not args.no_e2e:
        progress(f"end to end: {args.subscriptions:,} subscriptions through the whole flow")
        speed["e2e"] = await machine_speed.settled_probe()
        results["e2e"] = await _manual(args, bootstrap, args.subscriptions)
    if not args.no_engine:
        speed["engine"] = await machine_speed.settled_probe()
        results["engine"] = await _automatic(args, bootstrap)
    if args.busy_subscriptions:
        progress(
            f"end to end, busy dates: {args.busy_subscriptions:,} subscriptions renewing in"
            f" {' and '.join(map(str, e2e.BUSY_DAYS))} days (reminders, automatic quotes due)"
        )
        speed["busy"] = await machine_speed.settled_probe()
        results["busy"] = await _manual(
            args, bootstrap, args.busy_subscriptions, renewal_in_days=e2e.BUSY_DAYS
        )
    if args.bulk_requests:
        measured = [r.rate for r in (results.get("e2e"), results.get("busy")) if r and r.rate]
        top = max(measured, default=args.bulk_fallback_rate)
        pace = max(top / 2 / BULK_SIZE, 0.05)
        progress(
            f"bulk-{BULK_SIZE}: {args.bulk_requests} requests of {BULK_SIZE} subscriptions,"
            f" {pace:.2f} requests/s = half of {top:,.0f} renewals/s (the highest manual rate"
            " measured)"
        )
        speed["bulk"] = await machine_speed.settled_probe()
        results["bulk"] = await _manual(
            args, bootstrap, args.bulk_requests, per_request=BULK_SIZE, pace_per_s=pace
        )
        results["bulk_pace"] = (pace, top)
    if args.scale:
        results["scale"] = await _scale(args, bootstrap)
    return results


async def _scale(args: argparse.Namespace, bootstrap: str) -> dict[str, Any]:
    """N subscriptions and their history loaded set-based, then the same paths measured again."""
    found: dict[str, Any] = {}
    progress(f"scale: migrating and loading {args.scale:,} subscriptions (bench/scale_data.py)")
    found["load"] = await scale_data.load(args.scale, date.today(), progress)
    statements = await hotspots.statements_available()
    found["pg_stat_statements"] = statements
    if statements:
        await hotspots.reset_statements()
    speed = found["speed"] = {}
    if not args.no_e2e:
        progress(f"scale: end to end, {args.subscriptions:,} subscriptions among {args.scale:,}")
        speed["e2e"] = await machine_speed.settled_probe()
        found["e2e"] = await _manual(args, bootstrap, args.subscriptions)
    if not args.no_engine:
        speed["engine"] = await machine_speed.settled_probe()
        found["engine"] = await _automatic(args, bootstrap)
    if statements:
        found["top"] = await hotspots.top_statements()
    progress("scale: EXPLAIN (ANALYZE, BUFFERS) of the hot statements")
    found["explained"] = await hotspots.explain_all()
    hotspots.write_plans(found["explained"], PLANS)
    return found


def render(args: argparse.Namespace, results: dict[str, Any], run_seconds: float) -> dict:
    summary: dict[str, Any] = {
        "subscriptions": args.subscriptions,
        "quick": args.quick,
        "service_env": args.env,
        "target_per_s": TARGET_PER_SECOND,
    }
    kafka: ceilings.KafkaCeiling | None = results.get("kafka")
    pg: list[ceilings.PgCeiling] | None = results.get("pg")
    result: e2e.E2EResult | None = results.get("e2e")

    ceiling_rate = None
    if kafka and pg:
        batched = next(c for c in pg if c.name.endswith("set-based"))
        ceiling_rate = min(kafka.rate, batched.rate)

    warmup: e2e.E2EResult | None = results.get("warmup")
    if warmup:
        summary["warmup"] = render_warmup(warmup)
    if result:
        summary.update(
            render_e2e(
                "End to end, empty tables (renewal.requested → renewed, charged, email accepted"
                " by SMTP)",
                result,
                args.timeout,
                ceiling_rate,
            )
        )

    engine_result: engine.EngineResult | None = results.get("engine")
    if engine_result:
        summary["engine"] = render_engine(engine_result, args.engine_timeout)
    summary.update(render_phases(args, results, ceiling_rate))

    if kafka or pg:
        print("\nRaw ceilings on this machine (measured in this run)")
        ceiling_rows: list[list[object]] = []
        if kafka:
            ceiling_rows.append(
                [
                    f"Kafka produce → consume, {kafka.message_bytes} B, 6 partitions, idempotent",
                    kafka.messages,
                    kafka.roundtrip_seconds,
                    kafka.rate,
                ]
            )
        for c in pg or ():
            ceiling_rows.append(
                [f"PostgreSQL renewal-shaped, {c.name}", c.messages, c.seconds, c.rate]
            )
        print(table(["ceiling", "messages", "seconds", "per second"], ceiling_rows))
        if kafka:
            summary["kafka_roundtrip_per_s"] = round(kafka.rate)
            summary["kafka_produce_per_s"] = round(kafka.messages / kafka.produce_seconds)
        for c in pg or ():
            key = {
                "1 per transaction": "pg_1_per_tx_per_s",
                "100 per transaction, set-based": "pg_100_per_tx_per_s",
                "100 per transaction, statement by statement": "pg_100_per_tx_rowwise_per_s",
            }[c.name]
            summary[key] = round(c.rate)
    if ceiling_rate:
        summary["ceiling_per_s"] = round(ceiling_rate)
        if result:
            summary["fraction_of_ceiling"] = round(result.rate / ceiling_rate, 4)
    summary["run_seconds"] = round(run_seconds, 1)
    print(f"\nWhole bench run: {run_seconds:.0f} s")
    return summary


def render_phases(
    args: argparse.Namespace, results: dict[str, Any], ceiling_rate: float | None
) -> dict[str, Any]:
    """The busy-dates, bulk and scale phases; CPU per renewal per process; the emails' checks."""
    summary: dict[str, Any] = {}
    manual: e2e.E2EResult | None = results.get("e2e")
    automatic: engine.EngineResult | None = results.get("engine")
    busy: e2e.E2EResult | None = results.get("busy")
    if busy:
        summary["busy"] = render_e2e(
            f"End to end, busy dates: renewal dates {' and '.join(map(str, e2e.BUSY_DAYS))} days"
            " out, so reminders and automatic quotes are due too (their emails counted apart)",
            busy,
            args.timeout,
            ceiling_rate,
        )
    bulk: e2e.E2EResult | None = results.get("bulk")
    if bulk:
        summary["bulk_100"] = render_bulk(bulk, *results["bulk_pace"])
    scale: dict[str, Any] = results.get("scale") or {}
    if scale:
        summary["scale"] = render_scale(
            args, scale, manual, automatic, ceiling_rate, results.get("speed") or {}
        )
    summary["machine_speed"] = render_speed(results)

    paths: dict[str, dict[str, float]] = {}
    checks: dict[str, smtp.MailCheck] = {}
    warmup: e2e.E2EResult | None = results.get("warmup")
    if warmup and warmup.mail:  # not counted, but checked: a duplicate it sent is one all the same
        checks["warm-up (not counted)"] = warmup.mail
    for label, e2e_result in (
        ("manual", manual),
        ("manual, busy dates", busy),
        (f"bulk-{BULK_SIZE} paced", bulk),
        ("manual at scale", scale.get("e2e")),
    ):
        if e2e_result:
            paths[label] = costs.per_renewal(_e2e_cpu(e2e_result), _renewals(e2e_result))
            if e2e_result.mail:
                checks[label] = e2e_result.mail
    for label, engine_result in (
        ("automatic", automatic),
        ("automatic at scale", scale.get("engine")),
    ):
        if engine_result:
            paths[label] = costs.per_renewal(engine_result.cpu_with_email, engine_result.renewed)
            checks[label] = engine_result.mail
    if paths:
        summary["cpu_ms_per_renewal_per_process"] = costs.render_cpu(paths)
        print(
            "  manual: until the last confirmation accepted by SMTP; automatic: clocks moved →"
            " the last confirmation (emails included)"
        )
    if checks:
        summary["emails"] = costs.render_mail(checks)
        summary["emails_good"] = all(check.good for check in checks.values())
        print(
            "  confirmations without their total: "
            f"{sum(c.without_total for c in checks.values()):,}; duplicate emails:"
            f" {sum(c.duplicates for c in checks.values()):,} — "
            + ("both 0: the run is good" if summary["emails_good"] else "NOT 0: the run is bad")
        )
    return summary


def render_speed(results: dict[str, Any]) -> dict[str, float]:
    """Each timed phase's machine speed, against the first phase's (bench/machine_speed.py)."""
    probed: list[tuple[str, machine_speed.Speed]] = [
        *(results.get("speed") or {}).items(),
        *(
            (f"{phase} at scale", speed)
            for phase, speed in ((results.get("scale") or {}).get("speed") or {}).items()
        ),
    ]
    if not probed:
        return {}
    first = probed[0][1]
    relative = {name: round(speed.relative_to(first), 3) for name, speed in probed}
    print(
        "\nThis machine's speed before each timed phase (a fixed Python workload, the fastest of"
        f" {machine_speed.BURSTS} bursts of {machine_speed.REPETITIONS} once the machine is quiet;"
        " 100 % = before the first phase)"
    )
    print(
        table(
            ["phase", "workloads/s", "speed"],
            [[name, round(speed.per_second), f"{relative[name]:.0%}"] for name, speed in probed],
        )
    )
    return relative


def _e2e_cpu(result: e2e.E2EResult) -> dict[str, float]:
    return {**{s.name: s.cpu_seconds for s in result.services}, **result.infra_cpu}


def _renewals(result: e2e.E2EResult) -> int:
    """Subscriptions renewed: each confirmed request renewed all of its subscriptions."""
    return result.emails_sent * result.per_request


def render_bulk(result: e2e.E2EResult, pace: float, top: float) -> dict[str, Any]:
    p50 = percentile(result.latencies_ms, 0.50)
    p99 = percentile(result.latencies_ms, 0.99)
    print(
        f"\nBulk-{BULK_SIZE} at half load: {result.subscriptions} requests of {BULK_SIZE}"
        f" subscriptions, one every {1 / pace:.1f} s (half of {top:,.0f} renewals/s)"
    )
    rows: list[list[object]] = [
        ["requests confirmed", f"{result.emails_sent:,} / {result.subscriptions:,}"],
        ["latency p50 / p99", f"{_ms(p50)} / {_ms(p99)}  (request published → email.sent)"],
        ["latency max", _ms(result.latencies_ms[-1] if result.latencies_ms else None)],
        ["target", "p99 ≤ 1,000 ms"],
    ]
    if not result.complete:
        rows.append(["INCOMPLETE", "gave up"])
    print(table(["measure", "value"], rows))
    return {
        "requests": result.subscriptions,
        "confirmed": result.emails_sent,
        "pace_requests_per_s": round(pace, 3),
        "half_of_per_s": round(top, 1),
        "latency_p50_ms": _round(p50),
        "latency_p99_ms": _round(p99),
        "complete": result.complete,
    }


def render_scale(
    args: argparse.Namespace,
    scale: dict[str, Any],
    manual: e2e.E2EResult | None,
    automatic: engine.EngineResult | None,
    ceiling_rate: float | None,
    empty_speed: dict[str, machine_speed.Speed],
) -> dict[str, Any]:
    load = scale["load"]
    out: dict[str, Any] = {"subscriptions": args.scale, "load": load}
    print(
        f"\nScale: {args.scale:,} subscriptions and their history loaded in"
        f" {load['seconds']:.0f} s (bench/scale_data.py), then VACUUM (ANALYZE)"
    )
    print(table(["table", "rows"], sorted(load["rows"].items())))
    scale_manual: e2e.E2EResult | None = scale.get("e2e")
    scale_auto: engine.EngineResult | None = scale.get("engine")
    if scale_manual:
        out["e2e"] = render_e2e(
            f"End to end among {args.scale:,} subscriptions",
            scale_manual,
            args.timeout,
            ceiling_rate,
        )
    if scale_auto:
        out["engine"] = render_engine(scale_auto, args.engine_timeout)
    rows = []
    scale_speed: dict[str, machine_speed.Speed] = scale.get("speed") or {}
    unlike = False
    for name, phase, empty, full in (
        (
            "manual end to end, renewals/s",
            "e2e",
            manual.rate if manual else None,
            scale_manual.rate if scale_manual else None,
        ),
        (
            "automatic (engine), renewals/s",
            "engine",
            automatic.rate if automatic else None,
            scale_auto.rate if scale_auto else None,
        ),
        (
            "engine alone, orders/s once started",
            "engine",
            automatic.engine_busy_rate if automatic else None,
            scale_auto.engine_busy_rate if scale_auto else None,
        ),
    ):
        ratio = full / empty if empty and full is not None else None
        before, after = empty_speed.get(phase), scale_speed.get(phase)
        machine = after.relative_to(before) if before and after else None
        unlike = unlike or machine_speed.comparable(after, before) is False
        rows.append(
            [
                name,
                empty,
                full,
                f"{ratio:.0%}" if ratio is not None else "-",
                ("yes" if ratio >= 0.9 else "NO") if ratio is not None else "-",
                f"{machine:.0%}" if machine is not None else "-",
            ]
        )
        out.setdefault("ratios", {})[name] = _round(ratio, 3)
        out.setdefault("machine_ratios", {})[name] = _round(machine, 3)
    print(f"\nScale against empty tables ({args.scale:,} subscriptions; target: within 10 %)")
    headers = ["rate", "empty tables", f"{args.scale:,} subs", "ratio", "within 10 %", "machine"]
    print(table(headers, rows))
    print(
        "  machine: this machine's own speed before the phase at scale, against before the"
        " same phase on empty tables (bench/machine_speed.py)"
    )
    if unlike:
        print(
            "  the machine's speed moved by more than 10 % between the two: that ratio measures"
            " the machine as well as the tables"
        )

    explained: list[hotspots.Explained] = scale["explained"]
    print(
        "\nHot statements at scale: EXPLAIN (ANALYZE, BUFFERS) as each service's role, rolled back"
        f" (plans in {PLANS.relative_to(e2e.REPO_ROOT)})"
    )
    print(
        table(
            ["service", "statement", "plan", "ms", "buffers", "sequential scans"],
            [
                [
                    e.service,
                    e.name,
                    "generic" if e.mode == "force_generic_plan" else "custom",
                    e.milliseconds,
                    e.buffers,
                    "; ".join(e.scans) or (e.error or "none"),
                ]
                for e in explained
            ],
        )
    )
    out["explained"] = [
        {
            "service": e.service,
            "statement": e.name,
            "plan": e.mode,
            "ms": e.milliseconds,
            "seq_scans": e.scans,
            "error": e.error,
        }
        for e in explained
    ]
    if scale.get("pg_stat_statements"):
        top = scale.get("top") or []
        print("\n  pg_stat_statements, top statements by total time during the scale phase")
        print(
            table(
                ["role", "calls", "total ms", "mean ms", "rows", "query"],
                [
                    [t["role"], t["calls"], t["total_ms"], t["mean_ms"], t["rows"], t["query"]]
                    for t in top
                ],
            )
        )
        out["top_statements"] = top
    else:
        print(
            "  pg_stat_statements: not in shared_preload_libraries (infra.sh does not load it;"
            " the bench does not change the server), so EXPLAIN is the evidence"
        )
    return out


# What one renewal makes each consumer handle: (service, topic) → messages per renewal.
EXPECTED_PER_RENEWAL = {
    ("renewal", "renewal.commands"): 1,
    ("billing", "billing.commands"): 1,
    ("renewal", "billing.events"): 2,  # order.placed and payment.succeeded
    ("notification", "renewal.events"): 1,
}


def render_e2e(
    title: str, result: e2e.E2EResult, timeout: float, ceiling_rate: float | None
) -> dict[str, Any]:
    """An end-to-end phase's tables; its part of the JSON line."""
    p50 = percentile(result.latencies_ms, 0.50)
    p99 = percentile(result.latencies_ms, 0.99)
    print(f"\n{title}")
    rows: list[list[object]] = [
        ["subscriptions renewed", f"{result.emails_sent:,} / {result.subscriptions:,}"],
        ["SMTP messages received", f"{result.smtp_received:,}"],
        [
            "timed part",
            f"{result.seconds:.2f} s (publishing took {result.publish_seconds:.2f} s)",
        ],
        ["renewals per second", f"{result.rate:,.0f}  (target {TARGET_PER_SECOND:,})"],
        ["latency p50 / p99", f"{_ms(p50)} / {_ms(p99)}"],
        ["latency max", _ms(result.latencies_ms[-1] if result.latencies_ms else None)],
    ]
    if ceiling_rate:
        rows.append(
            [
                "share of the ceiling",
                f"{result.rate / ceiling_rate:.1%} of {ceiling_rate:,.0f}/s"
                " (lower of Kafka round trip and PG 100-per-transaction)",
            ]
        )
    if result.failures:
        rows.append(["FAILURES seen", json.dumps(result.failures)])
    if not result.complete:
        rows.append(["INCOMPLETE", f"gave up after {timeout:.0f} s"])
    print(table(["measure", "value"], rows))

    print(
        "\nWhere the time goes: each step's output on Kafka, per renewal (from record timestamps)"
    )
    stage_rows = [
        [
            s.name,
            s.by,
            s.event_type,
            s.count,
            s.first_s,
            s.last_s,
            s.rate,
            percentile(sorted(s.step_ms), 0.5),
            percentile(sorted(s.step_ms), 0.99),
        ]
        for s in result.stages
    ]
    print(
        table(
            [
                "step",
                "by",
                "event",
                "count",
                "first s",
                "last s",
                "per s",
                "step p50 ms",
                "step p99 ms",
            ],
            stage_rows,
        )
    )

    slowest = max(
        (st for st in result.stages if st.step_ms),
        key=lambda st: percentile(sorted(st.step_ms), 0.5) or 0.0,
        default=None,
    )
    if slowest is not None:
        print(
            f"  the longest step: {slowest.name} ({slowest.by}), half the renewals waited"
            f" {_ms(percentile(sorted(slowest.step_ms), 0.5))} or more for it"
        )
    print(f"\nService processes during the timed part ({result.seconds:.1f} s)")
    service_rows = [
        [
            s.name,
            s.pid,
            s.cpu_seconds,
            f"{s.cpu_seconds / result.seconds:.0%}" if result.seconds else "-",
            f"{s.idle_cpu_share:.0%}",
            s.peak_rss_mib,
            int(s.outbox_published),
        ]
        for s in result.services
    ]
    print(
        table(
            [
                "service",
                "pid",
                "CPU s",
                "CPU % of a core",
                "idle CPU %",
                "peak RSS MiB",
                "outbox published",
            ],
            service_rows,
        )
    )
    infra_rows = [
        [
            name,
            cpu,
            f"{cpu / result.seconds:.0%}" if result.seconds else "-",
            f"{result.idle_cpu[name]:.0%}" if name in result.idle_cpu else "-",
        ]
        for name, cpu in result.infra_cpu.items()
    ]
    print(table(["other processes", "CPU s", "CPU % of a core", "idle CPU %"], infra_rows))
    total_cpu = sum(s.cpu_seconds for s in result.services) + sum(result.infra_cpu.values())
    print(
        f"  the whole machine: {total_cpu:.1f} CPU s in {result.seconds:.1f} s ="
        f" {total_cpu / max(result.seconds, 1e-9):.2f} of the machine's 2 cores"
    )
    cost = cpu_per_renewal(result)
    if cost:
        print(
            f"  CPU per renewal: {cost['product_ms']:.2f} ms in the product (services"
            f" {cost['services_ms']:.2f}, Kafka {cost['kafka_ms']:.2f}, PostgreSQL backends"
            f" {cost['postgres_ms']:.2f}; PostgreSQL's shared background processes"
            f" {cost['postgres_shared_ms']:.2f} more) + {cost['smtp_sink_ms']:.2f} ms in the"
            f" SMTP sink + {cost['bench_ms']:.2f} ms in the bench:\n  2 cores can't do more than"
            f" ~{cost['cap_per_s']:,.0f} renewals/s like this"
        )
        others = result.infra_cpu.get(e2e.OTHERS, 0.0) / max(result.seconds, 1e-9)
        if others > 0.2:
            print(
                f"  WARNING: other work on the machine took {others:.0%} of a core during"
                " the timed part: rates and latencies are pessimistic (CPU per renewal is the"
                " steadier figure)"
            )

    print("\nConsumers during the timed part (renewals_handler_batch_seconds)")
    handler_rows = []
    for s in result.services:
        for topic, h in sorted(s.handlers.items()):
            batches = h.get("batches", 0)
            handled = h.get("handled", 0)
            handler_rows.append(
                [
                    s.name,
                    topic,
                    int(batches),
                    int(handled),
                    handled / batches if batches else None,
                    1000 * h.get("seconds", 0) / batches if batches else None,
                    h.get("seconds", 0),
                    f"{h.get('seconds', 0) / result.seconds:.0%}" if result.seconds else "-",
                ]
            )
    print(
        table(
            [
                "service",
                "topic",
                "batches",
                "messages",
                "per batch",
                "ms per batch",
                "busy s",
                "busy %",
            ],
            handler_rows,
        )
    )
    missing = missing_work(result)
    if missing:
        print(
            "  WARNING: the bench's processes handled less than the run needed"
            f" ({'; '.join(missing)}): another stack on this broker shares their consumer"
            " groups (a test run, another checkout's `make run`?). The figures are not valid."
        )
    summary: dict[str, Any] = {}
    summary.update(
        {
            "complete": result.complete,
            "renewed": result.emails_sent,
            "smtp_received": result.smtp_received,
            "seconds": round(result.seconds, 3),
            "renewals_per_s": round(result.rate, 1),
            "latency_p50_ms": _round(p50),
            "latency_p99_ms": _round(p99),
            "peak_rss_mib": {s.name: _round(s.peak_rss_mib) for s in result.services},
            "cpu_seconds": {
                **{s.name: round(s.cpu_seconds, 2) for s in result.services},
                **{k: round(v, 2) for k, v in result.infra_cpu.items()},
            },
            "stages": {
                s.name: {
                    "count": s.count,
                    "last_s": _round(s.last_s, 3),
                    "per_s": _round(s.rate),
                    "step_p50_ms": _round(percentile(sorted(s.step_ms), 0.5)),
                }
                for s in result.stages
            },
            "failures": result.failures,
            "work_missing": missing_work(result),
            "cpu_ms_per_renewal": cpu_per_renewal(result),
            "idle_cpu_share": {k: round(v, 3) for k, v in result.idle_cpu.items()},
        }
    )
    return summary


def render_engine(result: engine.EngineResult, timeout: float) -> dict[str, Any]:
    """The due-date engine's tables; its part of the JSON line."""
    print(
        f"\nDue-date engine: {result.subscriptions:,} auto-renew subscriptions due on"
        f" {result.due_on} over {result.csns:,} CSNs (test_clock.set → subscription.renewed)"
    )
    ordered = result.step("order.requested")
    kafka_engine_rate = (
        ordered.count / ordered.last_s if ordered and ordered.count and ordered.last_s else None
    )
    rows: list[list[object]] = [
        ["subscriptions renewed", f"{result.renewed:,} / {result.subscriptions:,}"],
        [
            "exactly once",
            ("yes" if result.exactly_once else "NO")
            + f": {result.renewed_events:,} subscription.renewed, {result.duplicates:,}"
            f" duplicates, {result.strangers:,} unknown; {result.auto_orders:,} automatic orders"
            f" for {result.auto_orders_subscriptions:,} subscriptions (attempt ≤"
            f" {result.max_attempt})",
        ],
        ["timed part", f"{result.seconds:.2f} s"],
        ["auto-renewals per second", f"{result.rate:,.0f}  (end to end, to subscription.renewed)"],
        [
            "engine: orders per second",
            f"{result.engine_rate:,.0f}  (all {result.subscriptions:,} counted by"
            f" {result.engine_done_s:.1f} s, renewals_due_date_engine_total, sampled every"
            f" {engine.SAMPLE_EVERY} s; the first at {result.engine_first_s or 0:.1f} s)"
            if result.engine_rate and result.engine_done_s
            else f"- (the metric counted {result.engine_ordered:,.0f})",
        ],
        [
            "engine: orders per second once started",
            f"{result.engine_busy_rate:,.0f}  (the metric's first → last; the clocks took"
            f" {result.engine_first_s:.1f} s to be stored and seen by its next look)"
            if result.engine_busy_rate and result.engine_first_s is not None
            else "-",
        ],
        [
            "engine: order.requested per second",
            f"{kafka_engine_rate:,.0f}  (the last on Kafka at {ordered.last_s:.1f} s)"
            if kafka_engine_rate and ordered and ordered.last_s
            else "-",
        ],
        [
            "emails accepted by SMTP",
            f"{result.emails:,}"
            + (f", the last after {result.emails_seconds:.1f} s" if result.emails_seconds else ""),
        ],
        ["subscriptions in renewal's table", f"{result.subscriptions_in_table:,}"],
    ]
    if result.failures:
        rows.append(["FAILURES seen", json.dumps(result.failures)])
    if not result.complete:
        rows.append(["INCOMPLETE", f"gave up after {timeout:.0f} s"])
    print(table(["measure", "value"], rows))
    pace = result.pace()
    if pace:
        print(
            "  the engine's pace (automatic orders per second over the 2 s before, metric): "
            + ", ".join(f"{rate:,.0f} by {t:.0f} s" for t, rate in pace)
        )
    if result.emails < result.subscriptions:
        print(
            f"  note: {result.subscriptions - result.emails:,} confirmation emails had not reached"
            f" SMTP {engine.EMAIL_GRACE_SECONDS:.0f} s after the last renewal (a backlog in"
            " notification's queue?); the next run will find them pending"
        )
    print("\n  Each step on Kafka, for the bench's CSNs (record timestamps after the clocks moved)")
    print(
        table(
            ["event", "by", "count", "first s", "last s", "per s (first → last)"],
            [[s.event_type, s.by, s.count, s.first_s, s.last_s, s.rate] for s in result.steps],
        )
    )
    seconds = max(result.seconds, 1e-9)
    cpu_rows = [
        [name, cpu, f"{cpu / seconds:.0%}"]
        for name, cpu in {**result.services_cpu, **result.infra_cpu}.items()
    ]
    print(f"\n  CPU during the engine's timed part ({result.seconds:.1f} s)")
    print(table(["process", "CPU s", "CPU % of a core"], cpu_rows))
    missing = result.missing_work()
    if missing:
        print(
            "  WARNING: the bench's processes handled less than the run needed"
            f" ({'; '.join(missing)}): another stack on this broker shares their consumer groups"
            " (a test run, another checkout's `make run`?). The figures are not valid."
        )
    return {
        "subscriptions": result.subscriptions,
        "csns": result.csns,
        "complete": result.complete,
        "renewed": result.renewed,
        "exactly_once": result.exactly_once,
        "duplicates": result.duplicates,
        "auto_orders": result.auto_orders,
        "seconds": round(result.seconds, 3),
        "auto_renewals_per_s": round(result.rate, 1),
        "engine_orders_per_s": _round(result.engine_rate),
        "engine_orders_per_s_once_started": _round(result.engine_busy_rate),
        "engine_done_s": _round(result.engine_done_s, 2),
        "engine_first_s": _round(result.engine_first_s, 2),
        "order_requested_per_s": _round(kafka_engine_rate),
        "emails": result.emails,
        "emails_seconds": _round(result.emails_seconds, 2),
        "engine_pace_per_s": [[round(t, 1), round(rate)] for t, rate in pace],
        "steps": {
            s.event_type: {
                "count": s.count,
                "first_s": _round(s.first_s, 2),
                "last_s": _round(s.last_s, 2),
                "per_s": _round(s.rate),
            }
            for s in result.steps
        },
        "failures": result.failures,
        "work_missing": missing,
        "cpu_seconds": {
            k: round(v, 2) for k, v in {**result.services_cpu, **result.infra_cpu}.items()
        },
        "subscriptions_in_table": result.subscriptions_in_table,
    }


def missing_work(result: e2e.E2EResult) -> list[str]:
    """Consumers that handled fewer messages than the renewals needed: someone else took them."""
    handled = {
        (s.name, topic): h.get("handled", 0) + h.get("duplicates", 0) + h.get("skipped", 0)
        for s in result.services
        for topic, h in s.handlers.items()
    }
    return [
        f"{service} on {topic}: {handled.get((service, topic), 0):.0f} of"
        f" {per * result.emails_sent:,}"
        for (service, topic), per in EXPECTED_PER_RENEWAL.items()
        if handled.get((service, topic), 0) < per * result.emails_sent
    ]


def cpu_per_renewal(result: e2e.E2EResult) -> dict[str, float] | None:
    """Milliseconds of CPU one renewal cost, by where; and the rate 2 cores would cap it at."""
    if not result.emails_sent:
        return None
    per = 1000 / result.emails_sent
    services = sum(s.cpu_seconds for s in result.services) * per
    kafka = result.infra_cpu.get(e2e.KAFKA, 0.0) * per
    postgres = result.infra_cpu.get(e2e.POSTGRES, 0.0) * per
    bench = result.infra_cpu.get(e2e.BENCH, 0.0) * per
    sink = result.infra_cpu.get(e2e.SMTP_SINK, 0.0) * per
    shared = result.infra_cpu.get(e2e.POSTGRES_SHARED, 0.0) * per
    product = services + kafka + postgres
    return {
        "product_ms": round(product, 3),
        "services_ms": round(services, 3),
        "kafka_ms": round(kafka, 3),
        "postgres_ms": round(postgres, 3),
        "bench_ms": round(bench, 3),
        "smtp_sink_ms": round(sink, 3),
        "postgres_shared_ms": round(shared, 3),
        "cap_per_s": round(2000 / (product + bench + sink)) if product + bench + sink else 0.0,
    }


def render_warmup(warmup: e2e.E2EResult) -> dict[str, Any]:
    """One line: the warm-up is not a figure of the product, only what it cost the broker."""
    kafka_ms = (cpu_per_renewal(warmup) or {}).get("kafka_ms", 0.0)
    print(
        f"\nWarm-up (not counted): {warmup.emails_sent:,} of {warmup.subscriptions:,} renewals"
        f" end to end at {warmup.rate:,.0f}/s, Kafka {kafka_ms:.2f} CPU-ms per renewal"
    )
    return {
        "subscriptions": warmup.subscriptions,
        "complete": warmup.complete,
        "renewals_per_s": _round(warmup.rate),
        "kafka_cpu_ms_per_renewal": kafka_ms,
    }


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f} ms"


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    bootstrap = MessagingSettings().kafka_bootstrap
    refusal = preflight(bootstrap)
    if refusal:
        print(f"bench: {refusal}", file=sys.stderr)
        return 2
    parts = []
    if args.warmup:
        parts.append(f"a warm-up of {args.warmup:,} not counted")
    if not args.no_e2e:
        parts.append(f"{args.subscriptions:,} subscriptions end to end")
    if not args.no_ceilings:
        parts.append(f"{args.kafka_messages:,} Kafka messages")
    if not args.no_engine:
        parts.append(f"{args.engine_subscriptions:,} automatic renewals by the due-date engine")
    if args.busy_subscriptions:
        parts.append(f"{args.busy_subscriptions:,} on busy dates")
    if args.bulk_requests:
        parts.append(f"{args.bulk_requests} bulk-{BULK_SIZE} requests at half load")
    if args.scale:
        parts.append(f"then again among {args.scale:,} subscriptions")
    progress(f"bench: {', '.join(parts) or 'nothing to do'}{' (quick)' if args.quick else ''}")
    try:
        results = asyncio.run(measure(args, bootstrap))
    except e2e.DevStackRunning as refused:
        print(f"bench: {refused}", file=sys.stderr)
        return 2
    summary = render(args, results, time.monotonic() - CLOCK_STARTED)
    print(json.dumps(summary, separators=(",", ":")), flush=True)
    return 0 if good(results, summary) else 1


def good(results: dict[str, Any], summary: dict[str, Any]) -> bool:
    """Every phase complete, nothing failed, every renewal exactly once, and the emails right
    (no confirmation without its total, no duplicate)."""
    scale = results.get("scale") or {}
    # the warm-up too: not counted, but a renewal it lost or an email it got wrong is a fault
    manual = [results.get(k) for k in ("warmup", "e2e", "busy", "bulk")] + [scale.get("e2e")]
    automatic = [results.get("engine"), scale.get("engine")]
    ok = summary.get("emails_good", True)
    for result in filter(None, manual):
        ok = ok and result.complete and not result.failures and not missing_work(result)
    for engine_result in filter(None, automatic):
        ok = ok and (
            engine_result.complete
            and engine_result.exactly_once
            and not engine_result.failures
            and not engine_result.missing_work()
        )
    return bool(ok)


if __name__ == "__main__":
    sys.exit(main())
