"""The hot statements at scale: `EXPLAIN (ANALYZE, BUFFERS)` of the services' own SQL, and
`pg_stat_statements`' top statements by time when the server has it loaded.

The statements are imported from the services' modules (not copied), so the bench explains what
the product runs today; each runs as its service's role in a transaction rolled back at once
(the claims lock rows, the upserts write). infra.sh does not preload pg_stat_statements, and the
bench does not change the server's configuration: without it the EXPLAINs are the evidence.
"""

from __future__ import annotations

import importlib
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from bench import e2e, scale_data


@dataclass(frozen=True)
class Hot:
    service: str
    name: str  # what it does
    where: str  # module:CONSTANT the SQL is read from (None: inline below)
    params: Callable[[date, datetime], tuple[Any, ...]]
    sql: str | None = None
    setup: str | None = None  # run first in the same (rolled back) transaction; $1 = today


# "On a busy day": test clocks 100 days ahead for the first 25 scale CSNs (100 subscriptions,
# about 30 of them due, more with a reminder or quote day passed): the claims then have rows
# to work on, and their per-candidate costs (the subqueries) show in the plan.
DUE_CLOCKS = (
    "INSERT INTO test_clocks (csn, today) SELECT 'SCALE-' || lpad(n::text, 8, '0'),"
    " $1::date + 100 FROM generate_series(0, 24) AS n ON CONFLICT (csn) DO NOTHING"
)
# An EXPLAIN ANALYZE runs the statement: one that scans for minutes is cut and reported so.
STATEMENT_TIMEOUT = "180s"


MODES = ("auto", "force_generic_plan")
CLAIMS: tuple[Hot, ...] = (
    Hot(
        "renewal",
        # a claim of 50, not of the engine's batch: each candidate may cost a scan of quotes
        "due-date engine: claim 50 due subscriptions",
        "services.renewal.due_date_engine:DUE",
        lambda today, now: (now, 50, None),
    ),
    Hot(
        "notification",
        "reminder scheduler: claim due reminders",
        "services.notification.reminders:DUE",
        lambda today, now: (now, 500, None),
    ),
    Hot(
        "quote",
        "automatic quotes: claim due subscriptions",
        "services.quote.automatic:DUE",
        lambda today, now: (now, 30, None, 200),
    ),
    Hot(
        "quote",
        "quote expiry: claim quotes past their expiry date",
        "services.quote.expiry:DUE",
        lambda today, now: (now, 500, None),
    ),
)
HOT: tuple[Hot, ...] = (
    *CLAIMS,
    *(
        Hot(c.service, c.name + ", on a busy day", c.where, c.params, c.sql, DUE_CLOCKS)
        for c in CLAIMS
    ),
    Hot(
        "notification",
        "email sender: lease a claim",
        "services.notification.leases:CLAIM",
        lambda today, now: (now, now + timedelta(seconds=60), 20, uuid.uuid4()),
    ),
    Hot(
        "notification",
        "subscription.renewed: queue a batch's order confirmations",
        "services.notification.store:QUEUE_CONFIRMATIONS",
        lambda today, now: (_confirmation(), now),
    ),
)


def _confirmation() -> str:
    """One new confirmation of a one-line order, as the queue's upsert takes it."""
    order_id = str(uuid.uuid4())
    item = {"subscription_id": "SCALE-00000000-SUB-1", "product_name": "P", "term": "annual"}
    email = {
        "notification_key": f"order_confirmation:{order_id}",
        "csn": "SCALE-00000000",
        "recipients": ["buyer@scale.example.com"],
        "locale": "en-US",
        "context": {"order_id": order_id, "items": [item], "total": "420.00", "currency": "USD"},
        "subscription_ids": ["SCALE-00000000-SUB-1"],
        "order_id": order_id,
        "renewed_in_order": 1,
        "traceparent": None,
    }
    return json.dumps([email])


@dataclass
class Explained:
    service: str
    name: str
    mode: str  # plan_cache_mode: auto (a custom plan for these values) | force_generic_plan
    milliseconds: float | None
    scans: list[str]  # nodes that read ≥ 1,000 rows in all, the most first: what must not grow
    buffers: str
    plan: str
    error: str | None = None


def _sql(hot: Hot) -> str | None:
    if hot.sql is not None:
        return hot.sql
    module, _, name = hot.where.partition(":")
    return getattr(importlib.import_module(module), name, None)


