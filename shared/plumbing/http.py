"""HTTP served by uvicorn inside the running event loop; each service's `/ready`, `/live` and
Prometheus `/metrics` on it (the operator console serves its own app the same way)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

Checks = Callable[[], dict[str, bool]]


class _SignalsLeftAlone(uvicorn.Server):
    """A uvicorn server that leaves SIGINT and SIGTERM to the process's owner: a service's
    FastStream app stops its parts in order, and this server last."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class InLoopServer:
    """uvicorn serving an ASGI app as a task of the running event loop, on a socket bound before
    it starts, so that port 0 gives a free port the caller learns from `start()`.

    Defaults every server here shares: the process's own logging (no uvicorn log configuration,
    no access log), no `Server` header, no lifespan events. `options` are more `uvicorn.Config`
    settings (TLS, say). With `handle_signals`, uvicorn's own SIGINT/SIGTERM handlers stop it
    (a process that is only this server); without, only `stop()` does."""

    def __init__(
        self,
        app: ASGIApp,
        host: str,
        port: int,
        *,
        handle_signals: bool = False,
        **options: Any,
    ) -> None:
        self.host = host
        self.port = port
        self.config = uvicorn.Config(
            app,
            **{
                "log_config": None,
                "access_log": False,
                "server_header": False,
                "lifespan": "off",
                "timeout_graceful_shutdown": 2,
                **options,
            },
        )
        self._server_class = uvicorn.Server if handle_signals else _SignalsLeftAlone
        self._server: uvicorn.Server | None = None
        self._serving: asyncio.Task[None] | None = None

    @property
    def started(self) -> bool:
        return self._serving is not None

    async def start(self) -> int:
        """Bound and answering when it returns; the port (a free one when given 0)."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        listening = socket.create_server((self.host, self.port), family=family)
        self.port = listening.getsockname()[1]
        self._server = self._server_class(self.config)
        self._serving = asyncio.create_task(
            self._server.serve(sockets=[listening]), name=f"http:{self.port}"
        )
        while not self._server.started:
            if self._serving.done():
                listening.close()
                self._serving.result()  # startup failed (a bad certificate, say): say why
                raise RuntimeError(f"the HTTP server on port {self.port} stopped before it started")
            await asyncio.sleep(0.01)
        return self.port

    async def stop(self) -> None:
        """Stop accepting, let the requests in flight finish (up to the graceful timeout)."""
        if self._server is not None and self._serving is not None:
            self._server.should_exit = True
            await self._serving

    async def wait(self) -> None:
        """Until the server stops (by `stop()`, or by a signal with `handle_signals`)."""
        assert self._serving is not None, "start() first"
        await self._serving


def health_app(ready: Checks, live: Checks) -> ASGIApp:
    """`/ready` and `/live`: 200 or 503, one `name ok|down` line per check; `/metrics`: the
    process's Prometheus registry. GET and HEAD only; anything else is Starlette's 404 or 405."""

    def checks_response(checks: dict[str, bool]) -> Response:
        body = "".join(f"{name} {'ok' if ok else 'down'}\n" for name, ok in checks.items())
        return PlainTextResponse(body, status_code=200 if all(checks.values()) else 503)

    async def readiness(_: Request) -> Response:
        return checks_response(ready())

    async def liveness(_: Request) -> Response:
        return checks_response(live())

    async def metrics(_: Request) -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    app = Starlette(
        routes=[
            Route("/ready", readiness, methods=["GET"]),  # Starlette adds HEAD to GET
            Route("/live", liveness, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
        ]
    )
    return _ClosingEachConnection(app)


class _ClosingEachConnection:
    """`Connection: close` on every answer, as the endpoint always did: probes ask once every few
    seconds, and simple probes (`renewals health`, the tests) read a response to its end."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def closing(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), (b"connection", b"close")]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, closing)


class HealthServer:
    """A service's `/ready`, `/live` and `/metrics`, served from `start()` to `stop()`."""

    def __init__(
        self,
        host: str,
        port: int,
        ready: Checks,
        live: Checks | None = None,
    ) -> None:
        self._server = InLoopServer(
            health_app(ready, live or (lambda: {"process": True})),
            host,
            port,
            # Warnings (a request it could not parse) only: the runtime logs "http listening",
            # and uvicorn's start and stop lines would bring colour codes into the JSON logs.
            log_level="warning",
        )

    @property
    def port(self) -> int:
        return self._server.port

    async def start(self) -> int:
        return await self._server.start()

    async def stop(self) -> None:
        await self._server.stop()
