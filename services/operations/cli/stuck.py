"""What the product set aside: outbox events the broker refused, items a loop parked."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.table import Table

from services.operations import parked
from services.operations.cli.app import app
from services.operations.cli.output import (
    JsonOption,
    console,
    fail,
    print_json,
)

outbox_app = typer.Typer(
    help="Outbox events the broker refused (too large, unknown topic), parked with their error:"
    " list them, put one back in the outbox, or drop it.",
    no_args_is_help=True,
)
app.add_typer(outbox_app, name="outbox")
ServiceOption = Annotated[
    str | None, typer.Option("--service", help="One service (renewal, billing, quote, ...).")
]
ParkedRef = Annotated[str, typer.Argument(help="<service>:<id> as `outbox list` names it.")]


@outbox_app.command("list")
def outbox_list(service: ServiceOption = None, as_json: JsonOption = False) -> None:
    """Every parked outbox event of every service, with the broker's error."""
    try:
        events = asyncio.run(parked.parked_events(service))
    except ValueError as error:
        fail(str(error), 2)
    if as_json:
        print_json([event.as_dict() for event in events])
        return
    if not events:
        console.print("no parked outbox event")
        return
    table = Table("ref", "topic", "key", "bytes", "error", "parked at")
    table.columns[0].no_wrap = True
    for event in events:
        table.add_row(
            event.ref,
            event.topic,
            event.key or "",
            str(event.size),
            f"[yellow]{event.error[:160]}",
            str(event.parked_at)[:19],
        )
    console.print(table)


@outbox_app.command("retry")
def outbox_retry(ref: ParkedRef) -> None:
    """Put a parked event back at the end of its service's outbox: the relay publishes it (and
    parks it again if the broker still refuses it)."""
    try:
        new_id = asyncio.run(parked.retry_event(ref))
    except (LookupError, ValueError) as error:
        fail(str(error))
    console.print(f"[green]{ref} is back in the outbox as id {new_id}")


@outbox_app.command("drop")
def outbox_drop(ref: ParkedRef) -> None:
    """Delete a parked event for good: nobody downstream will ever hear of it."""
    try:
        asyncio.run(parked.drop_event(ref))
    except (LookupError, ValueError) as error:
        fail(str(error))
    console.print(f"[green]{ref} dropped")


parked_app = typer.Typer(
    help="Items a background loop (due-date engine, reminders, automatic quotes, quote expiry,"
    " bulk worker) set aside because handling them raised: list them, let one be tried again.",
    no_args_is_help=True,
)
app.add_typer(parked_app, name="parked")


@parked_app.command("list")
def parked_list(service: ServiceOption = None, as_json: JsonOption = False) -> None:
    """Every parked item of every service, with the reason."""
    try:
        items = asyncio.run(parked.parked_items(service))
    except ValueError as error:
        fail(str(error), 2)
    if as_json:
        print_json([item.as_dict() for item in items])
        return
    if not items:
        console.print("no parked item")
        return
    table = Table("service", "loop", "item", "reason", "parked at")
    for item in items:
        table.add_row(
            item.service,
            item.loop,
            item.item,
            f"[yellow]{item.reason[:160]}",
            str(item.parked_at)[:19],
        )
    console.print(table)


@parked_app.command("retry")
def parked_retry(
    service: Annotated[str, typer.Argument(help="The service whose loop parked it.")],
    loop: Annotated[str, typer.Argument(help="The loop, as `parked list` names it.")],
    item: Annotated[str, typer.Argument(help="The item, as `parked list` names it.")],
) -> None:
    """Let the loop claim the item again (fix its cause first, or it is parked again)."""
    try:
        asyncio.run(parked.retry_item(service, loop, item))
    except (LookupError, ValueError) as error:
        fail(str(error))
    console.print(f"[green]{item} will be claimed again by {loop}")
