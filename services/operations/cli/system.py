"""Commands about the running system: migrations, health, the read-only web console."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from services.operations.cli.app import app
from services.operations.cli.output import (
    JsonOption,
    console,
    fail,
    print_json,
)
from services.operations.console import (
    TOKEN_ENV,
    ConsoleServer,
    TokenError,
    UnsafeBindError,
    read_token,
    token_from_environment,
)
from services.operations.health import check_all
from services.operations.tables import fitting
from shared.db.migrate import MIGRATION_SETS, migrate


@app.command(name="migrate")
def migrate_command(
    services: Annotated[list[str] | None, typer.Argument(help="Default: every service.")] = None,
) -> None:
    """Apply the services' database migrations (they also run at every service start)."""
    for service in services or sorted(MIGRATION_SETS):
        if service not in MIGRATION_SETS:
            console.print(
                f"[red]unknown service {service!r}: one of {', '.join(sorted(MIGRATION_SETS))}"
            )
            raise typer.Exit(2)
        applied = asyncio.run(migrate(service))
        console.print(
            f"{service}: {len(applied)} migration(s) applied {' '.join(applied)}".rstrip()
        )


@app.command()
def health(
    service: Annotated[
        list[str] | None,
        typer.Option(help="NAME=HOST:PORT of a service's /ready (default: make run's ports)."),
    ] = None,
    smtp: Annotated[
        str | None, typer.Option(help="HOST:PORT of the SMTP server (default: notification's).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Every service's readiness, the broker, the database (as each service's role), the SMTP
    server. Exits 1 when anything is down."""
    services = None
    if service:
        try:
            services = dict(s.split("=", 1) for s in service)
        except ValueError:
            fail("--service takes NAME=HOST:PORT", 2)
    try:
        checks = asyncio.run(check_all(services, smtp_at=smtp))
    except ValueError as error:  # a malformed RENEWALS_HEALTH_SERVICES
        fail(str(error), 2)
    if as_json:
        print_json([c.as_dict() for c in checks])
    else:
        table = Table("component", "state", "detail")
        for check in checks:
            state = "[green]ok" if check.ok else "[red]DOWN"
            table.add_row(check.component, state, check.detail)
        console.print(fitting(table, console))
    if not all(c.ok for c in checks):
        raise typer.Exit(1)


@app.command(name="console")
def console_command(
    host: Annotated[
        str, typer.Option(help="Address to bind; beyond the loopback needs a token.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 18090,
    token_file: Annotated[
        Path | None,
        typer.Option(
            help=f"A file (mode 600) whose first line is the token every request must carry;"
            f" or set {TOKEN_ENV}. Never on the command line."
        ),
    ] = None,
    prometheus: Annotated[
        str | None,
        typer.Option(
            help="Prometheus for the charts (default: http://127.0.0.1:$RENEWALS_PROMETHEUS_PORT)."
        ),
    ] = None,
    chart_minutes: Annotated[int, typer.Option(help="The charts' window.", min=1)] = 60,
    allow_host: Annotated[
        list[str] | None,
        typer.Option(help="Another name the console is reached by (the Host header it accepts)."),
    ] = None,
    tls_cert: Annotated[
        Path | None, typer.Option(help="Serve HTTPS with this certificate.")
    ] = None,
    tls_key: Annotated[Path | None, typer.Option(help="The certificate's private key.")] = None,
    token: Annotated[str | None, typer.Option(hidden=True)] = None,
) -> None:
    """A read-only web console: charts of the last hour, topics and lag, dead letters and their
    latest errors, running batches, search by CSN or subscription (Ctrl-C stops)."""
    if token is not None:
        fail(
            "--token is refused: a command line is readable by every user of the machine."
            f" Put the token in a file only you can read (--token-file PATH) or in {TOKEN_ENV}.",
            2,
        )
    try:
        secret = read_token(token_file) if token_file else token_from_environment()
        server = ConsoleServer(
            host,
            port,
            secret,
            prometheus=prometheus,
            chart_minutes=chart_minutes,
            tls_cert=tls_cert,
            tls_key=tls_key,
            allow_hosts=allow_host or (),
        )
    except (UnsafeBindError, TokenError) as error:
        fail(str(error), 2)

    async def serve() -> None:
        try:
            await server.start()
        except OSError as error:
            fail(f"cannot listen on {host}:{port}: {error.strerror or error}", 2)
        console.print(f"console on {server.url}/" + (" (token required)" if secret else ""))
        await server.serve_forever()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())
