"""Issue 19 item 2: the time-driven loops' claims read what is due, not the table.

50,000 subscriptions and their history (bench/scale_data.py: the product's own rows, as the
scale phase loads them), then `EXPLAIN (ANALYZE, FORMAT JSON)` of each claim — the due-date
engine (AUTO-1, AUTO-5, LIFE-2, LIFE-3), the reminders (NOTE-1), the automatic quotes (QUO-7),
quote expiry (QUO-8) — with the plan PostgreSQL picks for the values and with the generic plan
a prepared statement may switch to: no sequential scan of a table that grows with the business, and the rows read from
those tables bounded by the claim's size, on a quiet day, on a day with work due on the system's
clock, and on a busy day on test clocks. The assertions are on the plans, never on time.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest

from bench import database, hotspots, scale_data
from services.notification.reminders import BATCH as REMINDERS_BATCH
from services.notification.reminders import COVERED as REMINDERS_COVERED
from services.notification.reminders import DUE as REMINDERS_DUE
from services.quote.automatic import BATCH as QUOTES_BATCH
from services.quote.automatic import DUE as QUOTES_DUE
from services.quote.expiry import BATCH as EXPIRY_BATCH
from services.quote.expiry import DUE as EXPIRY_DUE
from services.renewal.due_date_engine import DUE as ENGINE_DUE
from services.renewal.state import CHANGED_STATES
from shared.test_clocks import save_time_zones

SUBSCRIPTIONS = 50_000
# The tables that grow with the business (subscriptions and their history), loaded here; and
# one that holds only the orders in flight (empty here: a sequential scan of it reads nothing,
# what it reads counts all the same).
LOADED = {
    "subscriptions",
    "quotes",
    "orders",
    "emails",
    "auto_renewals",
    "automatic_quotes",
    "open_quotes",
    "subscription_history",
}
GROWING = LOADED | {"term_reservations"}
TODAY = date.today()


@dataclass(frozen=True)
class Claim:
    service: str
    name: str
    sql: str
    types: str  # of its parameters, for PREPARE
    limit: int
    params: tuple[Any, ...]  # after today
    now: bool = False  # its first parameter is the clock's now (noon that day), not today


CLAIMS = (
    # each on each CSN's today in its time zone: $1 is the clock's now
    Claim(
        "renewal", "due-date engine", ENGINE_DUE, "timestamptz, int, text", 50, (50, None), now=True
    ),
    Claim(
        "notification",
        "reminders",
        REMINDERS_DUE,
        "timestamptz, int, text",
        REMINDERS_BATCH,
        (REMINDERS_BATCH, None),
        now=True,
    ),
    Claim(
        "quote",
        "automatic quotes",
        QUOTES_DUE,
        "timestamptz, int, text, int",
        QUOTES_BATCH,
        (30, None, QUOTES_BATCH),
        now=True,
    ),
    Claim(
        "quote",
        "quote expiry",
        EXPIRY_DUE,
        "timestamptz, int, text",
        EXPIRY_BATCH,
        (EXPIRY_BATCH, None),
        now=True,
    ),
)
# (name, the claim's today, setup run first in the same rolled-back transaction)
DAYS = (
    ("a quiet day", TODAY, None),
    # about 3/364 of the subscriptions renewing, and their reminder and quote days come
    ("three days on", TODAY + timedelta(days=3), None),
    # 25 CSNs' test clocks 100 days ahead: their 100 subscriptions due, lapsed, reminded, quoted
    ("a busy day on test clocks", TODAY, hotspots.DUE_CLOCKS),
)


@pytest.fixture(scope="module")
async def loaded() -> AsyncIterator[dict]:
    name = f"renewals_hot_queries_{uuid.uuid4().hex[:8]}"
    previous = os.environ.get("RENEWALS_PG_DATABASE")
    await database.create_fresh(name)
    try:
        yield await scale_data.load(SUBSCRIPTIONS, TODAY, lambda _: None)
    finally:
        await database.drop(name, previous)


def nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


def rows_read(node: dict[str, Any]) -> int:
    """What a scan node read in all: the rows it returned and those it threw away, every loop."""
    per_loop = (
        node.get("Actual Rows", 0)
        + node.get("Rows Removed by Filter", 0)
        + node.get("Rows Removed by Index Recheck", 0)
    )
    return int(per_loop * node.get("Actual Loops", 1))


def literal(value: Any) -> str:
    return "NULL" if value is None else f"'{value}'"


async def explain(claim: Claim, today: date, setup: str | None, mode: str) -> dict[str, Any]:
    """The plan of the claim prepared as the service prepares it (asyncpg prepares every
    statement), executed once: a custom plan for its values, or the generic one."""
    connection = await scale_data.service_connect(claim.service)
    try:
        transaction = connection.transaction()
        await transaction.start()
        try:
            await connection.execute(f"SET LOCAL plan_cache_mode = {mode}")
            if setup:
                await connection.execute(setup, TODAY)
            await connection.execute(f"PREPARE claim ({claim.types}) AS {claim.sql}")
            first = datetime.combine(today, time(12), UTC) if claim.now else today
            values = ", ".join(literal(value) for value in (first, *claim.params))
            found = await connection.fetchval(
                f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE claim ({values})"
            )
        finally:
            await transaction.rollback()
    finally:
        await connection.close()
    return json.loads(found)[0]["Plan"]


@pytest.mark.parametrize("mode", ["auto", "force_generic_plan"])
@pytest.mark.parametrize("day", DAYS, ids=[day[0] for day in DAYS])
@pytest.mark.parametrize("claim", CLAIMS, ids=[claim.name for claim in CLAIMS])
async def test_a_claim_reads_what_is_due_not_the_table(
    loaded: dict, claim: Claim, day: tuple[str, date, str | None], mode: str
) -> None:
    assert loaded["rows"][f"{claim.service}.subscriptions"] == SUBSCRIPTIONS
    _, today, setup = day

    plan = await explain(claim, today, setup, mode)

    scans = [node for node in nodes(plan) if node.get("Relation Name") in GROWING]
    assert scans, "the claim reads none of the growing tables?"
    sequential = [
        node["Relation Name"]
        for node in scans
        if node["Node Type"] == "Seq Scan" and node["Relation Name"] in LOADED
    ]
    assert sequential == [], f"{claim.name} scans {sequential} whole"
    read = {f"{n['Relation Name']} ({n['Node Type']})": rows_read(n) for n in scans}
    # A claim of `limit` rows, each with a probe or two of its history: a few times the claim's
    # size at most, whatever the number of subscriptions.
    assert sum(read.values()) <= 4 * claim.limit, f"{claim.name} read {read}"


ANNOUNCED = 50  # subscriptions whose state one transaction changed


async def test_announcing_states_reads_what_changed_not_the_table(loaded: dict) -> None:
    """Issue 14 item 2 / issue 19: `subscription.state` is announced after every change, so its
    statement (the changed subscriptions' rows, their open order and open quote) is as hot as
    any claim: it reads what changed, never the quotes or subscriptions accumulated."""
    connection = await scale_data.service_connect("renewal")
    try:
        transaction = connection.transaction()
        await transaction.start()
        try:
            await connection.execute(
                "INSERT INTO state_changes SELECT subscription_id FROM subscriptions"
                f" ORDER BY subscription_id LIMIT {ANNOUNCED}"
            )
            await connection.execute(f"PREPARE announce AS {CHANGED_STATES}")
            found = await connection.fetchval("EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE announce")
        finally:
            await transaction.rollback()  # nothing announced, nothing kept
    finally:
        await connection.close()
    plan = json.loads(found)[0]["Plan"]

    scans = [node for node in nodes(plan) if node.get("Relation Name") in GROWING]
    read = {f"{n['Relation Name']} ({n['Node Type']})": rows_read(n) for n in scans}
    assert any(name.startswith("quotes") for name in read), f"no open quote looked up? {read}"
    assert sum(read.values()) <= 4 * ANNOUNCED, f"the announce read {read}"


# Test clocks on CSNs with nothing due that day (their subscriptions renew later in the year):
# the engine probes each clock's CSN, and a probe must cost what is due there, not the CSN.
IDLE_CLOCKS = (
    "INSERT INTO test_clocks (csn, today) SELECT 'SCALE-' || lpad(n::text, 8, '0'),"
    " $1::date FROM generate_series(0, 199) AS n ON CONFLICT (csn) DO NOTHING"
)
ENGINE = CLAIMS[0]


@pytest.mark.parametrize("mode", ["auto", "force_generic_plan"])
@pytest.mark.parametrize(
    "day",
    [DAYS[0], DAYS[1], ("test clocks with nothing due", TODAY, IDLE_CLOCKS)],
    ids=["a quiet day", "three days on", "test clocks with nothing due"],
)
async def test_the_engine_reads_the_subscriptions_it_claims_and_no_others(
    loaded: dict, day: tuple[str, date, str | None], mode: str
) -> None:
    """Issue 19 item 1: the engine's claim at noon UTC reads no subscription due tomorrow (the
    day's more up to UTC+14's today that migration 009's key read, a day of renewals: 2,748 rows
    a claim among a million), and no subscription of a test-clocked CSN that is not due: each
    clock's probe is on the (csn, next check) index, never on the CSN's alone, which the planner
    took at a million subscriptions (every subscription of each clocked CSN read at each claim)."""
    _, today, setup = day

    plan = await explain(ENGINE, today, setup, mode)

    scans = [n for n in nodes(plan) if n.get("Relation Name") == "subscriptions"]
    read = sum(rows_read(n) for n in scans)
    assert read <= plan["Actual Rows"], f"{read} subscriptions read for {plan['Actual Rows']}"
    assert "subscriptions_csn" not in {n.get("Index Name") for n in scans}


REMINDERS, AUTOMATIC_QUOTES = CLAIMS[1], CLAIMS[2]
# Subscriptions automatic quotes never looked at, their renewal date past (first seen after it,
# say): they stay in the claim's index, and a claim must not read them again and again.
SEEN_LATE = (
    "UPDATE subscriptions SET renewal_date = $1::date - 10, automatic_quote_for = NULL"
    " WHERE subscription_id IN"
    " (SELECT subscription_id FROM subscriptions ORDER BY subscription_id LIMIT 1000)"
)
QUIET = (
    (REMINDERS, DAYS[0]),
    (REMINDERS, ("test clocks with nothing due", TODAY, IDLE_CLOCKS)),
    (AUTOMATIC_QUOTES, DAYS[0]),
    (AUTOMATIC_QUOTES, ("test clocks with nothing due", TODAY, IDLE_CLOCKS)),
    (AUTOMATIC_QUOTES, ("subscriptions seen after their renewal date", TODAY, SEEN_LATE)),
)


@pytest.mark.parametrize("mode", ["auto", "force_generic_plan"])
@pytest.mark.parametrize(
    ("claim", "day"), QUIET, ids=[f"{claim.name}, {day[0]}" for claim, day in QUIET]
)
async def test_a_claim_with_nothing_due_reads_no_subscription(
    loaded: dict, claim: Claim, day: tuple[str, date, str | None], mode: str
) -> None:
    """Issue 19 item 2: nothing is due at noon UTC (the scale data's scheduler and automatic
    quotes looked today), and the reminders' and automatic quotes' claims read no subscription.
    Keyed on dates read up to UTC+14's today, they read the next day's: a day of reminders
    (8,244 rows a claim among a million) and of renewal dates a day past the quote day (2,748),
    and every subscription first seen after its renewal date. Their keys are now the instants
    those days come in each CSN's zone (notification migration 013, quote migration 010)."""
    _, today, setup = day

    plan = await explain(claim, today, setup, mode)

    scans = [n for n in nodes(plan) if n.get("Relation Name") == "subscriptions"]
    read = {f"{n.get('Index Name', n['Node Type'])}": rows_read(n) for n in scans}
    assert plan["Actual Rows"] == 0, "the scale data has something due today?"
    assert sum(read.values()) == 0, f"{claim.name} read {read}"


