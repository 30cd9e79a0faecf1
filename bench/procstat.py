"""What the processes cost: CPU seconds and peak RSS from /proc, Prometheus /metrics deltas."""

from __future__ import annotations

import os
import urllib.request
from collections import defaultdict
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

TICKS = os.sysconf("SC_CLK_TCK")
REPO_ROOT = Path(__file__).resolve().parents[1]


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process (all its threads), in seconds; None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICKS


def parent_of(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def tree_cpu_seconds(root: int) -> float:
    """CPU of a process and its direct children (PostgreSQL: the postmaster and its backends)."""
    total = cpu_seconds(root) or 0.0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and parent_of(int(entry.name)) == root:
            total += cpu_seconds(int(entry.name)) or 0.0
    return total


def peak_rss_mib(pid: int) -> float | None:
    """VmHWM: the highest resident set size the process reached."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def infra_pid(name: str) -> int | None:
    """The pid `deploy/local/infra.sh` recorded for kafka / postgres, when alive."""
    try:
        pid = int((REPO_ROOT / ".local" / "run" / f"{name}.pid").read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if Path(f"/proc/{pid}").exists() else None


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a service's /metrics, keyed by (sample name, sorted labels)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def handler_stats(
    before: dict[tuple[str, tuple[tuple[str, str], ...]], float],
    after: dict[tuple[str, tuple[tuple[str, str], ...]], float],
) -> dict[str, dict[str, float]]:
    """Per consumed topic: batches, messages, handler seconds during the interval."""
    stats: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    wanted = {
        "renewals_handler_batch_seconds_count": "batches",
        "renewals_handler_batch_seconds_sum": "seconds",
        "renewals_messages_handled_total": "handled",
        "renewals_messages_duplicate_total": "duplicates",
        "renewals_messages_dead_lettered_total": "dead_lettered",
    }
    for (name, labels), value in after.items():
        if name in wanted:
            topic = dict(labels).get("topic", "?")
            stats[topic][wanted[name]] += value - before.get((name, labels), 0.0)
    return {topic: dict(values) for topic, values in stats.items() if values.get("batches")}


def outbox_published(
    before: dict[tuple[str, tuple[tuple[str, str], ...]], float],
    after: dict[tuple[str, tuple[tuple[str, str], ...]], float],
) -> float:
    return sum(
        value - before.get((name, labels), 0.0)
        for (name, labels), value in after.items()
        if name == "renewals_outbox_published_total"
    )


def machine_busy_seconds() -> float:
    """CPU seconds spent by the whole machine (all cores, everything but idle and iowait)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / TICKS
