"""The console's trust boundary (issue 16 item 7), on a real uvicorn server on 127.0.0.1: the
`Host` header checked, the token never on the command line, moved from the URL to a cookie that
is HttpOnly, SameSite=Strict and, over TLS, Secure. Only paths that need no broker or database
are asked (an unknown path answers 404 once past the gate)."""

from __future__ import annotations

import asyncio
import http.client
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator, Callable
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from services.operations.cli import app
from services.operations.console import (
    TOKEN_COOKIE,
    ConsoleServer,
    TokenError,
    UnsafeBindError,
    allowed_hosts,
    read_token,
)

TOKEN = "s3cret-token"


async def ask(server: ConsoleServer, path: str, **options: Any) -> http.client.HTTPResponse:
    # In a thread: the server answers on this test's event loop.
    return await asyncio.to_thread(ask_blocking, server, path, **options)


def ask_blocking(
    server: ConsoleServer,
    path: str,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    tls: bool = False,
) -> http.client.HTTPResponse:
    """A request as any client may send it: http.client sends the Host header it is told."""
    if tls:
        unverified = ssl.create_default_context()
        unverified.check_hostname = False
        unverified.verify_mode = ssl.CERT_NONE
        connection: http.client.HTTPConnection = http.client.HTTPSConnection(
            "127.0.0.1", server.port, timeout=5, context=unverified
        )
    else:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    connection.request(method, path, headers=headers or {})
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


def cookie_of(response: http.client.HTTPResponse) -> Any:
    jar: SimpleCookie = SimpleCookie(response.headers["set-cookie"])
    return jar[TOKEN_COOKIE]


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., Any]]:
    servers: list[ConsoleServer] = []

    async def start(**options: Any) -> ConsoleServer:
        server = ConsoleServer("127.0.0.1", 0, prometheus="http://127.0.0.1:9", **options)
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()


async def test_a_page_of_another_name_is_refused_so_dns_rebinding_reads_nothing(serve) -> None:
    server = await serve()
    for name in ("attacker.example", f"attacker.example:{server.port}", "127.0.0.1.nip.io"):
        refused = await ask(server, "/nowhere", headers={"Host": name})
        assert refused.status == 400, name
    for name in (f"127.0.0.1:{server.port}", f"localhost:{server.port}", "[::1]"):
        assert (await ask(server, "/nowhere", headers={"Host": name})).status == 404, name


def test_the_names_answered_to_are_the_loopback_the_bound_address_and_those_given() -> None:
    assert allowed_hosts("127.0.0.1") == ["127.0.0.1", "localhost", "[::1]"]
    assert allowed_hosts("10.1.2.3", ["Console.Example"]) == [
        "127.0.0.1", "localhost", "[::1]", "10.1.2.3", "console.example",
    ]  # fmt: skip
    assert "[fd00::1]" in allowed_hosts("fd00::1")
    assert socket.gethostname().lower() in allowed_hosts("0.0.0.0")


async def test_without_a_token_only_the_loopback_is_served() -> None:
    with pytest.raises(UnsafeBindError, match="--token-file"):
        ConsoleServer("0.0.0.0", 0)
    ConsoleServer("0.0.0.0", 0, "a-token")  # with one it may


async def test_the_token_in_a_url_becomes_a_strict_httponly_cookie_and_leaves_the_url(
    serve,
) -> None:
    server = await serve(token=TOKEN)
    assert (await ask(server, "/nowhere")).status == 401
    assert (await ask(server, "/nowhere?token=wrong")).status == 401
    assert (
        await ask(server, "/nowhere", headers={"Cookie": f"{TOKEN_COOKIE}=wrong"})
    ).status == 401

    moved = await ask(server, f"/dlq?topic=renewal.commands.dlq&token={TOKEN}")
    assert moved.status == 303
    assert moved.headers["location"] == "/dlq?topic=renewal.commands.dlq"
    cookie = cookie_of(moved)
    assert cookie.value == TOKEN
    assert cookie["httponly"] is True
    assert cookie["samesite"].lower() == "strict"
    assert not cookie["secure"]  # plain HTTP: a Secure cookie would never come back
    assert moved.headers["cache-control"] == "no-store"
    assert moved.headers["referrer-policy"] == "no-referrer"

    with_cookie = {"Cookie": f"{TOKEN_COOKIE}={TOKEN}"}
    assert (await ask(server, "/nowhere", headers=with_cookie)).status == 404
    assert (
        await ask(server, "/nowhere", headers={"Authorization": f"Bearer {TOKEN}"})
    ).status == 404
    assert (await ask(server, "/", method="POST", headers=with_cookie)).status == 405


async def test_a_forwarded_proto_header_does_not_make_a_plain_request_secure(serve) -> None:
    server = await serve(token=TOKEN)
    moved = await ask(server, f"/?token={TOKEN}", headers={"X-Forwarded-Proto": "https"})
    assert moved.status == 303 and not cookie_of(moved)["secure"]


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "console.crt", tmp_path / "console.key"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


async def test_over_tls_the_cookie_is_secure(serve, certificate) -> None:
    cert, key = certificate
    server = await serve(token=TOKEN, tls_cert=cert, tls_key=key)
    assert server.url.startswith("https://")
    moved = await ask(server, f"/nowhere?token={TOKEN}", tls=True)
    assert moved.status == 303
    assert cookie_of(moved)["secure"] is True
    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
        await ask(server, "/nowhere")  # plain HTTP to the TLS port


def test_a_token_on_the_command_line_is_refused_with_the_ways_to_give_it() -> None:
    result = CliRunner().invoke(app, ["console", "--token", TOKEN])
    assert result.exit_code == 2
    said = " ".join(result.output.split())
    assert "--token is refused" in said
    assert "--token-file" in said and "RENEWALS_CONSOLE_TOKEN" in said


def test_a_token_file_is_read_only_when_only_its_owner_can_read_it(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(f"{TOKEN}\nwritten by the deploy tool\n")
    token_file.chmod(0o644)
    with pytest.raises(TokenError, match="readable by others"):
        read_token(token_file)
    token_file.chmod(0o600)
    assert read_token(token_file) == TOKEN
    token_file.write_text("\n")
    with pytest.raises(TokenError, match="no token on its first line"):
        read_token(token_file)
    with pytest.raises(TokenError, match="cannot read"):
        read_token(tmp_path / "missing")
    refused = CliRunner().invoke(app, ["console", "--token-file", str(tmp_path / "missing")])
    assert refused.exit_code == 2 and "cannot read the token file" in refused.output
