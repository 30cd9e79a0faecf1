"""How fast this machine is at one moment: a fixed Python workload timed in the bench's own
process just before each timed phase, while the services wait for work.

This machine's speed moves by 1.5-2x within an hour for the same code (issue 19, sessions 11-13:
the same bench gave 1,052-1,144 manual renewals/s at one hour and 601/s two hours later, every
process's CPU per renewal higher alike, the bench's own included). A ratio of two phases — the
scale phase's "within 10 % of the empty tables" — then measures the machine as much as the
tables. The probe says which: a phase that ran on a slower machine is marked as such.

The workload is pure Python (the product's cost is mostly the interpreter's), a few
milliseconds long, repeated; the fastest repetition is kept, so that a moment's interruption
(a service's poll, a checkpoint) does not count as a slower machine. Before it, the probe waits
(a bounded while) for the machine to be quiet: the work the last phase left behind (its last
events relayed, autovacuum of what it wrote) would otherwise be measured as a slow machine —
and the next phase starts on a quiet machine too.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from bench import procstat

REPETITIONS = 5
# Bursts of repetitions, spread out: two busy processes beside the probe halve its speed (two
# cores), and the services' idle polls come in short bursts of their own.
BURSTS = 8
BURST_PAUSE_SECONDS = 0.1
# The idle services poll and the broker ticks: a quarter to half a core in all on this machine.
QUIET_CORES = 0.6
QUIET_WINDOW_SECONDS = 0.5
QUIET_AT_MOST_SECONDS = 10.0
# Python operations per repetition: a few milliseconds on this machine.
WORK = 20_000


def _workload() -> int:
    """Dict and string work of the kind a consumer does with a message, nothing cached."""
    total = 0
    fields: dict[str, int] = {}
    for number in range(WORK):
        key = f"k{number % 97}"
        fields[key] = fields.get(key, 0) + number
        total += len(key)
    return total + len(fields)


@dataclass(frozen=True)
class Speed:
    """Repetitions of the workload per second, at the fastest repetition."""

    per_second: float

    def relative_to(self, other: Speed) -> float:
        """This speed as a fraction of `other` (1.0: the same machine; 0.7: 30 % slower)."""
        return self.per_second / other.per_second


def probe(
    repetitions: int = REPETITIONS,
    work: Callable[[], object] = _workload,
    clock: Callable[[], float] = time.perf_counter,
) -> Speed:
    """The machine's speed now (wall time, so that CPU taken by anything else counts)."""
    fastest = float("inf")
    for _ in range(repetitions):
        started = clock()
        work()
        fastest = min(fastest, clock() - started)
    return Speed(per_second=1.0 / max(fastest, 1e-9))


# Two phases (or two runs) whose probes are further apart than this ran on different machines.
TOLERANCE = 0.1


def comparable(one: Speed | None, other: Speed | None, tolerance: float = TOLERANCE) -> bool | None:
    """Whether two phases ran on a machine of about the same speed (within `tolerance`);
    None when either was not probed."""
    if one is None or other is None:
        return None
    return abs(one.relative_to(other) - 1.0) <= tolerance


async def quiet(
    busy_seconds: Callable[[], float] = procstat.machine_busy_seconds,
    window: float = QUIET_WINDOW_SECONDS,
    at_most: float = QUIET_AT_MOST_SECONDS,
    cores: float = QUIET_CORES,
) -> float:
    """Seconds waited until the whole machine used less than `cores` over a `window` (or
    `at_most` went by: the probe then measures a busy machine, as the phase will run on one)."""
    waited = 0.0
    while True:
        before = busy_seconds()
        await asyncio.sleep(window)
        waited += window
        if (busy_seconds() - before) / window < cores or waited >= at_most:
            return waited


async def settled_probe(bursts: int = BURSTS, pause: float = BURST_PAUSE_SECONDS) -> Speed:
    """The machine's speed once it is quiet (`quiet`): the fastest of `bursts` probes spread
    over about a second, so that one of them finds both cores free of the services' polls."""
    await quiet()
    fastest = probe()
    for _ in range(bursts - 1):
        await asyncio.sleep(pause)
        fastest = max(fastest, probe(), key=lambda speed: speed.per_second)
    return fastest
