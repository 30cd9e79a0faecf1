"""Which database errors are transient: the infrastructure's fault, to retry, never the data's.

One classification for the consumers and the time-driven loops. A transient error says nothing
about the message or row being worked: the same work done again a moment later succeeds (the
connection is back, the other transaction of the deadlock has finished, a writable primary has
taken over). Anything else may fail the same way for ever and is the caller's to set aside.
"""

from __future__ import annotations

import asyncpg

CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,  # SQLSTATE class 08
    asyncpg.CannotConnectNowError,  # 57P03: starting up or shutting down
    asyncpg.TooManyConnectionsError,  # 53300
    asyncpg.AdminShutdownError,  # 57P01
    asyncpg.CrashShutdownError,  # 57P02
)
"""The database (or the network to it) is not there."""

CONCURRENCY_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.SerializationError,  # 40001: lost a serializable (or repeatable read) race
    asyncpg.DeadlockDetectedError,  # 40P01: chosen as the deadlock's victim
    asyncpg.ReadOnlySQLTransactionError,  # 25006: still on a primary that became a standby
    asyncpg.QueryCanceledError,  # 57014: statement_timeout, or cancelled under load
    asyncpg.LockNotAvailableError,  # 55P03: lock_timeout, or NOWAIT on a row another holds
)
"""The database is there, but this attempt lost to another one, a failover or a timeout."""

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = CONNECTION_ERRORS + CONCURRENCY_ERRORS

TRANSIENT_SQLSTATES = frozenset(
    {"40001", "40P01", "25006", "57014", "55P03", "57P01", "57P02", "57P03"}
)
"""The same, by SQLSTATE: asyncpg raises a generic `PostgresError` for a code it does not map."""


def is_transient(error: BaseException) -> bool:
    """Whether `error`, or the error it was raised from, is the infrastructure's and not the
    work's: the work should be retried as it is (after a pause), never dead-lettered."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, TRANSIENT_ERRORS):
            return True
        sqlstate = getattr(current, "sqlstate", None)
        if isinstance(sqlstate, str) and (
            sqlstate in TRANSIENT_SQLSTATES or sqlstate.startswith("08")
        ):
            return True
        current = current.__cause__
    return False
