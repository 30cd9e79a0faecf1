"""Issue 19: renewal's subscriptions carry only the indexes its statements read.

No update of a subscription can be HOT (each writes a column of the due-date engine's keys), so
every index costs an entry per row version: twice per automatic renewal (the engine's look,
settlement's new renewal date).
"""

from __future__ import annotations

from shared.db.settings import DatabaseSettings
from tests.integration.helpers import connection_to, index_names

# What reads each one: the primary key every write path's lookup by id; the CSN's the lookups by
# customer; the two next-check keys the due-date engine's claim (migrations 009 and 014).
READ_BY_A_STATEMENT = {
    "subscriptions_pkey",
    "subscriptions_csn",
    "subscriptions_csn_next_check",
    "subscriptions_next_check_at",
}


async def test_no_index_of_subscriptions_that_no_statement_reads(
    renewal_db: DatabaseSettings,
) -> None:
    async with connection_to(renewal_db) as connection:
        names = await index_names(connection, renewal_db.schema_name)

    # migration 017 dropped subscriptions_renewal_date, read by no claim since migration 009
    assert names == READ_BY_A_STATEMENT
