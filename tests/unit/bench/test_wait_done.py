"""The manual phase's wait for its emails (bench/e2e.py `_wait_done`): it ends once every command
has its email.sent and the SMTP sink got every confirmation, asking the sink (a round trip to
another process) only when its count can end the wait or is reported (issue 19)."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any

from bench import e2e


class CountingSink:
    """The sink's `confirmations`, counting how often it was asked."""

    def __init__(self) -> None:
        self.asked = 0
        self.received = 0

    @property
    def confirmations(self) -> int:
        self.asked += 1
        return self.received


async def wait(
    watcher: Any, sink: CountingSink, csns: list[str], started: float
) -> tuple[dict[str, float], bool]:
    """`_wait_done` for `csns`, their commands published at `started`, no service to watch."""
    return await e2e._wait_done(
        watcher,
        sink,  # type: ignore[arg-type]
        {},
        dict.fromkeys(csns, started),
        started,
        timeout=30,
        progress=lambda _: None,
    )


async def test_the_wait_asks_the_sink_once_every_email_sent_came_not_every_turn() -> None:
    csns = [f"CSN-{n}" for n in range(5)]
    started = time.monotonic()
    watcher: Any = SimpleNamespace(arrivals=[])
    sink = CountingSink()

    async def deliver() -> None:
        for csn in csns:  # one email.sent every few turns of the wait (20 ms each)
            await asyncio.sleep(0.06)
            sink.received += 1  # SMTP accepted it before its email.sent was published
            watcher.arrivals.append((time.monotonic(), csn.encode(), "email.sent"))

    delivering = asyncio.create_task(deliver())
    sent, complete = await wait(watcher, sink, csns, started)
    await delivering
    assert complete and set(sent) == set(csns)
    # The wait took about 15 turns; the sink was asked once, when the last email.sent came.
    assert sink.asked == 1


async def test_the_wait_waits_for_the_sink_after_the_last_email_sent() -> None:
    csns = ["CSN-1"]
    started = time.monotonic()
    watcher: Any = SimpleNamespace(arrivals=[(started, b"CSN-1", "email.sent")])
    sink = CountingSink()

    async def accept_late() -> None:
        await asyncio.sleep(0.1)
        sink.received = 1

    accepting = asyncio.create_task(accept_late())
    sent, complete = await wait(watcher, sink, csns, started)
    await accepting
    assert complete and sent == {"CSN-1": started}
    assert sink.asked >= 2  # asked again each turn until it had the email
