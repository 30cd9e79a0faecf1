"""The migration runner: each migration once, whoever runs it and however many at once."""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter

import asyncpg
import pytest

from shared.db.migrate import migrate, migrations_for
from shared.db.settings import DatabaseSettings
from tests.integration.helpers import connection_to


async def applied_names(connection: asyncpg.Connection, schema: str) -> list[str]:
    rows = await connection.fetch(f'SELECT name FROM "{schema}".schema_migrations ORDER BY name')
    return [row["name"] for row in rows]


async def test_migrating_twice_applies_nothing_the_second_time(
    admin_db: asyncpg.Connection,
) -> None:
    await migrate("renewal")

    again = await migrate("renewal")

    assert again == []
    names = await applied_names(admin_db, "renewal")
    assert set(names) == {m.name for m in migrations_for("renewal")}


async def test_concurrent_migrations_of_the_same_service_do_not_conflict(
    admin_db: asyncpg.Connection,
) -> None:
    results = await asyncio.gather(migrate("renewal"), migrate("renewal"), migrate("renewal"))

    assert all(result == [] for result in results)  # already migrated by now
    names = await applied_names(admin_db, "renewal")
    assert not [name for name, times in Counter(names).items() if times > 1]


async def test_replicas_starting_together_on_an_empty_schema_apply_each_migration_once(
    scratch_database: DatabaseSettings,
) -> None:
    expected = [m.name for m in migrations_for("quote")]

    results = await asyncio.gather(*(migrate("quote", scratch_database) for _ in range(4)))

    # The lock on schema_migrations serialises them: the first applies everything, the others nothing.
    assert sorted(results, key=len, reverse=True) == [expected, [], [], []]
    async with connection_to(scratch_database) as connection:
        assert await applied_names(connection, scratch_database.schema_name) == sorted(expected)
        # The messaging and catalog tables exist in the new schema, owned by the quote role.
        tables = await connection.fetch(
            "SELECT tablename, tableowner FROM pg_tables WHERE schemaname = $1",
            scratch_database.schema_name,
        )
        assert {"inbox", "outbox", "prices", "promotions", "schema_migrations"} <= {
            t["tablename"] for t in tables
        }
        assert {t["tableowner"] for t in tables} == {"quote_svc"}


async def test_a_failing_migration_is_rolled_back_and_not_recorded(
    scratch_database: DatabaseSettings,
) -> None:
    async with connection_to(scratch_database) as connection:
        # Something in the way of the first migration: its `CREATE TABLE outbox` fails.
        await connection.execute("CREATE TABLE outbox (id int)")

        with pytest.raises(asyncpg.DuplicateTableError):
            await migrate("quote", scratch_database)

        assert await applied_names(connection, scratch_database.schema_name) == []
        # The migration's earlier statements were rolled back with it.
        assert await connection.fetchval("SELECT to_regclass('inbox')") is None

        await connection.execute("DROP TABLE outbox")
        applied = await migrate("quote", scratch_database)

        assert applied == [m.name for m in migrations_for("quote")]


async def test_another_service_s_role_cannot_hold_up_the_migrations(
    scratch_database: DatabaseSettings,
) -> None:
    """Issue 16, item 6: the runner's lock is its own `schema_migrations` table, which no other
    role can reach; the former advisory key, held by billing's role, stops nothing."""
    schema = scratch_database.schema_name
    await migrate("quote", scratch_database)
    key = hashlib.sha256(f"migrate:{schema}".encode()).digest()[:8]
    async with connection_to(DatabaseSettings.for_service("billing")) as intruder:
        await intruder.execute(
            "SELECT pg_advisory_lock($1)", int.from_bytes(key, "big", signed=True)
        )
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            async with intruder.transaction():
                await intruder.execute(f'LOCK TABLE "{schema}".schema_migrations')

        assert await asyncio.wait_for(migrate("quote", scratch_database), 10) == []
