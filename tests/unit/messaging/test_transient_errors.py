"""One classification of database errors (issue 15 item 3): transient ones are retried as the
infrastructure's, never dead-lettered; anything else is the message's."""

from __future__ import annotations

import asyncpg
import pytest

from shared.db.errors import is_transient


def postgres_error(sqlstate: str) -> asyncpg.PostgresError:
    """What asyncpg raises for a server error: the class mapped from its SQLSTATE."""
    error_class = asyncpg.PostgresError.get_message_class_for_sqlstate(sqlstate)  # type: ignore[attr-defined]
    return error_class(f"sqlstate {sqlstate}")  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    "error",
    [
        postgres_error("40001"),  # serialization_failure
        postgres_error("40P01"),  # deadlock_detected
        postgres_error("25006"),  # read_only_sql_transaction: a failover happened
        postgres_error("57014"),  # query_canceled: statement_timeout
        postgres_error("57P01"),  # admin_shutdown
        postgres_error("08006"),  # connection_failure
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.InterfaceError("cannot perform operation: another operation is in progress"),
        ConnectionResetError("reset by peer"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_infrastructure_errors_are_transient(error: BaseException) -> None:
    assert is_transient(error)


@pytest.mark.parametrize(
    "error",
    [
        postgres_error("23505"),  # unique_violation: the data's
        postgres_error("22003"),  # numeric_value_out_of_range
        postgres_error("42P01"),  # undefined_table: a bug, retrying won't help
        ValueError("bad data"),
        RuntimeError("bug"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_other_errors_are_not(error: BaseException) -> None:
    assert not is_transient(error)


def test_a_transient_error_wrapped_by_a_handler_is_still_transient() -> None:
    try:
        try:
            raise postgres_error("40P01")
        except asyncpg.PostgresError as deadlock:
            raise RuntimeError("could not record the renewal") from deadlock
    except RuntimeError as wrapped:
        assert is_transient(wrapped)


def test_an_unmapped_sqlstate_of_a_transient_kind_is_recognised_by_its_code() -> None:
    error = asyncpg.PostgresError("no class of its own")
    error.sqlstate = "40001"  # type: ignore[attr-defined]
    assert is_transient(error)
