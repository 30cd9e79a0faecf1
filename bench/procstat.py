"""What the processes cost: CPU seconds and peak RSS from /proc, Prometheus /metrics deltas."""

from __future__ import annotations

import os
import re
import urllib.request
from collections import defaultdict
from collections.abc import Iterable
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


def _children(parent: int) -> list[int]:
    return [
        int(entry.name)
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit() and parent_of(int(entry.name)) == parent
    ]


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    try:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError:
        pass
    return inodes


def _client_ports(pids: Iterable[int], server_port: int) -> set[int]:
    """Local ports of the TCP connections these processes hold to <server_port>."""
    inodes: set[str] = set().union(*(_socket_inodes(pid) for pid in pids))
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], fields[9]
            if inode in inodes and int(remote.rsplit(":", 1)[1], 16) == server_port:
                ports.add(int(local.rsplit(":", 1)[1], 16))
    return ports


def postgres_cpu(
    postmaster: int, clients: Iterable[int], server_port: int
) -> tuple[dict[int, float], dict[int, float]]:
    """CPU seconds per PostgreSQL process: (the backends serving these client processes, matched
    by the client's port in the backend's title; the shared background processes — postmaster,
    WAL writer, checkpointer, autovacuum — which also work for anyone else on the server)."""
    ports = _client_ports(clients, server_port)
    ours: dict[int, float] = {}
    shared = {postmaster: cpu_seconds(postmaster) or 0.0}
    for child in _children(postmaster):
        try:
            title = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        match = re.search(r"\((\d+)\)", title)
        if match is None:
            shared[child] = cpu_seconds(child) or 0.0
        elif int(match.group(1)) in ports:
            ours[child] = cpu_seconds(child) or 0.0
    return ours, shared


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


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(port: int, timeout: float = 5.0) -> Samples:
    """Every sample of a service's /metrics, keyed by (sample name, sorted labels)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=timeout) as response:
        text = response.read().decode()
    samples: Samples = {}
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
        # Taken by the consumer and skipped unparsed: a type its service ignores (issue 19).
        "renewals_messages_skipped_total": "skipped",
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
