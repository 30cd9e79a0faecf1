"""How the commands print: rich tables on the console, or JSON for scripts (`--json`)."""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from services.operations.tables import fitting

console = Console()

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


def jsonable(value: Any) -> Any:
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def print_json(document: Any) -> None:
    print(json.dumps(document, default=jsonable, indent=2))


def fail(message: str, code: int = 1) -> NoReturn:
    console.print(f"[red]{message}")
    raise typer.Exit(code)


def print_rows(title: str, rows: list[dict[str, Any]], columns: list[str] | None = None) -> None:
    if not rows:
        console.print(f"[dim]{title}: none")
        return
    columns = columns or list(rows[0])
    table = Table(*columns, title=title, title_justify="left")
    for row in rows:
        table.add_row(*(str(jsonable(row[c]) if row[c] is not None else "") for c in columns))
    console.print(fitting(table, console))
