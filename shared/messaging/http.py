"""A tiny HTTP endpoint per service: `/ready`, `/live` and Prometheus `/metrics`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

log = logging.getLogger(__name__)


class HealthServer:
    def __init__(
        self,
        host: str,
        port: int,
        ready: Callable[[], dict[str, bool]],
        live: Callable[[], dict[str, bool]] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.ready = ready
        self.live = live or (lambda: {"process": True})
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = await asyncio.wait_for(reader.readline(), 5)
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass
            path = request_line.split()[1].decode() if len(request_line.split()) > 1 else "/"
            status, content_type, body = self._respond(path)
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    def _respond(self, path: str) -> tuple[str, str, bytes]:
        if path == "/metrics":
            return "200 OK", CONTENT_TYPE_LATEST, generate_latest()
        if path in ("/live", "/ready"):
            checks = self.live() if path == "/live" else self.ready()
            body = "".join(f"{name} {'ok' if ok else 'down'}\n" for name, ok in checks.items())
            status = "200 OK" if all(checks.values()) else "503 Service Unavailable"
            return status, "text/plain", body.encode()
        return "404 Not Found", "text/plain", b"not found\n"
