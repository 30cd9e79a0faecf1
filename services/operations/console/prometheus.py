"""The console's charts come from Prometheus's HTTP API (`/api/v1/query_range`): messages
handled per second, consumer lag and dead letters per minute, each per topic, over a window."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from services.operations.console.charts import Point, Window

TIMEOUT_SECONDS = 3.0  # the overview waits for no more: a slow Prometheus costs the charts only
SAMPLES_PER_CHART = 120

# Each query gives one series per topic. The 1-minute windows hold four scrapes at the
# project's 15 s interval (deploy/monitoring/prometheus.yml).
QUERIES = {
    "throughput": "sum by (topic) (rate(renewals_messages_handled_total[1m]))",
    # The worst group: several services may read one topic, each with its own lag.
    "lag": "max by (topic) (renewals_consumer_lag)",
    "dead_letters": "sum by (topic) (increase(renewals_messages_dead_lettered_total[1m]))",
}


class PrometheusUnavailable(Exception):
    """Prometheus did not answer, or answered something that is not a query result."""


@dataclass
class Charts:
    window: Window
    # metric name (a key of QUERIES) -> topic -> samples
    series: dict[str, dict[str, list[Point]]] = field(default_factory=dict)

    def of(self, metric: str, topic: str) -> list[Point]:
        return self.series.get(metric, {}).get(topic, [])


def window_ending(now: float, minutes: int) -> Window:
    seconds = minutes * 60
    return Window(start=now - seconds, end=now, step=max(seconds / SAMPLES_PER_CHART, 1.0))


def _get(url: str) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:
            return json.load(response)
    except urllib.error.HTTPError as error:
        # Prometheus explains a refused query in a JSON body with a 4xx status.
        try:
            body = json.load(error)
        except ValueError:
            body = {}
        raise PrometheusUnavailable(body.get("error") or f"HTTP {error.code}") from error
    except (urllib.error.URLError, OSError, ValueError) as error:
        raise PrometheusUnavailable(str(getattr(error, "reason", error))) from error


async def query_range(base_url: str, query: str, window: Window) -> dict[str, list[Point]]:
    """One range query; its series keyed by their `topic` label."""
    arguments = urllib.parse.urlencode(
        {"query": query, "start": window.start, "end": window.end, "step": window.step}
    )
    answer = await asyncio.to_thread(_get, f"{base_url.rstrip('/')}/api/v1/query_range?{arguments}")
    try:
        if answer["status"] != "success" or answer["data"]["resultType"] != "matrix":
            raise PrometheusUnavailable(answer.get("error", "not a range query result"))
        return {
            series["metric"].get("topic", ""): [(float(at), float(v)) for at, v in series["values"]]
            for series in answer["data"]["result"]
        }
    except (KeyError, TypeError, ValueError) as error:
        raise PrometheusUnavailable(f"not a range query result: {error!r}") from error


async def charts(base_url: str, window: Window) -> Charts:
    """Every query of QUERIES over the window; PrometheusUnavailable when any fails."""
    results = await asyncio.gather(*(query_range(base_url, q, window) for q in QUERIES.values()))
    return Charts(window, dict(zip(QUERIES, results, strict=True)))
