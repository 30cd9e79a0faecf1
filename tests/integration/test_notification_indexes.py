"""Issue 19: notification's subscriptions carry only the indexes its statements read.

A moved renewal date cannot be HOT (the reminder claim's keys depend on it), so every index
costs an entry each time a renewal is followed (store.move_renewal_dates).
"""

from __future__ import annotations

from shared.db.settings import DatabaseSettings
from tests.integration.helpers import connection_to, index_names

# What reads each one: the primary key every lookup by id; the next-reminder keys the reminder
# scheduler's claim, by CSN for the CSNs on a test clock (migration 007) and by instant for the
# others (migration 013).
READ_BY_A_STATEMENT = {
    "subscriptions_pkey",
    "subscriptions_csn_next_reminder",
    "subscriptions_next_reminder_at",
}


async def test_no_index_of_subscriptions_that_no_statement_reads(
    notification_db: DatabaseSettings,
) -> None:
    async with connection_to(notification_db) as connection:
        names = await index_names(connection, notification_db.schema_name)

    # migration 015 dropped subscriptions_renewal_date, read by no claim since migration 007
    assert names == READ_BY_A_STATEMENT
