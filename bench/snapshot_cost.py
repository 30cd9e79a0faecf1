"""The cost of storing upstream snapshots in renewal: one batch at once against one by one.

    uv run python -m bench.snapshot_cost                 # 500 snapshots, 5 rounds
    uv run python -m bench.snapshot_cost --snapshots 2000

Issue 19 item 4 (set-based): renewal's `subscription.upserted` handler
(services/renewal/state.py `snapshot_handler`) on a scratch schema migrated as renewal's, in one
transaction per round as the consumer runs a batch: "one by one" hands it each delivery alone (what
the consumer does when it retries a batch, and what the handler did for every event before it took
batches: time zones, upsert and state announce per event), "batch" hands it all of them. Each round
stores new subscriptions, then a newer revision of each (the update path). Figures: wall ms, this
process's CPU ms and the PostgreSQL backend's CPU ms (its /proc stat), per round and per snapshot.
Not a test: figures move with the machine's load; compare the two lines of one run.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from bench import e2e
from bench.procstat import cpu_seconds
from deploy.local.samples import subscription
from services.renewal.state import snapshot_handler
from shared.clock import FixedClock
from shared.contracts.envelope import new_event
from shared.db.migrate import apply_migrations
from shared.eligibility import Policy
from shared.messaging.consumer import Delivery, UnitOfWork

NOW = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)


def deliveries(run: str, count: int, revision: int) -> list[Delivery]:
    renewal_date = date(2027, 1, 14) + timedelta(days=revision)
    found = []
    for n in range(count):
        csn = f"SNAP-{run}-{n % 20}"
        data = subscription(f"S-{run}-{n}", csn, renewal_date=renewal_date, revision=revision)
        found.append(Delivery(new_event(data, subject=csn, source="/bench", time=NOW), None))
    return found


async def store(connection: Any, batches: list[list[Delivery]]) -> None:
    handle = snapshot_handler(Policy(), "/bench", FixedClock(NOW))
    async with connection.transaction():
        unit = UnitOfWork(connection)
        for batch in batches:
            await handle(unit, batch)
        await unit.outbox.flush(connection)


async def measure(connection: Any, backend: int, mode: str, count: int, rounds: int) -> str:
    wall = cpu = pg = 0.0
    for _ in range(rounds):
        run = uuid.uuid4().hex[:8]
        for revision in (1, 2):  # new subscriptions, then a newer snapshot of each
            given = deliveries(run, count, revision)
            batches = [[d] for d in given] if mode == "one by one" else [given]
            started, started_cpu = time.perf_counter(), time.process_time()
            started_pg = cpu_seconds(backend) or 0.0
            await store(connection, batches)
            wall += time.perf_counter() - started
            cpu += time.process_time() - started_cpu
            pg += (cpu_seconds(backend) or 0.0) - started_pg
    stored = 2 * count * rounds
    return (
        f"{mode:>10}: {stored:,} snapshots in {wall:6.2f} s wall; per snapshot"
        f" {1000 * wall / stored:.3f} ms wall, {1000 * cpu / stored:.3f} ms CPU here,"
        f" {1000 * pg / stored:.3f} ms CPU in the PostgreSQL backend"
    )


async def main(args: argparse.Namespace) -> None:
    schema = f"bench_snap_{uuid.uuid4().hex[:8]}"
    connection = await e2e.admin_connect()
    try:
        await connection.execute(f"CREATE SCHEMA {schema}")
        await connection.execute(f"SET search_path = {schema}")
        await apply_migrations(connection, schema, "renewal")
        backend = await connection.fetchval("SELECT pg_backend_pid()")
        print(
            f"renewal's snapshot handler, {args.snapshots:,} subscription.upserted a round"
            f" (new, then a newer revision), {args.rounds} rounds, one transaction each"
        )
        for mode in ("one by one", "batch"):
            print(await measure(connection, backend, mode, args.snapshots, args.rounds))
    finally:
        await connection.execute(f"DROP SCHEMA {schema} CASCADE")
        await connection.close()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.snapshot_cost", description=__doc__)
    parser.add_argument("--snapshots", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
