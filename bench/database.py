"""The bench's own database: created empty for each run, dropped at the end.

Figures taken on the dev database depend on whatever earlier runs and test suites left in it
(issue 19: the same bench fell from 169/s to 19.5/s on a used database). The bench therefore
makes `renewals_bench` (or `--database NAME`) afresh — the same roles and one schema per service
owned by its role, as deploy/local/db_bootstrap.sql makes `renewals` — and points its services
and itself at it through RENEWALS_PG_DATABASE; the services migrate it when they start.
"""

from __future__ import annotations

import os

import asyncpg

from bench import e2e

SCHEMAS = {
    "renewal": "renewal_svc",
    "billing": "billing_svc",
    "quote": "quote_svc",
    "notification": "notification_svc",
}


async def create_fresh(name: str) -> None:
    """Drop `name` if there, create it empty with the services' schemas, and use it from now on
    (this process and the service processes it starts)."""
    admin = await e2e.admin_connect()  # still the configured database (`renewals`)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
        roles = ", ".join(SCHEMAS.values())
        await admin.execute(f'REVOKE ALL ON DATABASE "{name}" FROM PUBLIC')
        await admin.execute(f'GRANT CONNECT, TEMPORARY ON DATABASE "{name}" TO {roles}')
    finally:
        await admin.close()
    os.environ["RENEWALS_PG_DATABASE"] = name
    bench_db = await e2e.admin_connect()
    try:
        await bench_db.execute("REVOKE ALL ON SCHEMA public FROM PUBLIC")
        for schema, role in SCHEMAS.items():
            await bench_db.execute(f"CREATE SCHEMA {schema} AUTHORIZATION {role}")
    finally:
        await bench_db.close()


async def drop(name: str, previous: str | None) -> None:
    if previous is None:
        os.environ.pop("RENEWALS_PG_DATABASE", None)
    else:
        os.environ["RENEWALS_PG_DATABASE"] = previous
    admin: asyncpg.Connection = await e2e.admin_connect()
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
