"""The request id is every command's idempotency key (CONTRACT.md): seen once, answered once.

Each service that answers commands directly keeps an `answered_requests` table.
"""

from shared.db.types import DbConnection


async def first_time(connection: DbConnection, request_id: str, command: str) -> bool:
    """Record the request id; False when it was already answered."""
    recorded = await connection.fetchval(
        "INSERT INTO answered_requests (request_id, command) VALUES ($1, $2)"
        " ON CONFLICT (request_id) DO NOTHING RETURNING true",
        request_id,
        command,
    )
    return bool(recorded)
