"""A migration's `\\ir` includes are expanded before it is applied (shared/db/migrate.py)."""

from __future__ import annotations

from pathlib import Path

from shared.db.migrate import MIGRATION_SETS, migration_sql, migrations_for


def test_an_include_is_replaced_by_the_file_it_names_relative_to_the_migration(
    tmp_path: Path,
) -> None:
    (tmp_path / "sql").mkdir()
    (tmp_path / "sql" / "shared.sql").write_text("CREATE TABLE shared_part (id int);\n")
    migration = tmp_path / "migrations" / "001_first.sql"
    migration.parent.mkdir()
    migration.write_text("-- before\n\\ir ../sql/shared.sql\nCREATE INDEX after ON t (id);\n")

    assert migration_sql(migration) == (
        "-- before\nCREATE TABLE shared_part (id int);\n\nCREATE INDEX after ON t (id);\n"
    )


def test_every_service_s_migrations_are_plain_sql_once_expanded() -> None:
    """No include is left for the server (it does not know psql's meta-commands), and the
    three services whose claims key on local midnight each define it once, by the include (and
    replace it once, by another)."""
    for service in MIGRATION_SETS:
        migrations = migrations_for(service)
        assert not any("\\ir " in migration.sql for migration in migrations), service
        defining = [m.name for m in migrations if "CREATE FUNCTION local_midnight" in m.sql]
        expected = {
            "renewal": ["renewal/014_due_instants"],
            "notification": ["notification/013_reminder_instants"],
            "quote": ["quote/010_automatic_quote_instants"],
            "billing": [],
        }[service]
        assert defining == expected
        # and replace it once with the first of two midnights (local_midnight_first_instant.sql)
        replacing = [
            m.name for m in migrations if "CREATE OR REPLACE FUNCTION local_midnight" in m.sql
        ]
        replaced = {
            "renewal": ["renewal/020_first_of_two_midnights"],
            "notification": ["notification/018_first_of_two_midnights"],
            "quote": ["quote/013_first_of_two_midnights"],
            "billing": [],
        }[service]
        assert replacing == replaced
