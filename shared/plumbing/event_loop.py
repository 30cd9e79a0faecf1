"""The event loop every service process runs on: uvloop's by default (issue 19 item 6)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Any

import uvloop

EVENT_LOOP_VARIABLE = "RENEWALS_EVENT_LOOP"
"""`uvloop` (the default) or `asyncio`: the standard library's loop, to compare or to debug."""


def run_service(main: Coroutine[Any, Any, None]) -> None:
    """Run a service's main coroutine to its end on the chosen loop.

    Each message costs the services several socket reads and writes (Kafka fetches and
    produces, PostgreSQL statements, SMTP): the pure-Python selector loop spent about a fifth of
    notification's CPU in its transports; uvloop does the same in C (libuv)."""
    choice = os.environ.get(EVENT_LOOP_VARIABLE, "uvloop")
    if choice == "uvloop":
        uvloop.run(main)
    elif choice == "asyncio":
        asyncio.run(main)
    else:
        main.close()  # never awaited: say so rather than warn about it
        raise SystemExit(f"{EVENT_LOOP_VARIABLE} must be uvloop or asyncio, not {choice!r}")
