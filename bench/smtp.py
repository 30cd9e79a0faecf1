"""An in-process SMTP server that accepts everything and counts, with arrival times."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class CountingHandler:
    """Counts every accepted message, and apart those addressed to the recipients watched."""

    def __init__(self, watched: set[str] | None = None) -> None:
        self._lock = threading.Lock()
        self.watched = watched or set()
        self.total = 0
        self.arrivals: list[float] = []  # monotonic arrival of each watched message

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        now = time.monotonic()
        with self._lock:
            self.total += 1
            if any(r in self.watched for r in envelope.rcpt_tos):
                self.arrivals.append(now)
        return "250 OK"

    @property
    def count(self) -> int:
        return len(self.arrivals)


class SmtpServer:
    """`with SmtpServer() as smtp:` — listens on 127.0.0.1:<free port> in its own thread."""

    def __init__(self, watched: set[str] | None = None) -> None:
        self.handler = CountingHandler(watched)
        self.port = free_port()
        self._controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> SmtpServer:
        self._controller.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._controller.stop()