async def explain_all(today: date | None = None) -> list[Explained]:
    """Each hot statement with a plan for its values, and with the generic plan a prepared
    statement may switch to after five calls (asyncpg prepares every statement)."""
    today = today or date.today()
    now = datetime.now(UTC)
    found = []
    for hot in HOT:
        sql = _sql(hot)
        for mode in MODES:
            if sql is None:
                found.append(Explained(hot.service, hot.name, mode, None, [], "", "", "gone"))
                continue
            connection = await scale_data.service_connect(hot.service)
            try:
                transaction = connection.transaction()
                await transaction.start()
                try:
                    await connection.execute(f"SET LOCAL plan_cache_mode = {mode}")
                    await connection.execute(f"SET LOCAL statement_timeout = '{STATEMENT_TIMEOUT}'")
                    # As the services run it (shared/db/pool.py): without it a claim's time at
                    # a million rows was mostly JIT compiling, 40-60 ms the services never pay.
                    await connection.execute("SET LOCAL jit = off")
                    if hot.setup:
                        await connection.execute(hot.setup, today)
                    # PREPARE, as asyncpg does: an EXPLAIN of the statement with parameters
                    # would plan it for their values whatever plan_cache_mode says.
                    await connection.execute(f"PREPARE hot AS {sql}")
                    values = ", ".join(_literal(value) for value in hot.params(today, now))
                    rows = await connection.fetch(
                        f"EXPLAIN (ANALYZE, BUFFERS) EXECUTE hot ({values})"
                    )
                finally:
                    await transaction.rollback()
                found.append(_read(hot, mode, "\n".join(r[0] for r in rows)))
            except asyncpg.PostgresError as error:
                found.append(Explained(hot.service, hot.name, mode, None, [], "", "", repr(error)))
            finally:
                await connection.close()
    return found


def _literal(value: Any) -> str:
    """A parameter's value as an SQL literal of unknown type (PREPARE inferred the types)."""
    if value is None:
        return "NULL"
    if isinstance(value, list):
        value = "{" + ",".join(f'"{item}"' for item in value) + "}"
    return "'" + str(value).replace("'", "''") + "'"


def _read(hot: Hot, mode: str, plan: str) -> Explained:
    executed = re.search(r"Execution Time: ([\d.]+) ms", plan)
    lines = plan.splitlines()
    # Every node that reads a table (sequential or index scan), with the rows it read in all.
    read_by_node = [
        _scan(line, lines[i + 1 : i + 5])
        for i, line in enumerate(lines)
        if " Scan " in line and " on " in line and "never executed" not in line
    ]
    scans = [text for text, read in sorted(read_by_node, key=lambda scan: -scan[1]) if read >= 1000]
    top_buffers = next((line.strip() for line in plan.splitlines() if "Buffers:" in line), "")
    return Explained(
        hot.service,
        hot.name,
        mode,
        float(executed.group(1)) if executed else None,
        scans,
        top_buffers.removeprefix("Buffers: "),
        plan,
    )


def _scan(line: str, details: list[str]) -> tuple[str, int]:
    """`Seq Scan on quotes q (… rows=0 loops=300)` + `Rows Removed by Filter: 10705` →
    (`quotes (Seq Scan): 10,705 rows × 300 loops`, 3,211,500): the rows a node read in all."""
    table = re.search(r"(\w+(?: Only)? Scan)(?: Backward)?(?: using \S+)? on (\S+)", line)
    actual = re.search(r"actual time=[\d.]+\.\.[\d.]+ rows=(\d+) loops=(\d+)", line)
    name = f"{table.group(2)} ({table.group(1)})" if table else "?"
    if not actual:
        return name, 0
    removed = 0
    for detail in details:
        if "->" in detail:
            break
        found = re.search(r"Rows Removed by (?:Filter|Index Recheck): (\d+)", detail)
        if found:
            removed += int(found.group(1))
    read, loops = int(actual.group(1)) + removed, int(actual.group(2))
    text = f"{name}: {read:,} rows" + (f" × {loops:,} loops" if loops > 1 else "")
    return text, read * loops


def write_plans(explained: list[Explained], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "\n\n".join(
            f"-- {e.service}: {e.name} (plan_cache_mode {e.mode})\n{e.error or e.plan}"
            for e in explained
        )
        + "\n"
    )


async def statements_available() -> bool:
    """pg_stat_statements is loaded by the server (shared_preload_libraries)."""
    admin = await e2e.admin_connect()
    try:
        preload = await admin.fetchval("SELECT current_setting('shared_preload_libraries')")
        if "pg_stat_statements" not in (preload or ""):
            return False
        await admin.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        return True
    finally:
        await admin.close()


async def reset_statements() -> None:
    admin = await e2e.admin_connect()
    try:
        await admin.execute("SELECT pg_stat_statements_reset()")
    finally:
        await admin.close()


async def top_statements(limit: int = 10) -> list[dict[str, Any]]:
    admin = await e2e.admin_connect()
    try:
        rows = await admin.fetch(
            "SELECT r.rolname AS role, s.calls, s.total_exec_time AS total_ms,"
            " s.mean_exec_time AS mean_ms, s.rows, left(regexp_replace(s.query, '\\s+', ' ',"
            " 'g'), 110) AS query FROM pg_stat_statements AS s JOIN pg_roles AS r"
            " ON r.oid = s.userid WHERE r.rolname LIKE '%\\_svc'"
            " ORDER BY s.total_exec_time DESC LIMIT $1",
            limit,
        )
        return [dict(r) for r in rows]
    finally:
        await admin.close()
