"""`renewals console`: a read-only web console, server-rendered — topics and lag, dead letters
with their latest errors, running batches, and a search by CSN or subscription.

No login on 127.0.0.1; it refuses to bind anywhere else without a token, which every request
must then carry (`?token=`, once: a cookie keeps it; or `Authorization: Bearer`).
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import socket
from collections import Counter
from dataclasses import dataclass
from http import cookies
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from jinja2 import DictLoader, Environment, select_autoescape

from services.operations import lookup
from services.operations.dlq import DeadLetter, dead_letters
from services.operations.topics import topic_stats

log = logging.getLogger(__name__)

TOKEN_COOKIE = "renewals_console_token"
LATEST_ERRORS = 20

_BASE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{% block title %}{% endblock %} · renewals</title>
<style>
 body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1d2330;background:#f5f6f8}
 header{background:#1d2330;color:#fff;padding:10px 24px;display:flex;gap:24px;align-items:center}
 header a{color:#cfd6e4;text-decoration:none} header b{font-size:16px}
 header form{margin-left:auto} input{padding:4px 8px;width:260px}
 main{padding:16px 24px} h2{font-size:16px;margin:20px 0 8px}
 table{border-collapse:collapse;background:#fff;width:100%;margin-bottom:8px}
 th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #e3e6eb;vertical-align:top}
 th{background:#eef0f4;font-weight:600} td.num{text-align:right;font-variant-numeric:tabular-nums}
 .lag{color:#b3261e;font-weight:600} .ok{color:#1e7b34} .dim{color:#6b7385}
 .err{color:#b3261e;font-family:ui-monospace,monospace;font-size:12px}
 code{font-size:12px}
</style></head><body>
<header><b>renewals</b><a href="/">overview</a><a href="/dlq">dead letters</a>
<form action="/search"><input name="q" placeholder="CSN or subscription id" value="{{ query or '' }}"
 aria-label="search"><button>search</button></form></header>
<main>{% block main %}{% endblock %}</main></body></html>"""

_OVERVIEW = """{% extends "base" %}{% block title %}overview{% endblock %}{% block main %}
<h2>Topics and consumer lag</h2>
<table id="topics"><tr><th>topic</th><th>partitions</th><th>end offset</th><th>msg/s (1 min)</th>
<th>consumer group</th><th>lag</th></tr>
{% for t in topics %}{% for g in (t.groups or [None]) %}<tr>
<td>{% if loop.first %}{{ t.topic }}{% endif %}</td>
<td class="num">{% if loop.first %}{{ t.partitions }}{% endif %}</td>
<td class="num">{% if loop.first %}{{ t.end_offset }}{% endif %}</td>
<td class="num">{% if loop.first %}{{ t.per_second }}{% endif %}</td>
<td>{{ g.group if g else '—' }}</td>
<td class="num {{ 'lag' if g and g.lag else '' }}">{{ g.lag if g else '' }}</td></tr>
{% endfor %}{% endfor %}</table>
<h2>Dead letters</h2>
<table id="dlq-counts"><tr><th>DLQ</th><th>dead letters</th><th>not replayed</th></tr>
{% for name, count in dlq_counts %}<tr><td><a href="/dlq?topic={{ name|urlencode }}">{{ name }}</a></td>
<td class="num">{{ count }}</td><td class="num">{{ open_counts[name] }}</td></tr>
{% else %}<tr><td colspan="3" class="ok">no dead letter</td></tr>{% endfor %}</table>
{% include "letters" %}
<h2>Running batches</h2>
<table id="batches"><tr><th>request</th><th>CSN</th><th>status</th><th>done</th><th>renewed</th>
<th>refused</th><th>received</th></tr>
{% for b in batches %}<tr><td>{{ b.request_id }}</td><td><a href="/customer/{{ b.csn|urlencode }}">{{ b.csn }}</a></td>
<td>{{ b.status }}</td><td class="num">{{ b.done }}/{{ b.total_items }}</td><td class="num">{{ b.renewed }}</td>
<td class="num">{{ b.rejected }}</td><td>{{ b.received_at|string|truncate(19, True, '') }}</td></tr>
{% else %}<tr><td colspan="7" class="dim">no batch in progress</td></tr>{% endfor %}</table>
{% endblock %}"""

