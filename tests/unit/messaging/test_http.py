"""Issue 18 item 5 — a service's `/ready`, `/live` and `/metrics` served by uvicorn and Starlette
on a real socket of 127.0.0.1: the answers the launcher, `renewals health` and Prometheus read,
404 and 405 elsewhere, and a request no HTTP parser accepts answered 400 by the library while the
endpoint goes on serving."""

from __future__ import annotations

import asyncio
import http.client
from collections.abc import AsyncIterator

import pytest
from prometheus_client import CONTENT_TYPE_LATEST, Counter

from shared.plumbing.http import HealthServer

PROBES = Counter("renewals_test_http_probes", "A counter only this test increments.")


class Checks:
    def __init__(self) -> None:
        self.ready = {"database": True, "outbox_relay": True}
        self.live = {"metrics": True}


def ask_blocking(port: int, path: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request(method, path)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


async def ask(port: int, path: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    # In a thread: the server answers on this test's event loop.
    return await asyncio.to_thread(ask_blocking, port, path, method)


async def send_raw(port: int, request: bytes) -> bytes:
    """Bytes as a broken client or a port scanner sends them; the whole answer, to the close."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()


@pytest.fixture
async def served() -> AsyncIterator[tuple[HealthServer, Checks]]:
    checks = Checks()
    server = HealthServer("127.0.0.1", 0, lambda: checks.ready, lambda: checks.live)
    await server.start()
    try:
        yield server, checks
    finally:
        await server.stop()


async def test_port_zero_gives_a_free_port_and_ready_and_live_say_each_check(served) -> None:
    server, checks = served
    assert server.port != 0

    status, headers, body = await ask(server.port, "/ready")
    assert (status, body) == (200, b"database ok\noutbox_relay ok\n")
    assert headers["content-type"].startswith("text/plain")
    assert headers["connection"] == "close"  # simple probes read the answer to its end

    checks.ready["database"] = False
    assert (await ask(server.port, "/ready"))[::2] == (503, b"database down\noutbox_relay ok\n")

    assert (await ask(server.port, "/live"))[::2] == (200, b"metrics ok\n")
    checks.live["relay"] = False
    assert (await ask(server.port, "/live"))[::2] == (503, b"metrics ok\nrelay down\n")

    status, headers, body = await ask(server.port, "/ready", method="HEAD")
    assert (status, body) == (503, b"")


async def test_metrics_is_the_prometheus_exposition_of_the_process(served) -> None:
    server, _ = served
    PROBES.inc()
    status, headers, body = await ask(server.port, "/metrics")
    assert status == 200 and headers["content-type"] == CONTENT_TYPE_LATEST
    assert "renewals_test_http_probes_total 1.0" in body.decode()


async def test_other_paths_are_404_and_other_methods_405(served) -> None:
    server, _ = served
    assert (await ask(server.port, "/"))[0] == 404
    assert (await ask(server.port, "/ready/extra"))[0] == 404
    assert (await ask(server.port, "/ready", method="POST"))[0] == 405
    assert (await ask(server.port, "/metrics", method="DELETE"))[0] == 405


async def test_a_garbage_request_is_answered_400_and_the_endpoint_serves_on(served) -> None:
    server, _ = served
    for garbage in (
        b"\x00\xff\xfe GARBAGE\r\n\r\n",
        b"GET\r\n\r\n",
        b"GET /ready HTTP/1.1\r\nno colon in this header\r\n\r\n",
    ):
        answer = await send_raw(server.port, garbage)
        assert answer.startswith(b"HTTP/1.1 400 "), (garbage, answer)
    assert (await ask(server.port, "/live"))[0] == 200


async def test_stop_closes_the_port(served) -> None:
    server, _ = served
    await server.stop()
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", server.port)
