"""One mechanism for every background loop of a service: wake, work, back off, report.

A loop is a `step` — one claim of work, returning how much it did — driven by `WorkLoop`:
- it runs the step again at once while the step says more is waiting (`more`), otherwise it
  waits for a PostgreSQL `NOTIFY` on its channel or its poll interval, whichever comes first;
- a step that raises is logged and counted, and the loop backs off exponentially (capped) and
  goes on: no exception of a step ever ends the loop, whatever it is;
- the `LISTEN` connection is re-established when it was lost (a PostgreSQL restart), and the
  loop polls meanwhile;
- `alive` is false when the loop's task ended or a step has run past `stall_seconds`: the
  service's `/live` fails, and whatever supervises it restarts the process.

Isolating one failing item inside a claim is the step's job (it knows its rows): a step should
set such an item aside with the reason and return, so that the others go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from shared.plumbing.metrics import LOOP_ERRORS, LOOP_STEPS

log = logging.getLogger(__name__)

Step = Callable[[], Awaitable[int]]


def worked_any(done: int) -> bool:
    """The default `more`: a step that did something may have left more behind."""
    return done > 0


class WorkLoop:
    def __init__(
        self,
        name: str,
        step: Step,
        *,
        service: str,
        poll_seconds: float,
        pool: asyncpg.Pool | None = None,
        channel: str | None = None,
        more: Callable[[int], bool] = worked_any,
        max_backoff_seconds: float = 30.0,
        stall_seconds: float = 300.0,
    ) -> None:
        self.name = name
        self.step = step
        self.service = service
        self.poll_seconds = poll_seconds
        self.pool = pool
        self.channel = channel
        self.more = more
        self.max_backoff_seconds = max_backoff_seconds
        self.stall_seconds = stall_seconds
        self.failures = 0  # consecutive
        self.last_error: str | None = None
        self._wake = asyncio.Event()
        self.waiting = False  # idle between steps, until a NOTIFY, a wake() or the poll interval
        self._listener: PoolConnectionProxy[Any] | None = None
        self._step_started: float | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> asyncio.Task[None]:
        self._task = asyncio.create_task(self.run(), name=self.name)
        return self._task

    @property
    def alive(self) -> bool:
        if self._task is None or self._task.done():
            return False
        started = self._step_started
        return started is None or time.monotonic() - started < self.stall_seconds

    @property
    def healthy(self) -> bool:
        """Alive and its last step succeeded (readiness)."""
        return self.alive and self.failures == 0

    def wake(self, *_: object) -> None:
        self._wake.set()

    async def run(self) -> None:
        self._task = asyncio.current_task()
        try:
            while True:
                await self._listen()
                # Cleared before the step, not before the wait: a NOTIFY that comes while the
                # step runs (after its claim read the table) must still wake the next one.
                self._wake.clear()
                done = await self._step_once()
                if done is None:
                    await asyncio.sleep(self._backoff())
                elif not self.more(done):
                    await self._wait()
        finally:
            await self._unlisten()

    async def _step_once(self) -> int | None:
        """The step's result, or None when it failed (already logged and counted)."""
        self._step_started = time.monotonic()
        try:
            done = await self.step()
        except asyncio.CancelledError:
            raise
        except Exception as error:
            self.failures += 1
            self.last_error = repr(error)
            LOOP_ERRORS.labels(self.service, self.name, type(error).__name__).inc()
            log.error(
                "loop step failed; backing off",
                extra={"loop": self.name, "failures": self.failures, "error": repr(error)},
                exc_info=self.failures == 1,  # the traceback once, not at every retry
            )
            return None
        finally:
            self._step_started = None
        if self.failures:
            log.info("loop recovered", extra={"loop": self.name, "after_failures": self.failures})
        self.failures = 0
        self.last_error = None
        LOOP_STEPS.labels(self.service, self.name).inc()
        return done

    def _backoff(self) -> float:
        return float(min(self.poll_seconds * 2 ** (self.failures - 1), self.max_backoff_seconds))

    async def _wait(self) -> None:
        self.waiting = True
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
        finally:
            self.waiting = False

    async def _listen(self) -> None:
        """(Re)establish LISTEN when this loop has a channel and its connection is gone."""
        if self.channel is None or self.pool is None:
            return
        if self._listening():
            return
        await self._unlisten()
        try:
            listener = await self.pool.acquire()
        except Exception as error:  # the database is down: poll until it is back
            log.warning("cannot listen yet", extra={"loop": self.name, "error": repr(error)})
            return
        try:
            await listener.add_listener(self.channel, self.wake)
            # Lost with the database (a restart): wake, so that the next turn listens anew.
            listener.add_termination_listener(self.wake)
        except Exception as error:
            log.warning("cannot listen yet", extra={"loop": self.name, "error": repr(error)})
            await self.pool.release(listener)
            return
        except asyncio.CancelledError:
            # Stopped in the middle of its LISTEN: given back all the same, or `pool.close()`
            # (the service's shutdown) waits for this connection for ever.
            await self.pool.release(listener)
            raise
        self._listener = listener
        self._wake.set()  # what was notified while nobody listened is looked at now

    def _listening(self) -> bool:
        if self._listener is None:
            return False
        try:
            return not self._listener.is_closed()
        except asyncpg.InterfaceError:  # the pool took back a connection it saw die
            return False

    async def _unlisten(self) -> None:
        listener, self._listener = self._listener, None
        if listener is None or self.pool is None:
            return
        with contextlib.suppress(Exception):
            await listener.remove_listener(self.channel, self.wake)  # type: ignore[arg-type]
        with contextlib.suppress(Exception):
            await self.pool.release(listener)
