"""Commands about subscriptions and customers: history, batches, show, trace, explain."""

from __future__ import annotations

import asyncio
import json
from datetime import date
from typing import Annotated, Any

import typer
from rich.progress_bar import ProgressBar
from rich.table import Table

from services.operations import explain as live_explain
from services.operations import lookup
from services.operations import trace as tracing
from services.operations.cli.app import app
from services.operations.cli.output import (
    JsonOption,
    console,
    fail,
    print_json,
    print_rows,
)
from services.operations.tables import fitting
from services.operations.tail import parse_since
from shared.clock import SystemClock
from shared.eligibility.cli import OUTPUT_FORMATS, OutputFormat, print_decision
from shared.eligibility.explain import explain as explain_decision
from shared.eligibility.parsing import InvalidRequestError, parse_explain_request


@app.command()
def history(subscription_id: str, as_json: JsonOption = False) -> None:
    """A subscription's renewal state and every change to it: who or what, when, why."""
    state, changes = asyncio.run(lookup.history(subscription_id))
    if state is None:
        console.print(f"[red]no subscription {subscription_id} is known to the renewal service")
        raise typer.Exit(1)
    rows = [
        {**dict(c), "detail": json.loads(c["detail"]), "actor": json.loads(c["actor"] or "null")}
        for c in changes
    ]
    if as_json:
        print_json({"subscription": dict(state), "history": rows})
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
    console.print(fitting(table, console))


@app.command()
def batches(
    show_all: Annotated[bool, typer.Option("--all", help="Finished batches too.")] = False,
    limit: int = 50,
    as_json: JsonOption = False,
) -> None:
    """Bulk renewal batches and their progress: items done out of the total."""

    rows = asyncio.run(lookup.batches(include_finished=show_all, limit=limit))
    if as_json:
        print_json(rows)
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
    console.print(fitting(table, console))


subscription_app = typer.Typer(help="Subscriptions.", no_args_is_help=True)
customer_app = typer.Typer(help="Customers (by CSN).", no_args_is_help=True)
app.add_typer(subscription_app, name="subscription")
app.add_typer(customer_app, name="customer")


@subscription_app.command("show")
def subscription_show(subscription_id: str, as_json: JsonOption = False) -> None:
    """What each service knows of a subscription: renewal state and dates, orders and payments,
    emails sent, open quotes, and its audit trail."""
    found = asyncio.run(lookup.subscription(subscription_id))
    if found is None:
        fail(f"no subscription {subscription_id} is known to the renewal service")
    if as_json:
        print_json(found)
        return
    _print_known(found)


@customer_app.command("show")
def customer_show(csn: str, as_json: JsonOption = False) -> None:
    """What each service knows of a customer: subscriptions, batches, orders and payments,
    emails, open quotes, and the audit trail of its subscriptions."""
    found = asyncio.run(lookup.customer(csn))
    if as_json:
        print_json(found)
        return
    if not (found["renewal"]["subscriptions"] or found["billing"]["orders"] or found["emails"]):
        console.print(f"[yellow]nothing is known of {csn}")
    _print_known(found)


def _print_known(found: dict[str, Any]) -> None:
    renewal = found["renewal"]
    for s in renewal["subscriptions"]:
        console.print(
            f"[bold]{s['subscription_id']}[/] (CSN {s['csn']}, revision {s['revision']}): "
            f"{s['state']}, renews on {s['renewal_date']}, {s['term']}, {s['seats']} seat(s), "
            f"auto-renew {'on' if s['auto_renew'] else 'off'}"
        )
    for clock in renewal["test_clocks"]:
        console.print(f"test clock of {clock['csn']}: today is {clock['today']}")
    print_rows("batches (renewal)", renewal.get("batches", []))
    print_rows("orders asked for (renewal)", renewal["renewal_orders"])
    print_rows(
        "orders (billing)",
        found["billing"]["orders"],
        ["order_id", "request_id", "status", "total", "currency", "created_at"],
    )
    print_rows("payments (billing)", found["billing"]["payments"])
    print_rows(
        "emails (notification)",
        found["emails"],
        ["kind", "status", "subject", "order_id", "attempts", "sent_at"],
    )
    quotes = found["quotes"]
    if not quotes["available"]:
        console.print(f"[dim]open quotes: {quotes['note']}")
    else:
        print_rows("open quotes (quote)", quotes["open"])
    history_rows = [
        {
            **h,
            "detail": ", ".join(f"{k}={v}" for k, v in h["detail"].items()),
            "actor": h["actor"]["user_id"] if h["actor"] else "the product",
        }
        for h in renewal["history"]
    ]
    print_rows(
        "audit trail",
        history_rows,
        ["at", "subscription_id", "change", "detail", "actor", "request_id"],
    )


