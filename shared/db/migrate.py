"""Numbered SQL migrations for one service schema, applied once each under a lock of the schema.

The shared messaging tables (`shared/db/migrations`) come first, then the service's own
(`services/<service>/migrations`). Run at service start-up and by `python -m shared.db.migrate`.
A migration may include a file of SQL that several services apply to their own tables
(`shared/db/sql/`) with psql's `\\ir path`, relative to the migration's folder.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from shared.db.pool import connect
from shared.db.settings import DatabaseSettings
from shared.db.types import DbConnection

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_MIGRATIONS = Path(__file__).resolve().parent / "migrations"
CATALOG_MIGRATIONS = REPO_ROOT / "shared" / "catalog" / "migrations"

# The migration sets of each service, in order: the messaging tables every service has, the
# catalog tables of the services that price, then the service's own.
MIGRATION_SETS: dict[str, list[tuple[str, Path]]] = {
    service: [("shared", SHARED_MIGRATIONS)]
    + ([("catalog", CATALOG_MIGRATIONS)] if service in {"renewal", "quote", "notification"} else [])
    + [(service, REPO_ROOT / "services" / service / "migrations")]
    for service in ("renewal", "billing", "quote", "notification")
}


@dataclass(frozen=True)
class Migration:
    name: str
    sql: str


# psql's include relative to the file (`\ir path`), alone on its line.
INCLUDE = re.compile(r"^\\ir\s+(\S+)\s*$", re.MULTILINE)


def migration_sql(path: Path) -> str:
    """The migration's SQL, each `\\ir` replaced by the file it names (one level deep)."""
    return INCLUDE.sub(lambda found: (path.parent / found[1]).read_text(), path.read_text())


def migrations_for(service: str) -> list[Migration]:
    found = []
    for prefix, folder in MIGRATION_SETS[service]:
        for path in sorted(folder.glob("[0-9][0-9][0-9]_*.sql")):
            found.append(Migration(f"{prefix}/{path.stem}", migration_sql(path)))
    return found


async def _create_ledger(connection: DbConnection, schema: str) -> None:
    """`schema_migrations`, once: replicas creating it at the same moment collide in the
    catalog even with IF NOT EXISTS — a unique violation on pg_type, or "type already exists"
    (DuplicateObjectError: seen in CI) — and the loser tries again."""
    for attempt in range(5):
        try:
            await connection.execute(
                f"""CREATE TABLE IF NOT EXISTS "{schema}".schema_migrations (
                        name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"""
            )
            return
        except (
            asyncpg.UniqueViolationError,
            asyncpg.DuplicateTableError,
            asyncpg.DuplicateObjectError,
        ):
            if attempt == 4:
                raise


async def apply_migrations(connection: DbConnection, schema: str, service: str) -> list[str]:
    """Apply what is missing, in one transaction; returns the names applied. Safe to run from
    several replicas at once: they queue on a lock of the schema's own `schema_migrations`
    table, which no other service's role can reach (an advisory lock, database-wide, anyone
    could take and so stop a service from starting)."""
    await _create_ledger(connection, schema)
    async with connection.transaction():
        await connection.execute(f'LOCK TABLE "{schema}".schema_migrations IN EXCLUSIVE MODE')
        rows = await connection.fetch(f'SELECT name FROM "{schema}".schema_migrations')
        done = {row["name"] for row in rows}
        applied = []
        for migration in migrations_for(service):
            if migration.name in done:
                continue
            await connection.execute(migration.sql)
            await connection.execute(
                f'INSERT INTO "{schema}".schema_migrations (name) VALUES ($1)', migration.name
            )
            applied.append(migration.name)
    for name in applied:
        log.info("migration applied", extra={"migration": name, "schema": schema})
    return applied


async def migrate(service: str, settings: DatabaseSettings | None = None) -> list[str]:
    settings = settings or DatabaseSettings.for_service(service)
    connection = await connect(settings)
    try:
        return await apply_migrations(connection, settings.schema_name, service)
    finally:
        await connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description="Apply a service's database migrations.")
    parser.add_argument("services", nargs="+", choices=sorted(MIGRATION_SETS))
    args = parser.parse_args()
    for service in args.services:
        applied = asyncio.run(migrate(service))
        print(
            f"{service}: {len(applied)} migration(s) applied"
            + (f": {', '.join(applied)}" if applied else "")
        )


if __name__ == "__main__":
    main()
