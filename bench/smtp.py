"""The bench's side of its SMTP sink (bench/smtp_sink.py): start it as its own process, poll it,
read back what it received, and judge it (duplicates, confirmations without their total)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deploy.local.launcher import REPO_ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Received:
    """One message the sink accepted."""

    arrived: float  # time.monotonic() in the sink (the same clock as the bench's)
    key: str | None  # X-Notification-Key
    watched: bool  # addressed to one of the recipients the bench watches
    has_total: bool | None  # an order confirmation: whether its body shows the order's total


@dataclass
class MailCheck:
    """What the emails say about correctness: both counts must be 0 for a good run."""

    messages: int
    watched: int
    by_kind: dict[str, int]
    duplicates: int  # messages beyond the first with the same notification key
    duplicate_keys: list[str] = field(default_factory=list)
    confirmations: int = 0
    without_total: int = 0  # order confirmations whose body has no order total

    @property
    def good(self) -> bool:
        return self.duplicates == 0 and self.without_total == 0

    def as_json(self) -> dict[str, Any]:
        return {
            "messages": self.messages,
            "by_kind": self.by_kind,
            "duplicate_emails": self.duplicates,
            "confirmations": self.confirmations,
            "confirmations_without_total": self.without_total,
            "good": self.good,
        }


def check(received: list[Received], *, watched_only: bool = False) -> MailCheck:
    counts: dict[str, int] = {}
    by_kind: dict[str, int] = {}
    confirmations = without_total = 0
    chosen = [r for r in received if r.watched or not watched_only]
    for r in chosen:
        key = r.key or "(no key)"
        counts[key] = counts.get(key, 0) + 1
        kind = key.split(":", 1)[0]
        by_kind[kind] = by_kind.get(kind, 0) + 1
        if r.has_total is not None:
            confirmations += 1
            without_total += not r.has_total
    duplicate_keys = sorted(k for k, n in counts.items() if n > 1)
    return MailCheck(
        messages=len(chosen),
        watched=sum(r.watched for r in received),
        by_kind=by_kind,
        duplicates=sum(n - 1 for n in counts.values()),
        duplicate_keys=duplicate_keys[:10],
        confirmations=confirmations,
        without_total=without_total,
    )


class SmtpSink:
    """`with SmtpSink(watched) as smtp:` — the sink process on 127.0.0.1:<free port>."""

    def __init__(self, watched: set[str] | None = None, log_dir: Path | None = None) -> None:
        self.port = free_port()
        self._dir = Path(tempfile.mkdtemp(prefix="bench-smtp-"))
        self._watch = self._dir / "watched.txt"
        self._watch.write_text("\n".join(sorted(watched or ())))
        self._log = (log_dir or self._dir) / "smtp_sink.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._control: socket.socket | None = None
        self._reader: Any = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def __enter__(self) -> SmtpSink:
        self._log.parent.mkdir(parents=True, exist_ok=True)
        with self._log.open("ab") as log:
            command = [sys.executable, "-m", "bench.smtp_sink", "--port", str(self.port)]
            self.process = subprocess.Popen(
                [*command, "--watch", str(self._watch)],
                cwd=REPO_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 20
        while True:
            try:
                self._control = socket.create_connection(("127.0.0.1", self.port), timeout=10)
                break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the SMTP sink did not start; see {self._log}") from None
                time.sleep(0.05)
        self._reader = self._control.makefile("rb")
        self._reader.readline()  # 220
        return self

    def __exit__(self, *_: object) -> None:
        if self._control is not None:
            self._control.close()
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def _ask(self, line: str) -> str:
        assert self._control is not None
        self._control.sendall(line.encode() + b"\r\n")
        reply = self._reader.readline().decode()
        if not reply.startswith("250"):
            raise RuntimeError(f"the SMTP sink answered {reply!r} to {line!r}")
        return reply[4:].strip()

    def stats(self) -> dict[str, Any]:
        """Counts so far: messages, watched (to the bench's recipients), last_watched (monotonic)."""
        return dict(json.loads(self._ask("XSTATS")))

    @property
    def count(self) -> int:
        """Messages to the watched recipients so far."""
        return int(self.stats()["watched"])

    @property
    def confirmations(self) -> int:
        """Order confirmations to the watched recipients so far."""
        return int(self.stats()["watched_confirmations"])

    def received(self) -> list[Received]:
        path = self._dir / "received.json"
        self._ask(f"XDUMP {path}")
        return [Received(*record) for record in json.loads(path.read_text())]
