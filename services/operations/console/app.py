"""The console's web application (Starlette): the pages, the `Host` check and the token gate.
HTTP itself — parsing, headers, cookies, query strings — is the library's."""

from __future__ import annotations

import asyncio
import functools
import hmac
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from markupsafe import Markup
from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.operations import lookup
from services.operations import trace as tracing
from services.operations.console import prometheus
from services.operations.console.charts import figure
from services.operations.console.templates import environment
from services.operations.dlq import DeadLetter, dead_letters
from services.operations.tail import parse_since
from services.operations.topics import topic_stats
from shared.clock import Clock, SystemClock

log = logging.getLogger(__name__)

TOKEN_COOKIE = "renewals_console_token"
LATEST_ERRORS = 20
TEMPLATES = environment()

# Every answer: never cached (it may hold customers' data), never framed, never a referrer.
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self';"
    " frame-ancestors 'none'",
}

CHART_COLUMNS = (  # (query of prometheus.QUERIES, label, unit, css class)
    ("throughput", "messages/s", "/s", ""),
    ("lag", "consumer lag", "", ""),
    ("dead_letters", "dead letters/min", "", "bad"),
)


@dataclass(frozen=True)
class ConsoleSettings:
    token: str | None = None
    allowed_hosts: Sequence[str] = ("127.0.0.1", "localhost", "[::1]")
    prometheus: str = "http://127.0.0.1:19090"
    chart_minutes: int = 60
    clock: Clock = field(default_factory=SystemClock)


def create_app(settings: ConsoleSettings) -> Starlette:
    app = Starlette(
        routes=[
            Route("/", overview),
            Route("/dlq", letters),
            Route("/search", search),
            Route("/trace", trace_page),
            Route("/customer/{csn:path}", customer),
            Route("/subscription/{subscription_id:path}", subscription),
        ],
        middleware=[
            # First the Host: a page of another site that rebinds its name to 127.0.0.1 sends
            # its own name, and is refused before anything else is looked at.
            Middleware(TrustedHostMiddleware, allowed_hosts=list(settings.allowed_hosts)),
            Middleware(TokenGate, token=settings.token),
        ],
    )
    app.state.settings = settings
    return app


