"""Test clocks are off by default: `test_clock.set` is then refused to the DLQ with a clear error."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from shared.contracts.clock_commands import SetTestClock
from shared.contracts.envelope import new_event
from shared.messaging.consumer import Delivery, PermanentError, UnitOfWork
from shared.messaging.settings import MessagingSettings
from shared.test_clocks import set_test_clock_handler


def test_test_clocks_are_disabled_by_default() -> None:
    assert MessagingSettings().test_clocks_enabled is False


async def test_a_test_clock_command_is_refused_where_test_clocks_are_disabled() -> None:
    command = SetTestClock(csn="CSN-1", today=date(2027, 1, 1))
    event = new_event(command, subject="CSN-1", source="/tests", time=datetime.now(UTC))
    handler = set_test_clock_handler(enabled=False)

    with pytest.raises(PermanentError, match="test clocks are disabled"):
        await handler(UnitOfWork(connection=None), Delivery(event, record=None))  # type: ignore[arg-type]
