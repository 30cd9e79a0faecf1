"""Every service runs on the loop RENEWALS_EVENT_LOOP names: uvloop unless told otherwise."""

from __future__ import annotations

import asyncio

import pytest
import uvloop

from shared.plumbing.event_loop import EVENT_LOOP_VARIABLE, run_service


def loop_a_service_runs_on() -> type[asyncio.AbstractEventLoop]:
    seen: list[type[asyncio.AbstractEventLoop]] = []

    async def main() -> None:
        seen.append(type(asyncio.get_running_loop()))

    run_service(main())
    return seen[0]


def test_a_service_runs_on_uvloop_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(EVENT_LOOP_VARIABLE, raising=False)
    assert loop_a_service_runs_on() is uvloop.Loop


def test_the_standard_loop_can_be_chosen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(EVENT_LOOP_VARIABLE, "asyncio")
    assert not issubclass(loop_a_service_runs_on(), uvloop.Loop)


def test_an_unknown_loop_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(EVENT_LOOP_VARIABLE, "tokio")
    with pytest.raises(SystemExit, match="RENEWALS_EVENT_LOOP must be uvloop or asyncio"):
        loop_a_service_runs_on()