class TokenGate:
    """Read-only (GET and HEAD), and when a token is set, every request must carry it: in the
    `renewals_console_token` cookie, an `Authorization: Bearer` header, or once in the URL
    (`?token=`), which answers with the cookie and a redirect to the same URL without it, so the
    token stays out of the history, the address bar and the logs of what is linked from there."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.token = token.encode() if token else None

    def _matches(self, offered: str | None) -> bool:
        assert self.token is not None
        return bool(offered) and hmac.compare_digest(str(offered).encode(), self.token)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        request = Request(scope)
        response = self._refusal(request)
        if response is None:
            await self.app(scope, receive, secured)
        else:
            await response(scope, receive, secured)

    def _refusal(self, request: Request) -> Response | None:
        if request.method not in ("GET", "HEAD"):
            return PlainTextResponse("read-only\n", 405, headers={"Allow": "GET, HEAD"})
        if self.token is None:
            return None
        in_url = request.query_params.get("token")
        if in_url is not None:
            if not self._matches(in_url):
                return PlainTextResponse("token required\n", 401)
            rest = request.url.remove_query_params("token")
            moved = RedirectResponse(rest.path + (f"?{rest.query}" if rest.query else ""), 303)
            moved.set_cookie(
                TOKEN_COOKIE,
                self.token.decode(),
                httponly=True,
                samesite="strict",
                secure=request.url.scheme == "https",
            )
            return moved
        bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
        if self._matches(bearer) or self._matches(request.cookies.get(TOKEN_COOKIE)):
            return None
        return PlainTextResponse("token required\n", 401, headers={"WWW-Authenticate": "Bearer"})


def page(
    handler: Callable[[Request], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    """A page that fails says so in a line and logs why; the console goes on serving."""

    @functools.wraps(handler)
    async def guarded(request: Request) -> Response:
        try:
            return await handler(request)
        except Exception:
            log.exception("console page failed", extra={"path": request.url.path})
            return PlainTextResponse("failed: see the log\n", 500)

    return guarded


def _settings(request: Request) -> ConsoleSettings:
    settings: ConsoleSettings = request.app.state.settings
    return settings


def _html(template: str, **context: Any) -> HTMLResponse:
    return HTMLResponse(TEMPLATES.get_template(template).render(**context))


def ago(seconds: float) -> str:
    """A duration as an operator reads it: the largest unit that fits, whole."""
    seconds = max(seconds, 0)
    for unit, size, up_to in (("s", 1, 120), ("min", 60, 7200), ("h", 3600, 172800)):
        if seconds < up_to:
            return f"{int(seconds // size)} {unit}"
    return f"{int(seconds // 86400)} d"


async def _charts(settings: ConsoleSettings) -> tuple[prometheus.Charts | None, str | None]:
    window = prometheus.window_ending(settings.clock.now().timestamp(), settings.chart_minutes)
    try:
        return await prometheus.charts(settings.prometheus, window), None
    except prometheus.PrometheusUnavailable as unavailable:
        return None, str(unavailable)


@page
async def overview(request: Request) -> Response:
    settings = _settings(request)
    show_stale = request.query_params.get("stale") == "1"
    stats, every_letter, running, (charts, charts_error) = await asyncio.gather(
        topic_stats(), dead_letters(), lookup.batches(include_finished=False), _charts(settings)
    )
    counts = Counter(d.dlq_topic for d in every_letter)
    open_counts = Counter(d.dlq_topic for d in every_letter if not d.replayed_as)
    latest: list[DeadLetter] = sorted(every_letter, key=lambda d: d.timestamp_ms, reverse=True)
    now = settings.clock.now().timestamp()

    def chart(metric: str, topic: str, label: str, unit: str, css: str) -> Markup:
        assert charts is not None
        return figure(
            charts.of(metric, topic),
            charts.window,
            label=f"{topic} {label}",
            unit=unit,
            css=css,
            name=f"{topic}/{metric}",
        )

    minutes = settings.chart_minutes
    return _html(
        "overview",
        topics=stats,
        show_stale=show_stale,
        stale_count=sum(g.stale for t in stats for g in t.groups),
        age=lambda ms: ago(now - ms / 1000),
        charts=charts,
        charts_error=charts_error,
        chart=chart,
        chart_columns=CHART_COLUMNS,
        window=charts.window if charts else None,
        window_label="hour"
        if minutes == 60
        else "minute"
        if minutes == 1
        else f"{minutes} minutes",
        prometheus=settings.prometheus,
        dlq_counts=sorted(counts.items()),
        open_counts=open_counts,
        letters=latest[:LATEST_ERRORS],
        letters_title=f"Latest errors (newest {LATEST_ERRORS})",
        batches=running,
    )


@page
async def letters(request: Request) -> Response:
    topic = request.query_params.get("topic")
    found = await dead_letters(topics=[topic] if topic else None)
    return _html(
        "dlq",
        letters=list(reversed(found)),
        letters_title=f"Dead letters of {topic}" if topic else "Every dead letter",
    )


@page
async def search(request: Request) -> Response:
    q = request.query_params.get("q", "").strip()
    if not q:
        return RedirectResponse("/", 303)
    where = "subscription" if await lookup.subscription(q) else "customer"
    return RedirectResponse(f"/{where}/{quote(q, safe='')}", 303)


@page
async def customer(request: Request) -> Response:
    csn = request.path_params["csn"]
    found = await lookup.customer(csn)
    known = found["renewal"]["subscriptions"] or found["billing"]["orders"]
    return _known(f"Customer {csn}", csn, found if known else None)


@page
async def subscription(request: Request) -> Response:
    subscription_id = request.path_params["subscription_id"]
    found = await lookup.subscription(subscription_id)
    return _known(f"Subscription {subscription_id}", subscription_id, found)


@page
async def trace_page(request: Request) -> Response:
    """`renewals trace` in the browser: the path of a request, order, subscription or quote."""
    wanted = request.query_params.get("id", "").strip()
    if not wanted:
        return RedirectResponse("/", 303)
    since = request.query_params.get("since", "24h")
    try:
        window = parse_since(since)
    except ValueError as error:
        return PlainTextResponse(f"{error}\n", 400)
    found = await tracing.trace(wanted, since=window)
    return _html("trace", query=wanted, since=since, found=found)


def _known(heading: str, query: str, found: dict[str, Any] | None) -> Response:
    if found is not None:
        for change in found["renewal"]["history"]:
            change["detail"] = ", ".join(f"{k}={v}" for k, v in change["detail"].items())
    return _html("known", heading=heading, query=query, found=found)