@pytest.mark.parametrize("service", ["renewal", "notification", "quote"])
async def test_saving_a_csns_time_zone_moves_its_subscriptions_without_reading_the_others(
    loaded: dict, service: str
) -> None:
    """Every batch of `subscription.upserted` saves its CSNs' zones (shared/test_clocks.py), and
    the triggers of the shared time-zone SQL move the zone of each CSN's subscriptions. Quote had
    no index of the CSN alone (quote migration 011): each save read every subscription, 642 ms a
    statement at a million. The transaction's own table statistics (`pg_stat_xact_user_tables`)
    show each service's subscriptions found by index, never scanned whole."""
    connection = await scale_data.service_connect(service)
    try:
        transaction = connection.transaction()
        await transaction.start()
        try:
            await save_time_zones(
                connection,
                [
                    ZoneOf("SCALE-00000001", "Europe/Paris"),  # its subscriptions move
                    ZoneOf(f"NEW-{uuid.uuid4().hex[:8]}", "Asia/Tokyo"),  # none yet
                ],
            )
            await save_time_zones(connection, [ZoneOf("SCALE-00000001", None)])  # back to UTC
            scans = await connection.fetchrow(
                "SELECT seq_scan, idx_scan FROM pg_stat_xact_user_tables"
                " WHERE relid = 'subscriptions'::regclass"
            )
        finally:
            await transaction.rollback()
    finally:
        await connection.close()
    assert scans["seq_scan"] == 0, dict(scans)
    assert scans["idx_scan"] > 0, dict(scans)  # it did look: the zone moved by index


