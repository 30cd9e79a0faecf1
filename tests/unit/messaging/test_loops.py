"""The one loop mechanism (shared/messaging/loops.py): a step that raises never ends the loop,
the loop backs off and recovers, drains while there is more, and reports a stuck step."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import pytest

from shared.messaging.loops import WorkLoop
from tests.integration.helpers import eventually


@contextlib.asynccontextmanager
async def running(loop: WorkLoop) -> AsyncIterator[WorkLoop]:
    task = loop.start()
    try:
        yield loop
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def until(check: Callable[[], object], timeout: float = 5.0) -> None:
    await eventually(check, timeout=timeout, what="the loop")


@pytest.mark.parametrize(
    "error",
    [RuntimeError("boom"), RecursionError(), ValueError("bad row"), KeyError("x"), OSError()],
    ids=lambda e: type(e).__name__,
)
async def test_a_step_that_raises_anything_is_retried_and_the_loop_goes_on(
    error: Exception,
) -> None:
    calls: list[int] = []

    async def step() -> int:
        calls.append(1)
        if len(calls) <= 2:
            raise error
        return 0

    async with running(
        WorkLoop("flaky", step, service="t", poll_seconds=0.01, max_backoff_seconds=0.02)
    ) as loop:
        await until(lambda: len(calls) >= 4)
        assert loop.alive
        assert loop.failures == 0 and loop.healthy  # recovered after the two failures


async def test_failures_back_off_up_to_the_cap() -> None:
    async def step() -> int:
        raise RuntimeError("always")

    loop = WorkLoop("broken", step, service="t", poll_seconds=1.0, max_backoff_seconds=8.0)
    delays = []
    for failures in range(1, 7):
        loop.failures = failures
        delays.append(loop._backoff())
    assert delays == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


async def test_a_step_with_more_waiting_runs_again_without_waiting_for_its_poll() -> None:
    backlog = [5, 5, 5, 0]

    async def step() -> int:
        return backlog.pop(0) if backlog else 0

    async with running(WorkLoop("drain", step, service="t", poll_seconds=3600)):
        await until(lambda: not backlog, timeout=2)


async def test_a_wake_runs_the_step_before_the_poll_interval() -> None:
    calls: list[int] = []

    async def step() -> int:
        calls.append(1)
        return 0

    async with running(WorkLoop("woken", step, service="t", poll_seconds=3600)) as loop:
        await until(lambda: len(calls) == 1)
        loop.wake()
        await until(lambda: len(calls) == 2, timeout=2)


async def test_a_wake_that_comes_while_the_step_runs_is_not_lost() -> None:
    """A NOTIFY after the step's claim read the table (rows committed meanwhile) must run the
    step again, not wait for the poll interval: the wake was once cleared before waiting."""
    calls: list[int] = []
    in_first_step = asyncio.Event()
    finish_first_step = asyncio.Event()

    async def step() -> int:
        calls.append(1)
        if len(calls) == 1:
            in_first_step.set()
            await finish_first_step.wait()
        return 0

    async with running(WorkLoop("woken late", step, service="t", poll_seconds=3600)) as loop:
        await until(in_first_step.is_set)
        loop.wake()  # while the step runs
        finish_first_step.set()
        await until(lambda: len(calls) == 2, timeout=2)


async def test_an_idle_loop_says_it_is_waiting() -> None:
    async def step() -> int:
        return 0

    async with running(WorkLoop("idle", step, service="t", poll_seconds=3600)) as loop:
        await until(lambda: loop.waiting)


async def test_a_step_stuck_past_its_stall_limit_makes_the_loop_not_alive() -> None:
    stuck = asyncio.Event()

    async def step() -> int:
        stuck.set()
        await asyncio.Event().wait()  # never returns
        return 0

    async with running(
        WorkLoop("stuck", step, service="t", poll_seconds=1, stall_seconds=0.5)
    ) as loop:
        await until(stuck.is_set)
        assert loop.alive  # not yet past its limit
        await until(lambda: not loop.alive, timeout=2)


async def test_a_loop_whose_task_ended_is_not_alive() -> None:
    async def step() -> int:
        return 0

    loop = WorkLoop("ended", step, service="t", poll_seconds=1)
    assert not loop.alive  # never started
    task = loop.start()
    await until(lambda: loop.alive)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert not loop.alive