@app.command(name="trace")
def trace_command(
    ident: Annotated[
        str,
        typer.Argument(
            metavar="ID", help="A request id, order id, subscription id or quote number."
        ),
    ],
    since: Annotated[str, typer.Option(help="How far back to look: 30m, 2h, 1d.")] = "24h",
    as_json: JsonOption = False,
) -> None:
    """The whole path of a renewal: every event of the traces that mention ID, in time order,
    with the service that made it, its topic, its ids and the time between steps."""
    try:
        window = parse_since(since)
    except ValueError as error:
        fail(str(error), 2)
    found = asyncio.run(tracing.trace(ident, since=window))
    if as_json:
        print_json(found.as_json())
        return
    if not found.steps:
        fail(f"no event of the last {since} mentions {ident}")
    console.print(trace_table(found))


def trace_table(found: tracing.Trace) -> Any:
    traces = ", ".join(found.trace_ids) or "none (the events carry no traceparent)"
    table = Table(
        "+start",
        "+prev",
        "event",
        "service",
        "topic",
        "ids",
        title=f"trace of {found.id} ({len(found.steps)} events; trace ids: {traces})",
        title_justify="left",
    )
    for step in found.steps:
        table.add_row(
            f"{step.since_start:.3f}s",
            f"{step.since_previous:.3f}s",
            "  " * step.depth + step.type,  # indented under what caused it
            step.service,
            step.topic,
            " ".join(f"{name}={_short_ids(value)}" for name, value in step.keys.items()),
        )
    return fitting(table, console)


def _short_ids(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(map(str, value[:3])) + (f",+{len(value) - 3}" if len(value) > 3 else "")
    return str(value)


@app.command(name="explain")
def explain_command(
    subscription_id: str,
    action: Annotated[
        str,
        typer.Option(
            help=f"What the customer wants to do: {', '.join(live_explain.LIVE_ACTIONS)}."
        ),
    ] = "manual_renewal",
    user: Annotated[
        str | None, typer.Option(help="Who asks (a user id); default: the subscription's buyer.")
    ] = None,
    csn: Annotated[
        str | None,
        typer.Option(help="The CSN the user acts for (a partner's); default: the subscription's."),
    ] = None,
    term: Annotated[str | None, typer.Option(help="change_terms: the next renewal's term.")] = None,
    seats: Annotated[
        int | None,
        typer.Option(help="change_terms: the next renewal's seats; add_seats: how many."),
    ] = None,
    target_date: Annotated[
        str | None, typer.Option(help="align_dates (or an alignment quote): YYYY-MM-DD.")
    ] = None,
    channel: Annotated[
        str, typer.Option(help="quote: self_service, partner or sales.")
    ] = "self_service",
    kind: Annotated[str, typer.Option(help="quote: renewal, new or alignment.")] = "renewal",
    output_format: Annotated[
        str, typer.Option("--format", help="json, or table (as `eligibility explain` prints).")
    ] = "json",
    show_request: Annotated[
        bool,
        typer.Option(
            "--request",
            help="Print the request built from the live state instead: `eligibility explain`"
            " reads it and answers the same.",
        ),
    ] = False,
) -> None:
    """Why can't this customer do that? The rules' decision on the subscription as the renewal
    service holds it now (dates, terms, catalog, open orders, the CSN's today), printed as
    `eligibility explain` prints it."""
    if action not in live_explain.LIVE_ACTIONS:
        fail(f"--action must be one of {', '.join(live_explain.LIVE_ACTIONS)}", 2)
    if output_format not in OUTPUT_FORMATS:
        fail(f"--format must be one of {', '.join(OUTPUT_FORMATS)}", 2)
    try:
        day = date.fromisoformat(target_date) if target_date is not None else None
    except ValueError:
        fail(f"--target-date must be a date such as 2026-04-15, not {target_date!r}", 2)
    asked = live_explain.Asked(
        action=action,  # checked against LIVE_ACTIONS above
        user_id=user,
        csn=csn,
        term=term,
        seats=seats,
        target_date=day,
        channel=channel,
        kind=kind,
    )

    async def load() -> dict[str, Any]:
        async with lookup.database_of("renewal") as db:
            return await live_explain.live_request(db, subscription_id, asked, SystemClock())

    try:
        request = asyncio.run(load())
    except live_explain.UnknownSubscriptionError as error:
        fail(str(error))
    if show_request:
        print_json(request)
        return
    try:
        parsed = parse_explain_request(request)
    except InvalidRequestError as error:
        fail(f"invalid request: {error}", 2)
    format_: OutputFormat = "table" if output_format == "table" else "json"
    print_decision(explain_decision(parsed), format_)