@pytest.mark.parametrize("mode", ["auto", "force_generic_plan"])
async def test_the_reminders_quote_probe_reads_the_quotes_of_the_claim_not_every_open_quote(
    loaded: dict, mode: str
) -> None:
    """NOTE-1, issue 19: which of a claim's subscriptions an open quote covers is asked once per
    claim (`reminders.COVERED`). Asked as an overlap of the whole claim's ids, the planner read
    every open quote for its custom plan (580-650 ms a claim of 500 among the 41,220 open quotes
    of a million subscriptions); a GIN probe per id reads only the quotes that cover them."""
    ids, expected = await _a_claim_and_its_covered()
    connection = await scale_data.service_connect("notification")
    try:
        transaction = connection.transaction()
        await transaction.start()
        try:
            await connection.execute(f"SET LOCAL plan_cache_mode = {mode}")
            covered = await connection.fetch(REMINDERS_COVERED, ids)
            scans = await connection.fetchrow(
                "SELECT seq_scan, idx_scan FROM pg_stat_xact_user_tables"
                " WHERE relid = 'open_quotes'::regclass"
            )
        finally:
            await transaction.rollback()
    finally:
        await connection.close()
    assert {row["sid"] for row in covered} == expected
    assert scans["seq_scan"] == 0, dict(scans)


async def _a_claim_and_its_covered() -> tuple[list[str], set[str]]:
    """A claim's worth of subscriptions, some an open quote covers; and which, answered the
    slow, obvious way (every open quote read). On a connection of its own: the probe's counts
    of scans are read from its transaction's statistics."""
    connection = await scale_data.service_connect("notification")
    try:
        ids = await connection.fetchval(
            """SELECT array_agg(sid) FROM (
                   (SELECT unnest(subscription_ids) FROM open_quotes LIMIT $1 / 5)
                   UNION (SELECT subscription_id FROM subscriptions LIMIT $1)
                   LIMIT $1) AS claimed(sid)""",
            REMINDERS_BATCH,
        )
        rows = await connection.fetch("SELECT subscription_ids FROM open_quotes")
    finally:
        await connection.close()
    covered = {sid for row in rows for sid in row["subscription_ids"]} & set(ids)
    assert covered, "the scale data has open quotes among these subscriptions"
    return ids, covered


@dataclass(frozen=True)
class ZoneOf:
    csn: str
    timezone: str | None