_LETTERS = """<h2>{{ letters_title }}</h2>
<table id="letters"><tr><th>dead letter</th><th>group</th><th>CSN</th><th>type</th><th>error</th>
<th>failed at</th><th>replayed as</th></tr>
{% for d in letters %}<tr><td><code>{{ d.ref }}</code></td><td>{{ d.consumer_group }}</td>
<td>{% if d.csn %}<a href="/customer/{{ d.csn|urlencode }}">{{ d.csn }}</a>{% endif %}</td>
<td>{{ d.event_type or '' }}</td><td class="err">{{ d.error_type }}: {{ d.error|truncate(300) }}</td>
<td>{{ d.failed_at[:19] }}</td><td>{{ d.replayed_as or '' }}</td></tr>
{% else %}<tr><td colspan="7" class="ok">none</td></tr>{% endfor %}</table>"""

_DLQ = """{% extends "base" %}{% block title %}dead letters{% endblock %}{% block main %}
{% include "letters" %}
<p class="dim">Replay from the command line: <code>renewals dlq replay REF</code> (read-only here).</p>
{% endblock %}"""

_KNOWN = """{% extends "base" %}{% block title %}{{ heading }}{% endblock %}{% block main %}
<h2 id="heading">{{ heading }}</h2>
{% if not found %}<p class="dim">Nothing is known of {{ query }}.</p>{% else %}
{% set r = found.renewal %}
{% macro rows(title, id, items, columns) %}<h2>{{ title }}</h2><table id="{{ id }}"><tr>
{% for c in columns %}<th>{{ c }}</th>{% endfor %}</tr>
{% for item in items %}<tr>{% for c in columns %}<td>{{ item[c] if item[c] is not none else '' }}</td>{% endfor %}</tr>
{% else %}<tr><td colspan="{{ columns|length }}" class="dim">none</td></tr>{% endfor %}</table>{% endmacro %}
{{ rows("Subscriptions (renewal)", "subscriptions", r.subscriptions,
   ["subscription_id", "csn", "state", "renewal_date", "term", "seats", "auto_renew"]) }}
{{ rows("Orders (billing)", "orders", found.billing.orders,
   ["order_id", "request_id", "status", "total", "currency", "created_at"]) }}
{{ rows("Payments (billing)", "payments", found.billing.payments,
   ["order_id", "outcome", "amount", "currency", "reason", "at"]) }}
{{ rows("Emails (notification)", "emails", found.emails,
   ["kind", "subject", "status", "order_id", "sent_at"]) }}
<h2>Open quotes</h2><p class="dim">{{ found.quotes.note if not found.quotes.available else found.quotes.open|length ~ ' open' }}</p>
{{ rows("Audit trail", "history", r.history, ["at", "subscription_id", "change", "detail", "request_id"]) }}
{% endif %}{% endblock %}"""

TEMPLATES = Environment(
    loader=DictLoader(
        {"base": _BASE, "overview": _OVERVIEW, "letters": _LETTERS, "dlq": _DLQ, "known": _KNOWN}
    ),
    autoescape=select_autoescape(default=True, default_for_string=True),
)


class UnsafeBindError(ValueError):
    """Binding beyond the loopback interface without a token."""


def is_loopback(host: str) -> bool:
    try:
        return all(
            ipaddress.ip_address(info[4][0]).is_loopback for info in socket.getaddrinfo(host, None)
        )
    except (OSError, ValueError):
        return False


@dataclass
class Response:
    status: str
    body: bytes
    content_type: str = "text/html; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()


