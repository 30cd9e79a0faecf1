"""A time-driven loop's claim on each CSN's clock, as index probes bounded by what is due.

`COALESCE(test_clock.today, $1)` in a claim's WHERE hides the bound from the planner: it reads
every subscription (or quote; issue 19 item 2). A claim built here asks twice instead, each half
on an index whose key is the loop's "due from" date:
- the rows of CSNs without a test clock, due by the system's today (`$1`), read in key order so
  that the LIMIT stops the scan;
- those of CSNs with a test clock, due by that clock's today, one `(csn, key)` probe per clock
  (a test object: production has none, the bench and the test suites a few hundred).
Each half locks what it takes (`FOR UPDATE OF s SKIP LOCKED`: replicas share the work), and the
two together take at most `limit` rows.
"""

from __future__ import annotations

from collections.abc import Callable

from shared.test_clocks import zoned_today

# (rows, today) → `SELECT … FROM {rows} … WHERE …`: the claim's conditions, due by `today` (a
# date expression); no ORDER BY, LIMIT or locking clause (added here).
DueRows = Callable[[str, str], str]


# The latest today anywhere (UTC+14): a bound on every CSN's today, whatever its time zone.
LATEST_TODAY = "($1::timestamptz AT TIME ZONE 'Etc/GMT-14')::date"


def claim_on_each_clock(
    due: DueRows,
    *,
    key: str,
    limit: str,
    then: str,
    table: str = "subscriptions",
    alias: str = "s",
    zoned_bound: str | None = None,
    due_at: str | None = None,
    due_range: str | None = None,
    csn_collation: str | None = None,
) -> str:
    """The claim's SQL: `due` for CSNs without a test clock (read in `key` order), then for
    those with one (the clock's today), `limit` rows in all of `table` (its `csn` column), named
    `alias`; `then` reads the claimed rows (`FROM claimed`).

    `$1` is the clock's now: a CSN without a test clock is due by the date in its time zone
    (csn_time_zones, else UTC: shared/test_clocks.py), its rows read up to the latest today
    anywhere — a day's more at most — by `zoned_bound` (`key`'s comparison with a date, e.g.
    "q.expires_on <").

    `due_at`, where the rows carry their CSN's zone (`{alias}.time_zone`): the instant a row
    is due (a timestamptz, on an index): the rows without a test clock are then read in its
    order up to now, and no further — not a day's more (`zoned_bound` is not needed).
    `due_range`: the condition on `due_at` they are read by instead of "up to now", for a key
    that is not the instant a row is due (automatic quotes': its renewal date's, due some days
    before).

    `csn_collation`: the collation of the `(csn, key)` index's CSN, asked for by the probe of
    each clock, so that only that index can answer it (an index of the CSN alone cannot)."""
    clock_csn = f"{alias}.csn" + (f' COLLATE "{csn_collation}"' if csn_collation else "")
    if due_at is None:
        if zoned_bound is None:
            raise ValueError("a claim keyed on a date reads it up to `zoned_bound`")
        rows = f"{table} AS {alias} LEFT JOIN csn_time_zones AS z ON z.csn = {alias}.csn"
        today = zoned_today("$1")
        bound = f"\n      AND {zoned_bound} {LATEST_TODAY}"
    else:
        rows, today = f"{table} AS {alias}", zoned_today("$1", alias)
        bound, key = f"\n      AND {due_range or f'{due_at} <= $1'}", due_at
    return f"""
WITH unclocked AS (
    {due(rows, today)}
      AND NOT EXISTS (SELECT 1 FROM test_clocks AS clock WHERE clock.csn = {alias}.csn){bound}
    ORDER BY {key}
    LIMIT {limit}
    FOR UPDATE OF {alias} SKIP LOCKED
), clocked AS (
    SELECT due.* FROM test_clocks AS c CROSS JOIN LATERAL (
        {due(f"{table} AS {alias}", "c.today")}
          AND {clock_csn} = c.csn
        OFFSET 0  -- kept apart: one probe per clock, however many clocks the planner guesses
        FOR UPDATE OF {alias} SKIP LOCKED  -- as the LIMIT below pulls them, no more
    ) AS due
    LIMIT {limit} - (SELECT count(*) FROM unclocked)
), claimed AS (
    SELECT * FROM unclocked UNION ALL SELECT * FROM clocked
)
{then}
"""
