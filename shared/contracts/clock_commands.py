"""`clock.commands`: set a CSN's test clock, where test clocks are enabled."""

from __future__ import annotations

from datetime import date
from typing import ClassVar

from shared.contracts.common import Csn
from shared.contracts.envelope import EventData, EventRegistry
from shared.contracts.topics import CLOCK_COMMANDS

TOPIC = CLOCK_COMMANDS


class SetTestClock(EventData):
    """From then on every time-driven rule for `csn` runs on `today`; a clock only moves forward."""

    event_type: ClassVar[str] = "test_clock.set"
    csn: Csn
    today: date


REGISTRY = EventRegistry(TOPIC.name, SetTestClock)
