"""Small line charts drawn on the server as inline SVG: no script, no image request, readable
by the tests and by a screen reader (a title says the last and the highest value)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

Point = tuple[float, float]  # (unix seconds, value)

WIDTH = 220
HEIGHT = 30
PAD = 2  # keeps the stroke of the highest and lowest points inside the box


@dataclass(frozen=True)
class Window:
    """The time the x axis spans and the distance between two samples of a query."""

    start: float
    end: float
    step: float


def segments(points: Sequence[Point], step: float) -> list[list[Point]]:
    """Runs of consecutive samples: a missing sample (the series absent, a NaN) breaks the line
    rather than drawing across a time nothing was known."""
    runs: list[list[Point]] = []
    previous: float | None = None
    for at, value in sorted(points):
        if not math.isfinite(value):
            previous = None
            continue
        if previous is None or at - previous > step * 1.5:
            runs.append([])
        runs[-1].append((at, value))
        previous = at
    return runs


def number(value: float) -> str:
    """A value as the chart's labels show it: whole when it is, else at most 3 significant."""
    if value == int(value):
        return f"{int(value):,}"
    return f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def sparkline(
    points: Sequence[Point],
    window: Window,
    *,
    label: str,
    unit: str = "",
    css: str = "",
    name: str = "",
) -> Markup:
    """One series over the window: y from 0 to its highest value (so a flat zero reads as a
    line on the floor), a polyline per run of samples, a dot for a lone sample."""
    runs = segments(points, window.step)
    values = [v for run in runs for _, v in run]
    top = max([*values, 0.0])
    span = max(window.end - window.start, 1e-9)

    def x(at: float) -> float:
        return round(PAD + (at - window.start) / span * (WIDTH - 2 * PAD), 1)

    def y(value: float) -> float:
        height = HEIGHT - 2 * PAD
        return round(HEIGHT - PAD - (value / top * height if top > 0 else 0), 1)

    if values:
        summary = f"{label}: last {number(values[-1])}{unit}, highest {number(top)}{unit}"
    else:
        summary = f"{label}: no data"
    shapes = []
    for run in runs:
        if len(run) == 1:
            (at, value) = run[0]
            shapes.append(f'<circle cx="{x(at)}" cy="{y(value)}" r="1.5"/>')
        else:
            coordinates = " ".join(f"{x(at)},{y(value)}" for at, value in run)
            shapes.append(f'<polyline points="{coordinates}"/>')
    return Markup(
        f'<svg class="chart {escape(css)}" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}"'
        f' height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img"'
        f' aria-label="{escape(summary)}" data-chart="{escape(name)}" data-points="{len(values)}">'
        f"<title>{escape(summary)}</title>"
        f'<line class="floor" x1="0" y1="{HEIGHT - PAD}" x2="{WIDTH}" y2="{HEIGHT - PAD}"/>'
        + "".join(shapes)
        + "</svg>"
    )


def figure(
    points: Sequence[Point],
    window: Window,
    *,
    label: str,
    unit: str = "",
    css: str = "",
    name: str = "",
) -> Markup:
    """The chart and, beside it, its last and highest values in words."""
    values = [v for run in segments(points, window.step) for _, v in run]
    note = (
        f"last {number(values[-1])}{unit} · highest {number(max(values))}{unit}"
        if values
        else "no data"
    )
    chart = sparkline(points, window, label=label, unit=unit, css=css, name=name)
    return Markup(
        f'<div class="figure">{chart}<span class="chart-note">{escape(note)}</span></div>'
    )
