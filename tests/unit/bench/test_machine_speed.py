"""The machine's speed before each timed phase (issue 19, session 14): the scale phase's ratio says
when the machine itself was slower or faster than on the empty tables."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from bench.machine_speed import Speed, comparable, probe, quiet
from bench.run import render_speed


def clock_of(durations: list[float]) -> Iterator[float]:
    """perf_counter as the probe reads it: a start and an end per repetition."""
    now = 100.0
    for duration in durations:
        yield now
        now += duration
        yield now
        now += 1.0  # between repetitions: not counted


def test_the_fastest_repetition_is_the_speed() -> None:
    # One repetition interrupted (30 ms): a moment's interruption is not a slower machine.
    ticks = clock_of([0.004, 0.030, 0.005])
    speed = probe(repetitions=3, work=lambda: None, clock=lambda: next(ticks))
    assert speed.per_second == pytest.approx(250.0)


@pytest.mark.parametrize(
    ("after", "expected"),
    [(100.0, True), (91.0, True), (109.0, True), (89.0, False), (130.0, False)],
)
def test_phases_compare_within_ten_percent(after: float, expected: bool) -> None:
    assert comparable(Speed(after), Speed(100.0)) is expected


def test_a_phase_not_probed_compares_to_nothing() -> None:
    assert comparable(None, Speed(100.0)) is None


def test_each_phase_is_given_against_the_first(capsys: pytest.CaptureFixture[str]) -> None:
    results = {
        "speed": {"e2e": Speed(200.0), "engine": Speed(180.0)},
        "scale": {"speed": {"e2e": Speed(140.0)}},
    }
    assert render_speed(results) == {"e2e": 1.0, "engine": 0.9, "e2e at scale": 0.7}
    last_row = capsys.readouterr().out.splitlines()[-1].split()
    assert last_row == ["e2e", "at", "scale", "140", "70%"]


def test_nothing_probed_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    assert render_speed({}) == {}
    assert capsys.readouterr().out == ""


def busy_counter(cores_per_window: list[float], window: float) -> Callable[[], float]:
    """The machine's busy CPU seconds as /proc/stat gives them: read at each window's two ends."""
    totals = [0.0]
    for cores in cores_per_window:
        totals += [totals[-1], totals[-1] + cores * window]
    readings = iter(totals[1:])
    return lambda: next(readings)


async def test_the_probe_waits_for_what_the_last_phase_left_behind() -> None:
    window = 0.01
    busy = busy_counter([1.9, 1.4, 0.5], window)  # two busy windows, then quiet
    waited = await quiet(busy, window=window, at_most=1.0, cores=1.0)
    assert waited == pytest.approx(3 * window)


async def test_the_wait_for_a_quiet_machine_is_bounded() -> None:
    window = 0.01
    busy = busy_counter([2.0] * 10, window)  # never quiet
    waited = await quiet(busy, window=window, at_most=4 * window, cores=1.0)
    assert waited == pytest.approx(4 * window)
