"""`renewals`: the operator's command line.

    renewals history SUBSCRIPTION_ID   a subscription's renewal state and its audit trail
    renewals batches [--all]           bulk renewal batches with their progress
    renewals migrate [SERVICE...]      apply the services' database migrations

Every command takes `--json` for scripts.
"""

from __future__ import annotations

import asyncio
import json
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

import asyncpg
import typer
from rich.console import Console
from rich.progress_bar import ProgressBar
from rich.table import Table

from shared.db.migrate import MIGRATION_SETS, migrate
from shared.db.pool import connect
from shared.db.settings import DatabaseSettings

app = typer.Typer(
    help="The operator's command line (history, batches, migrate); --json on every command.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


def _jsonable(value: Any) -> Any:
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _print_json(document: Any) -> None:
    print(json.dumps(document, default=_jsonable, indent=2))


async def _renewal_db() -> asyncpg.Connection:
    return await connect(DatabaseSettings.for_service("renewal"))


@app.command()
def history(subscription_id: str, as_json: JsonOption = False) -> None:
    """A subscription's renewal state and every change to it: who or what, when, why."""

    async def load() -> tuple[Any, list[Any]]:
        connection = await _renewal_db()
        try:
            state = await connection.fetchrow(
                "SELECT subscription_id, csn, renewal_date, term, seats, auto_renew,"
                " lapse_announced_for, expiry_announced_for FROM subscriptions"
                " WHERE subscription_id = $1",
                subscription_id,
            )
            changes = await connection.fetch(
                "SELECT at, change, detail::text AS detail, actor::text AS actor, request_id,"
                " event_id FROM subscription_history WHERE subscription_id = $1 ORDER BY id",
                subscription_id,
            )
            return state, changes
        finally:
            await connection.close()

    state, changes = asyncio.run(load())
    if state is None:
        console.print(f"[red]no subscription {subscription_id} is known to the renewal service")
        raise typer.Exit(1)
    rows = [
        {**dict(c), "detail": json.loads(c["detail"]), "actor": json.loads(c["actor"] or "null")}
        for c in changes
    ]
    if as_json:
        _print_json({"subscription": dict(state), "history": rows})
        return
    console.print(
        f"[bold]{state['subscription_id']}[/] (CSN {state['csn']}): renews on "
        f"{state['renewal_date']}, {state['term']}, {state['seats']} seat(s), auto-renew "
        f"{'on' if state['auto_renew'] else 'off'}"
        + (" — lapsed" if state["lapse_announced_for"] == state["renewal_date"] else "")
        + (" — expired" if state["expiry_announced_for"] == state["renewal_date"] else "")
    )
    table = Table("when", "change", "detail", "by", "request", "event")
    for row in rows:
        actor = row["actor"]["user_id"] if row["actor"] else "the product"
        detail = ", ".join(f"{k}={v}" for k, v in row["detail"].items())
        table.add_row(
            str(row["at"])[:19],
            row["change"],
            detail,
            actor,
            row["request_id"] or "",
            (row["event_id"] or "")[:8],
        )
    console.print(table)


@app.command()
def batches(
    show_all: Annotated[bool, typer.Option("--all", help="Finished batches too.")] = False,
    limit: int = 50,
    as_json: JsonOption = False,
) -> None:
    """Bulk renewal batches and their progress: items done out of the total."""

    async def load() -> list[Any]:
        connection = await _renewal_db()
        try:
            return await connection.fetch(
                """SELECT b.request_id, b.csn, b.status, b.total_items, b.received_at,
                          count(*) FILTER (WHERE i.status IN ('renewed', 'rejected')) AS done,
                          count(*) FILTER (WHERE i.status = 'renewed') AS renewed,
                          count(*) FILTER (WHERE i.status = 'rejected') AS rejected
                   FROM renewal_batches AS b
                   LEFT JOIN renewal_batch_items AS i USING (request_id)
                   WHERE $1 OR b.status NOT IN ('completed')
                   GROUP BY b.request_id ORDER BY b.received_at DESC LIMIT $2""",
                show_all,
                limit,
            )
        finally:
            await connection.close()

    rows = [dict(row) for row in asyncio.run(load())]
    if as_json:
        _print_json(rows)
        return
    if not rows:
        console.print("no batch in progress" + ("" if show_all else " (--all shows finished ones)"))
        return
    table = Table("request", "CSN", "status", "progress", "done", "renewed", "refused", "received")
    for row in rows:
        total = max(row["total_items"], 1)
        table.add_row(
            row["request_id"],
            row["csn"],
            row["status"],
            ProgressBar(total=total, completed=row["done"], width=20),
            f"{row['done']}/{row['total_items']}",
            str(row["renewed"]),
            str(row["rejected"]),
            str(row["received_at"])[:19],
        )
    console.print(table)


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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
