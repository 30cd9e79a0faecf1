"""What renewal's background loops (the due-date engine, the bulk worker) are built with."""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass, field

import asyncpg

from shared.clock import Clock
from shared.eligibility import Policy
from shared.plumbing.faults import FaultPoints


@dataclass(eq=False)
class RenewalLoop:
    """The database, the clock and policy it decides by, the `source` of the events it
    announces, and the fault points a test arms to kill it mid-way."""

    pool: asyncpg.Pool
    clock: Clock
    policy: Policy
    _: KW_ONLY
    source: str
    faults: FaultPoints = field(default_factory=FaultPoints)
