"""The scale phase's data (issue 19 item 7): written as the product's own rows — every column of
every table it fills, snapshots the product reads back — and quiet: nothing comes due."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime

import pytest

from bench import database, scale_data
from services.notification.reminders import DUE as REMINDERS_DUE
from services.quote.automatic import DUE as QUOTES_DUE
from services.renewal.due_date_engine import DUE as ENGINE_DUE
from shared.contracts.subscription_events import SubscriptionUpserted

COUNT = 400


@pytest.fixture(scope="module")
async def loaded() -> AsyncIterator[dict]:
    name = f"renewals_bench_test_{uuid.uuid4().hex[:8]}"
    previous = os.environ.get("RENEWALS_PG_DATABASE")
    await database.create_fresh(name)
    try:
        yield await scale_data.load(COUNT, date.today(), lambda _: None)
    finally:
        await database.drop(name, previous)


def _columns(sql: str) -> set[str]:
    listed = re.search(r"INSERT INTO \w+ \(([^)]*)\)", sql)
    assert listed is not None
    return {c.strip() for c in listed.group(1).split(",")}


async def test_every_column_of_every_table_filled_is_written(loaded: dict) -> None:
    for service in ("renewal", "billing", "notification", "quote"):
        connection = await scale_data.service_connect(service)
        try:
            for owner, sql in scale_data.STATEMENTS:
                if owner != service:
                    continue
                table = sql.split("INSERT INTO ", 1)[1].split(" ", 1)[0]
                columns = {
                    r["column_name"]
                    for r in await connection.fetch(
                        "SELECT column_name, column_default FROM information_schema.columns"
                        " WHERE table_schema = $1 AND table_name = $2"
                        " AND coalesce(column_default, '') NOT LIKE 'nextval%'",
                        service,
                        table,
                    )
                }
                assert columns - _columns(sql) == set(), f"{service}.{table}: a migration added"
        finally:
            await connection.close()
    assert loaded["rows"]["renewal.subscriptions"] == COUNT


async def test_the_services_read_the_snapshots_back(loaded: dict) -> None:
    for service in ("renewal", "notification", "quote"):
        connection = await scale_data.service_connect(service)
        try:
            # quote keeps the snapshot apart (its migration 012)
            snapshots = "subscription_snapshots" if service == "quote" else "subscriptions"
            rows = await connection.fetch(
                "SELECT s.subscription_id, s.csn, s.renewal_date, k.snapshot::text AS snapshot"
                f" FROM subscriptions AS s JOIN {snapshots} AS k USING (subscription_id)"
            )
        finally:
            await connection.close()
        assert len(rows) == COUNT
        for row in rows:
            snapshot = SubscriptionUpserted.model_validate_json(row["snapshot"])
            assert (snapshot.subscription_id, snapshot.csn, snapshot.renewal_date) == (
                row["subscription_id"],
                row["csn"],
                row["renewal_date"],
            )
            assert snapshot.buyer.email == f"buyer@{row['csn'].lower()}.example.com"


async def test_nothing_is_due_today_so_the_timed_phases_do_the_same_work(loaded: dict) -> None:
    now = datetime.now(UTC)  # the claims' $1: the clock's now, each CSN's today in its zone
    for service, sql, args in (
        ("renewal", ENGINE_DUE, (now, 500, None)),
        ("notification", REMINDERS_DUE, (now, 500, None)),
        ("quote", QUOTES_DUE, (now, 30, None, 200)),
    ):
        connection = await scale_data.service_connect(service)
        try:
            assert await connection.fetch(sql, *args) == [], service
        finally:
            await connection.close()
