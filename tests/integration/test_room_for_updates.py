"""Issue 19: the tables every renewal updates leave room on their pages (fillfactor 70: renewal
021, billing 008, notification 019, quote 014), so a row's new version goes beside the old one.
On a full page it goes to another page: PostgreSQL then logs a row lock besides the update and
dirties two pages (in the bench's A/B of the automatic path, a tenth less product CPU a
renewal and an eighth less WAL bytes; the manual path showed no difference: the commit that
added the migrations)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import asyncpg
import pytest

from deploy.local.samples import subscription, unique_csn
from services.renewal.auto_renew import set_auto_renew_handler
from services.renewal.state import snapshot_handler
from shared.clock import FixedClock
from shared.contracts.common import Actor
from shared.contracts.renewal_commands import SetAutoRenew
from shared.db.settings import DatabaseSettings
from shared.eligibility import Policy
from tests.integration.helpers import (
    connection_to,
    delivered,
    handle_in_transaction,
    migrated_schema,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CLOCK = FixedClock(NOW)
POLICY = Policy()

# The tables a renewal updates, by service (README, "The renewal lifecycle", beside the indexes).
UPDATED_PER_RENEWAL = {
    "renewal": ["subscriptions", "orders"],
    "billing": ["orders"],
    "notification": ["emails", "subscriptions", "subscription_states"],
    "quote": ["subscriptions", "subscription_states"],
}


@pytest.mark.parametrize("service", sorted(UPDATED_PER_RENEWAL))
async def test_issue_19_the_tables_a_renewal_updates_leave_room_on_their_pages(
    admin_db: asyncpg.Connection, service: str
) -> None:
    async with (
        migrated_schema(admin_db, service) as settings,
        connection_to(settings) as connection,
    ):
        rows = await connection.fetch(
            "SELECT c.relname, o.option_value::int FROM pg_class AS c"
            " JOIN pg_namespace AS n ON n.oid = c.relnamespace"
            " CROSS JOIN LATERAL pg_options_to_table(c.reloptions) AS o"
            " WHERE n.nspname = current_schema() AND o.option_name = 'fillfactor'"
        )
    fillfactors: dict[str, int] = {row["relname"]: row["option_value"] for row in rows}
    assert {table: fillfactors.get(table) for table in UPDATED_PER_RENEWAL[service]} == {
        table: 70 for table in UPDATED_PER_RENEWAL[service]
    }


def _page(ctid: str) -> int:
    return int(ctid.strip("()").split(",")[0])


async def test_issue_19_a_subscription_updated_on_a_page_of_others_stays_on_it(
    renewal_db: DatabaseSettings,
) -> None:
    """Forty subscriptions stored in one batch fill more than one page; switching auto-renew
    off on one of the first page writes its new version on that same page."""
    csn = unique_csn("ROOM")
    snapshots = [
        subscription(f"S{n:02}-{csn}", csn, renewal_date=date(2026, 4, 10), auto_renew=True)
        for n in range(40)
    ]
    await handle_in_transaction(
        renewal_db,
        snapshot_handler(POLICY, "/t", CLOCK),
        [delivered(s, csn, time=NOW) for s in snapshots],
    )
    where = "SELECT ctid::text FROM subscriptions WHERE subscription_id = $1"
    async with connection_to(renewal_db) as connection:
        pages = {
            _page(r[0]) for r in await connection.fetch("SELECT ctid::text FROM subscriptions")
        }
        first = snapshots[0].subscription_id
        before = _page(await connection.fetchval(where, first))
    assert len(pages) > 1 and before == min(pages)  # the first page is as full as it gets

    switch = SetAutoRenew(
        request_id=f"r-{csn}",
        actor=Actor(user_id=f"{csn}-buyer", csn=csn),
        subscription_ids=[first],
        enabled=False,
    )
    await handle_in_transaction(
        renewal_db,
        set_auto_renew_handler(CLOCK, POLICY, "/t"),
        delivered(switch, csn, time=NOW + timedelta(minutes=1), signer="portal"),
    )
    async with connection_to(renewal_db) as connection:
        after = await connection.fetchval(where, first)
        switched = await connection.fetchval(
            "SELECT auto_renew FROM subscriptions WHERE subscription_id = $1", first
        )
    assert switched is False  # the update happened
    assert _page(after) == before
