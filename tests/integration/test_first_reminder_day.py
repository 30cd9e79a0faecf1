"""Issue 19: notification's first reminder day of a date (migration 016) is one expression the
planner inlines, and it answers as migration 014's function did for every schedule, date and
first day not looked at yet (NOTE-1: the reminder days before the renewal date)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import date

import asyncpg
import pytest

from services.notification.store import MOVE_RENEWAL_DATES
from tests.integration.helpers import migrated

# Migration 014's definition, which the new one replaces: the reference it must agree with.
FIRST_REMINDER_DAY_014 = """
CREATE FUNCTION first_reminder_day_014(renewal_date date, look_from date) RETURNS date
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM reminder_schedule) THEN '-infinity'::date
                ELSE (SELECT min(renewal_date - d)
                      FROM reminder_schedule, unnest(days) AS d
                      WHERE d > 0 AND renewal_date - d >= look_from) END
$$"""

# Renewal dates from 120 days before to 120 days after a day, each with every first day not
# looked at yet from 120 days before it to 10 days after: 241 x 131 pairs.
DISAGREEMENTS = """
SELECT count(*) AS pairs,
       count(*) FILTER (WHERE first_reminder_day(r, l, (SELECT days FROM reminder_schedule))
                              IS DISTINCT FROM first_reminder_day_014(r, l)) AS disagree
FROM generate_series(-120, 120) AS a, generate_series(-120, 10) AS b,
     LATERAL (SELECT $1::date + a AS r) AS rd, LATERAL (SELECT r + b AS l) AS ld"""


@pytest.fixture
async def pool(admin_db: asyncpg.Connection) -> AsyncIterator[asyncpg.Pool]:
    async with migrated(admin_db, "notification") as pool:
        await pool.execute(FIRST_REMINDER_DAY_014)
        yield pool


@pytest.mark.parametrize(
    "recorded",
    [
        None,  # the scheduler has not recorded a schedule yet
        [],
        [7],
        [90, 30, 7],  # the policy's default
        [7, 30, 90],
        [90, 7, 30, 7],  # any order, a day twice: kept sorted (width_bucket needs it)
        [-3, 0, 7, 30],  # a day on or after the date is no reminder
        [0],
    ],
)
async def test_issue_19_note_1_the_inlined_first_reminder_day_answers_as_migration_14s(
    pool: asyncpg.Pool, recorded: list[int] | None
) -> None:
    if recorded is not None:
        await pool.execute("INSERT INTO reminder_schedule (days) VALUES ($1)", recorded)

    row = await pool.fetchrow(DISAGREEMENTS, date(2026, 6, 1))

    assert row["pairs"] == 241 * 131
    assert row["disagree"] == 0


async def test_issue_19_the_recorded_schedule_is_kept_sorted(pool: asyncpg.Pool) -> None:
    await pool.execute("INSERT INTO reminder_schedule (days) VALUES ($1)", [90, 7, 30, 7])
    assert await pool.fetchval("SELECT days FROM reminder_schedule") == [7, 30, 90]

    await pool.execute("UPDATE reminder_schedule SET days = $1", [14, 3])
    assert await pool.fetchval("SELECT days FROM reminder_schedule") == [3, 14]


async def test_issue_19_a_moved_renewal_date_calls_no_function_per_row(pool: asyncpg.Pool) -> None:
    """The move's plan evaluates the day as an expression (width_bucket) in the update itself:
    no call of a SQL function, which PostgreSQL runs as a query of its own for each row."""
    async with pool.acquire() as connection, connection.transaction():
        [plan] = json.loads(
            await connection.fetchval(
                f"EXPLAIN (VERBOSE, FORMAT JSON) {MOVE_RENEWAL_DATES}", ["S-1"], [date(2027, 1, 1)]
            )
        )
    text = json.dumps(plan)

    assert "width_bucket" in text
    assert "first_reminder_day" not in text
