"""The console's charts (issue 18 item 3): SVG drawn on the server from Prometheus range queries,
and what the page gets when Prometheus does not answer. A fake Prometheus (stdlib HTTP server in
a thread) answers the queries, so what is asked and what is drawn are both checked."""

from __future__ import annotations

import json
import math
import re
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from xml.etree import ElementTree

import pytest

from services.operations.console import prometheus
from services.operations.console.app import ago
from services.operations.console.charts import HEIGHT, PAD, WIDTH, Window, segments, sparkline

SVG = "{http://www.w3.org/2000/svg}"
WINDOW = Window(start=1000.0, end=1100.0, step=10.0)


def drawn(markup: str) -> ElementTree.Element:
    return ElementTree.fromstring(str(markup))


def coordinates(polyline: ElementTree.Element) -> list[tuple[float, float]]:
    pairs = polyline.attrib["points"].split()
    return [(float(x), float(y)) for x, y in (p.split(",") for p in pairs)]


def test_a_series_is_a_polyline_from_the_floor_to_its_highest_value_inside_the_box() -> None:
    points = [(1000.0, 0.0), (1050.0, 2.0), (1100.0, 4.0)]
    svg = drawn(sparkline(points, Window(1000.0, 1100.0, 50.0), label="msg/s", unit="/s"))
    [line] = svg.findall(f"{SVG}polyline")
    (x0, y0), (x1, y1), (x2, y2) = coordinates(line)
    assert (x0, y0) == (PAD, HEIGHT - PAD)  # the window's start, value 0: bottom left
    assert (x2, y2) == (WIDTH - PAD, PAD)  # its end, the highest value: top right
    assert x0 < x1 < x2 and y0 > y1 > y2 and y1 == pytest.approx(HEIGHT / 2)
    assert svg.attrib["data-points"] == "3"
    assert svg.find(f"{SVG}title").text == "msg/s: last 4/s, highest 4/s"


def test_a_missing_sample_or_a_nan_breaks_the_line_and_a_lone_sample_is_a_dot() -> None:
    points = [(1000.0, 1.0), (1010.0, 2.0), (1040.0, 3.0), (1050.0, math.nan), (1060.0, 5.0)]
    assert segments(points, WINDOW.step) == [
        [(1000.0, 1.0), (1010.0, 2.0)],
        [(1040.0, 3.0)],
        [(1060.0, 5.0)],
    ]
    svg = drawn(sparkline(points, WINDOW, label="lag"))
    assert len(svg.findall(f"{SVG}polyline")) == 1
    assert len(svg.findall(f"{SVG}circle")) == 2
    assert svg.attrib["data-points"] == "4"


def test_no_sample_draws_only_the_floor_and_says_no_data() -> None:
    svg = drawn(sparkline([], WINDOW, label="dead letters"))
    assert svg.findall(f"{SVG}polyline") == [] and svg.findall(f"{SVG}circle") == []
    assert svg.attrib["data-points"] == "0"
    assert svg.attrib["aria-label"] == "dead letters: no data"


def test_an_all_zero_series_lies_on_the_floor_and_labels_are_escaped() -> None:
    svg = drawn(sparkline([(1000.0, 0.0), (1010.0, 0.0)], WINDOW, label='<b>"x"</b>'))
    [line] = svg.findall(f"{SVG}polyline")
    assert {y for _, y in coordinates(line)} == {HEIGHT - PAD}
    assert svg.find(f"{SVG}title").text == '<b>"x"</b>: last 0, highest 0'


def test_ages_read_in_the_largest_unit_that_fits() -> None:
    assert [ago(s) for s in (-3, 59, 119, 120, 7199, 7200, 172_799, 172_800)] == [
        "0 s", "59 s", "119 s", "2 min", "119 min", "2 h", "47 h", "2 d",
    ]  # fmt: skip


class FakePrometheus:
    """Answers /api/v1/query_range with one series per topic, and remembers what was asked."""

    def __init__(self, answer: Any = None, status: int = 200) -> None:
        self.answer = answer
        self.status = status
        self.asked: list[dict[str, str]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(url.query))
                fake.asked.append({"path": url.path, **query})
                body = json.dumps(fake.answer(query) if callable(fake.answer) else fake.answer)
                self.send_response(fake.status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FakePrometheus:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def matrix(query: dict[str, str]) -> dict[str, Any]:
    start, step = float(query["start"]), float(query["step"])
    value = {"throughput": "2.5", "lag": "7", "dead_letters": "1"}[
        next(name for name, q in prometheus.QUERIES.items() if q == query["query"])
    ]
    return {
        "status": "success",
        "data": {
            "resultType": "matrix",
            "result": [
                {
                    "metric": {"topic": "renewal.commands"},
                    "values": [[start + i * step, value] for i in range(3)],
                }
            ],
        },
    }


@pytest.fixture
def fake_prometheus() -> Iterator[FakePrometheus]:
    with FakePrometheus(matrix) as fake:
        yield fake


async def test_the_charts_ask_each_query_over_the_window_and_key_series_by_topic(
    fake_prometheus: FakePrometheus,
) -> None:
    window = prometheus.window_ending(now=36_000.0, minutes=60)
    assert window == Window(start=32_400.0, end=36_000.0, step=30.0)

    charts = await prometheus.charts(fake_prometheus.url, window)

    assert sorted(a["query"] for a in fake_prometheus.asked) == sorted(prometheus.QUERIES.values())
    assert {(a["path"], a["start"], a["end"], a["step"]) for a in fake_prometheus.asked} == {
        ("/api/v1/query_range", "32400.0", "36000.0", "30.0")
    }
    assert charts.of("throughput", "renewal.commands") == [
        (32_400.0, 2.5),
        (32_430.0, 2.5),
        (32_460.0, 2.5),
    ]
    assert charts.of("dead_letters", "renewal.commands")[0] == (32_400.0, 1.0)
    assert charts.of("lag", "billing.commands") == []
    svg = drawn(sparkline(charts.of("lag", "renewal.commands"), window, label="lag"))
    assert svg.attrib["data-points"] == "3"


@pytest.mark.parametrize(
    ("answer", "status", "reason"),
    [
        ({"status": "error", "error": "parse error at char 3"}, 400, "parse error at char 3"),
        ({"status": "success", "data": {"resultType": "vector", "result": []}}, 200, "not a range"),
        ("<html>a proxy's login page</html>", 200, "not a range"),
    ],
)
async def test_a_prometheus_that_answers_something_else_is_unavailable(
    answer: Any, status: int, reason: str
) -> None:
    with (
        FakePrometheus(answer, status) as fake,
        pytest.raises(prometheus.PrometheusUnavailable, match=re.escape(reason)),
    ):
        await prometheus.charts(fake.url, WINDOW)


async def test_a_prometheus_that_does_not_listen_is_unavailable() -> None:
    with FakePrometheus({}) as fake:
        url = fake.url  # a port that was just free, then closed
    with pytest.raises(prometheus.PrometheusUnavailable, match="refused"):
        await prometheus.charts(url, WINDOW)
