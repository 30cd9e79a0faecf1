"""Each service role uses its own schema and nothing else (STYLE 6): no reading across schemas,
no creating anywhere but at home."""

from __future__ import annotations

import stat
import uuid
from pathlib import Path

import asyncpg
import pytest

from shared.db.migrate import migrate
from shared.db.settings import DatabaseSettings
from tests.integration.helpers import connection_to

SERVICES = ("renewal", "billing", "quote", "notification")
A_TABLE_OF = {
    "renewal": "renewal.subscriptions",
    "billing": "billing.orders",
    "quote": "quote.prices",
    "notification": "notification.emails",
}


@pytest.fixture(scope="module", autouse=True)
async def migrated(kafka_bootstrap: str) -> None:
    for service in SERVICES:
        await migrate(service)


@pytest.mark.parametrize("table", ["billing.orders", "billing.inbox", "quote.prices"])
async def test_renewal_svc_cannot_read_another_schema(table: str) -> None:
    async with connection_to(DatabaseSettings.for_service("renewal")) as renewal:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await renewal.fetch(f"SELECT * FROM {table} LIMIT 1")


@pytest.mark.parametrize("schema", ["billing", "notification", "public"])
async def test_renewal_svc_cannot_create_a_table_in_another_schema(schema: str) -> None:
    async with connection_to(DatabaseSettings.for_service("renewal")) as renewal:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await renewal.execute(
                f"CREATE TABLE {schema}.it_intruder_{uuid.uuid4().hex[:8]} (x int)"
            )


async def test_renewal_svc_cannot_write_into_another_schema() -> None:
    async with connection_to(DatabaseSettings.for_service("renewal")) as renewal:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await renewal.execute("DELETE FROM billing.outbox")


async def test_a_service_role_cannot_create_a_schema() -> None:
    async with connection_to(DatabaseSettings.for_service("billing")) as billing:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await billing.execute(f"CREATE SCHEMA it_{uuid.uuid4().hex[:8]}")


@pytest.mark.parametrize("service", SERVICES)
async def test_each_role_creates_and_reads_in_its_own_schema(service: str) -> None:
    table = f"it_probe_{uuid.uuid4().hex[:8]}"
    async with connection_to(DatabaseSettings.for_service(service)) as connection:
        # Unqualified names land in the service's schema: its search_path is that schema.
        await connection.execute(f"CREATE TABLE {table} (x int)")
        try:
            where = await connection.fetchval(
                "SELECT table_schema FROM information_schema.tables WHERE table_name = $1", table
            )
            assert where == service
            await connection.fetch(f"SELECT * FROM {A_TABLE_OF[service]} LIMIT 1")
        finally:
            await connection.execute(f"DROP TABLE {table}")


@pytest.mark.parametrize("service", SERVICES)
async def test_no_role_reads_the_schema_of_the_others(service: str) -> None:
    async with connection_to(DatabaseSettings.for_service(service)) as connection:
        for other, table in A_TABLE_OF.items():
            if other == service:
                continue
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await connection.fetch(f"SELECT 1 FROM {table} LIMIT 1")


@pytest.mark.parametrize(
    ("user", "password"),
    [(f"{s}_svc", f"{s}_svc") for s in SERVICES] + [("postgres", "postgres")],
)
async def test_no_role_has_the_password_it_used_to(user: str, password: str) -> None:
    """Issue 16, item 6: the passwords are generated (.local/secrets.env), not the role's name."""
    settings = DatabaseSettings.for_service("renewal").model_copy(
        update={"user": user, "password": password}
    )
    with pytest.raises(asyncpg.InvalidPasswordError):
        async with connection_to(settings):
            pass


async def test_each_role_logs_in_with_its_generated_password() -> None:
    for service in SERVICES:
        async with connection_to(DatabaseSettings.for_service(service)) as connection:
            assert await connection.fetchval("SELECT current_user") == f"{service}_svc"


async def test_only_the_servers_own_user_reaches_the_trusted_socket(
    admin_db: asyncpg.Connection,
) -> None:
    """pg_hba trusts the Unix socket (deploy/local/infra.sh bootstraps the roles over it): the
    socket file must then be closed to every other account of the machine, or any of them is the
    superuser without a password."""
    directory = (await admin_db.fetchval("SHOW unix_socket_directories")).split(",")[0].strip()
    port = await admin_db.fetchval("SHOW port")
    socket_file = Path(directory) / f".s.PGSQL.{port}"
    assert stat.S_ISSOCK(socket_file.stat().st_mode)
    assert stat.S_IMODE(socket_file.stat().st_mode) & 0o077 == 0, oct(socket_file.stat().st_mode)