class ConsoleServer:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, token: str | None = None) -> None:
        if not token and not is_loopback(host):
            raise UnsafeBindError(
                f"refusing to serve the console on {host} without a token: anyone there could"
                " read it (--token, or RENEWALS_CONSOLE_TOKEN)"
            )
        self.host = host
        self.port = port
        self.token = token
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def serve_forever(self) -> None:
        await self.start()
        assert self._server is not None
        async with self._server:
            await self._server.serve_forever()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = (await asyncio.wait_for(reader.readline(), 10)).decode("latin-1")
            headers: dict[str, str] = {}
            while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            parts = request_line.split()
            method, target = (parts[0], parts[1]) if len(parts) >= 2 else ("GET", "/")
            response = await self.respond(method, target, headers)
            extra = "".join(f"{k}: {v}\r\n" for k, v in response.headers)
            writer.write(
                f"HTTP/1.1 {response.status}\r\nContent-Type: {response.content_type}\r\n"
                f"Content-Length: {len(response.body)}\r\nCache-Control: no-store\r\n"
                f"{extra}Connection: close\r\n\r\n".encode("latin-1")
                + response.body
            )
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    def _authorized(self, query: dict[str, list[str]], headers: dict[str, str]) -> bool:
        if not self.token:
            return True
        jar = cookies.SimpleCookie(headers.get("cookie", ""))
        offered = [
            *query.get("token", []),
            headers.get("authorization", "").removeprefix("Bearer "),
            jar[TOKEN_COOKIE].value if TOKEN_COOKIE in jar else "",
        ]
        return any(hmac.compare_digest(o.encode(), self.token.encode()) for o in offered if o)

    async def respond(self, method: str, target: str, headers: dict[str, str]) -> Response:
        url = urlsplit(target)
        query = parse_qs(url.query)
        if method not in ("GET", "HEAD"):
            return Response("405 Method Not Allowed", b"read-only\n", "text/plain")
        if not self._authorized(query, headers):
            return Response("401 Unauthorized", b"token required\n", "text/plain")
        keep: tuple[tuple[str, str], ...] = ()
        if self.token and query.get("token"):
            keep = (("Set-Cookie", f"{TOKEN_COOKIE}={self.token}; HttpOnly; SameSite=Strict"),)
        try:
            page = await self._page(url.path, query)
        except Exception:
            log.exception("console page failed", extra={"path": url.path})
            return Response("500 Internal Server Error", b"failed: see the log\n", "text/plain")
        if isinstance(page, Response):
            return page
        return Response("200 OK", page.encode(), headers=keep)

    async def _page(self, path: str, query: dict[str, list[str]]) -> str | Response:
        if path == "/":
            return await overview()
        if path == "/dlq":
            topic = query.get("topic", [None])[0]
            letters = await dead_letters(topics=[topic] if topic else None)
            return TEMPLATES.get_template("dlq").render(
                letters=list(reversed(letters)),
                letters_title=f"Dead letters of {topic}" if topic else "Every dead letter",
            )
        if path == "/search":
            q = query.get("q", [""])[0].strip()
            if not q:
                return Response("303 See Other", b"", headers=(("Location", "/"),))
            where = "subscription" if await lookup.subscription(q) else "customer"
            return Response("303 See Other", b"", headers=(("Location", f"/{where}/{quote(q)}"),))
        if path.startswith("/customer/"):
            csn = unquote(path.removeprefix("/customer/"))
            found = await lookup.customer(csn)
            known = found["renewal"]["subscriptions"] or found["billing"]["orders"]
            return _known(f"Customer {csn}", csn, found if known else None)
        if path.startswith("/subscription/"):
            subscription_id = unquote(path.removeprefix("/subscription/"))
            found_sub = await lookup.subscription(subscription_id)
            return _known(f"Subscription {subscription_id}", subscription_id, found_sub)
        return Response("404 Not Found", b"not found\n", "text/plain")


def _known(heading: str, query: str, found: dict[str, Any] | None) -> str:
    if found is not None:
        for change in found["renewal"]["history"]:
            change["detail"] = ", ".join(f"{k}={v}" for k, v in change["detail"].items())
    return TEMPLATES.get_template("known").render(heading=heading, query=query, found=found)


async def overview() -> str:
    stats, letters, running = await asyncio.gather(
        topic_stats(), dead_letters(), lookup.batches(include_finished=False)
    )
    counts = Counter(d.dlq_topic for d in letters)
    open_counts = Counter(d.dlq_topic for d in letters if not d.replayed_as)
    latest: list[DeadLetter] = sorted(letters, key=lambda d: d.timestamp_ms, reverse=True)
    return TEMPLATES.get_template("overview").render(
        topics=stats,
        dlq_counts=sorted(counts.items()),
        open_counts=open_counts,
        letters=latest[:LATEST_ERRORS],
        letters_title=f"Latest errors (newest {LATEST_ERRORS})",
        batches=running,
    )
