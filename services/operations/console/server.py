"""Serving the console: uvicorn in the running loop (shared/plumbing/http.py), the bind and
token rules, the names it answers to.

No login on the loopback interface; anywhere else it needs a token, read from a file or the
environment (a command line is readable by every user of the machine, in `ps`)."""

from __future__ import annotations

import ipaddress
import os
import socket
import stat
from collections.abc import Iterable
from pathlib import Path

from services.operations.console.app import ConsoleSettings, create_app
from services.operations.prometheus_targets import prometheus_url
from shared.clock import Clock, SystemClock
from shared.plumbing.http import InLoopServer

TOKEN_ENV = "RENEWALS_CONSOLE_TOKEN"
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
WILDCARDS = ("0.0.0.0", "::", "")


class UnsafeBindError(ValueError):
    """Binding beyond the loopback interface without a token."""


class TokenError(ValueError):
    """A token file that cannot be used."""


def is_loopback(host: str) -> bool:
    try:
        return all(
            ipaddress.ip_address(info[4][0]).is_loopback for info in socket.getaddrinfo(host, None)
        )
    except (OSError, ValueError):
        return False


def read_token(path: Path) -> str:
    """The token is the file's first line. A file others may read is refused, as ssh does."""
    try:
        mode = path.stat().st_mode
        lines = path.read_text().splitlines()
    except OSError as error:
        raise TokenError(f"cannot read the token file {path}: {error.strerror}") from error
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise TokenError(
            f"the token file {path} is readable by others (mode {stat.S_IMODE(mode):o}):"
            f" chmod 600 {path}"
        )
    token = lines[0].strip() if lines else ""
    if not token:
        raise TokenError(f"the token file {path} has no token on its first line")
    return token


def allowed_hosts(bind: str, extra: Iterable[str] = ()) -> list[str]:
    """The `Host` names the console answers to: the loopback names, the address it is bound to,
    the machine's own names when bound to every interface, and the names given."""
    names = [*LOOPBACK_NAMES]
    if bind in WILDCARDS:
        names += [socket.gethostname(), socket.getfqdn()]
    elif bind:
        names.append(f"[{bind}]" if ":" in bind else bind)
    names += [f"[{name}]" if ":" in name and not name.startswith("[") else name for name in extra]
    return list(dict.fromkeys(n.lower() for n in names))


class ConsoleServer:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        *,
        prometheus: str | None = None,
        chart_minutes: int = 60,
        tls_cert: Path | None = None,
        tls_key: Path | None = None,
        allow_hosts: Iterable[str] = (),
        clock: Clock | None = None,
    ) -> None:
        if not token and not is_loopback(host):
            raise UnsafeBindError(
                f"refusing to serve the console on {host} without a token: anyone there could"
                f" read it (--token-file PATH, or {TOKEN_ENV})"
            )
        self.host = host
        self.port = port
        self.tls = tls_cert is not None
        self.settings = ConsoleSettings(
            token=token or None,
            allowed_hosts=allowed_hosts(host, allow_hosts),
            prometheus=prometheus or prometheus_url(),
            chart_minutes=chart_minutes,
            clock=clock or SystemClock(),
        )
        self.server = InLoopServer(
            create_app(self.settings),
            host,
            port,
            handle_signals=True,  # `renewals console` is this server alone: Ctrl-C stops it
            ssl_certfile=tls_cert,
            ssl_keyfile=tls_key,
            # Served directly: an X-Forwarded-Proto from any client must not make it "https".
            proxy_headers=False,
        )

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"

    async def start(self) -> int:
        """Bound and answering when it returns; the port (a free one when given 0)."""
        self.port = await self.server.start()
        return self.port

    async def stop(self) -> None:
        await self.server.stop()

    async def serve_forever(self) -> None:
        """Until SIGINT or SIGTERM (uvicorn's handlers), then a graceful shutdown."""
        if not self.server.started:
            await self.start()
        await self.server.wait()


def token_from_environment() -> str | None:
    return os.environ.get(TOKEN_ENV) or None
