"""`renewals`: the operator's command line. The work is done in `services/operations/`; this
module only wires the commands.

    renewals topics [--watch]          every topic: partitions, end offsets, msg/s, lag per group
    renewals tail TOPIC                CloudEvents as they arrive (--csn, --type, --request-id)
    renewals dlq list|show|replay      dead letters with their errors; replay them, once
    renewals outbox list|retry|drop    outbox events the broker refused, parked with their error
    renewals parked list|retry         items a background loop set aside, with the reason
    renewals health                    each service's readiness, the broker, database, SMTP
    renewals subscription show ID      what every service knows of a subscription
    renewals customer show CSN         what every service knows of a customer
    renewals history SUBSCRIPTION_ID   a subscription's renewal state and its audit trail
    renewals trace ID                  one renewal's path across the services, step by step
    renewals explain SUBSCRIPTION_ID   why can't this customer do that? (--action), live
    renewals batches [--all]           bulk renewal batches with their progress
    renewals migrate [SERVICE...]      apply the services' database migrations

Every command that shows something takes `--json` for scripts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, NoReturn

import asyncpg
import typer
from rich.console import Console
from rich.json import JSON as RichJSON
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table

from services.operations import explain as live_explain
from services.operations import lookup, parked
from services.operations import trace as tracing
from services.operations.console import (
    TOKEN_ENV,
    ConsoleServer,
    TokenError,
    UnsafeBindError,
    read_token,
    token_from_environment,
)
from services.operations.dlq import (
    DeadLetter,
    DeadLetterFilter,
    dead_letter,
    dead_letters,
    parse_ref,
    replay,
)
from services.operations.health import check_all
from services.operations.kafka import Record, UnknownTopicError
from services.operations.tables import fitting
from services.operations.tail import EventFilter, parse_since, shown
from services.operations.tail import tail as tail_events
from services.operations.topics import GroupLag, TopicStats, topic_stats
from shared.clock import SystemClock
from shared.db.migrate import MIGRATION_SETS, migrate
from shared.db.pool import connect
from shared.db.settings import DatabaseSettings
from shared.eligibility.cli import OUTPUT_FORMATS, OutputFormat, print_decision
from shared.eligibility.explain import explain as explain_decision
from shared.eligibility.parsing import InvalidRequestError, parse_explain_request

app = typer.Typer(
    help="The operator's command line: topics, tail, dlq, outbox, parked, health, lookups,"
    " trace, batches, history, migrate; --json on every command that shows something.",
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
    console.print(fitting(table, console))


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


# ---- operations (services/operations/) ----------------------------------------------------


def _fail(message: str, code: int = 1) -> NoReturn:
    console.print(f"[red]{message}")
    raise typer.Exit(code)


def _topics_table(stats: list[TopicStats]) -> Table:
    table = Table("topic", "partitions", "end offset", "msg/s (1 min)", "consumer group", "lag")
    for topic in stats:
        groups: list[GroupLag | None] = [*topic.groups] or [None]
        for i, group in enumerate(groups):
            lag = "" if group is None else str(group.lag)
            style = "bold red" if group is not None and group.lag > 0 else ""
            table.add_row(
                topic.topic if i == 0 else "",
                str(topic.partitions) if i == 0 else "",
                str(topic.end_offset) if i == 0 else "",
                f"{topic.per_second:g}" if i == 0 else "",
                "—" if group is None else group.group,
                f"[{style}]{lag}[/]" if style else lag,
            )
    return table


@app.command()
def topics(
    names: Annotated[
        list[str] | None, typer.Argument(help="Topics to show. Default: every contract topic.")
    ] = None,
    watch: Annotated[bool, typer.Option("--watch", help="Refresh the table live.")] = False,
    interval: Annotated[float, typer.Option(help="Seconds between refreshes.")] = 2.0,
    as_json: JsonOption = False,
) -> None:
    """Every topic: partitions, end offsets, messages per second over the last minute, and the
    lag of each consumer group that reads it."""

    def load() -> list[TopicStats]:
        try:
            return asyncio.run(topic_stats(names))
        except UnknownTopicError as error:
            _fail(str(error))

    if as_json:
        _print_json([s.as_dict() for s in load()])
        return
    if not watch:
        console.print(fitting(_topics_table(load()), console))
        return
    with Live(fitting(_topics_table(load()), console), console=console, auto_refresh=False) as live:
        try:
            while True:
                time.sleep(interval)
                live.update(fitting(_topics_table(load()), console), refresh=True)
        except KeyboardInterrupt:
            pass


@app.command()
def tail(
    topic: Annotated[
        str, typer.Argument(help="A topic, e.g. renewal.events or billing.events.dlq")
    ],
    csn: Annotated[str | None, typer.Option(help="Only this customer's events.")] = None,
    event_type: Annotated[str | None, typer.Option("--type", help="Only this event type.")] = None,
    request_id: Annotated[str | None, typer.Option(help="Only events of this request.")] = None,
    from_beginning: Annotated[
        bool, typer.Option("--from-beginning", help="Start at the oldest message kept.")
    ] = False,
    since: Annotated[
        str | None, typer.Option(help="Start this long ago: 30s, 10m, 2h, 1d.")
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow/--no-follow", help="Keep waiting for new events.")
    ] = True,
    count: Annotated[int | None, typer.Option(help="Stop after this many matching events.")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON document per line instead.")
    ] = False,
) -> None:
    """CloudEvents of a topic pretty-printed as they arrive (Ctrl-C stops)."""
    try:
        start_at = parse_since(since) if since else None
    except ValueError as error:
        _fail(str(error), 2)
    where = EventFilter(csn=csn, type=event_type, request_id=request_id)

    async def run() -> None:
        seen = 0
        async for record in tail_events(
            topic, where=where, from_beginning=from_beginning, since=start_at, follow=follow
        ):
            if as_json:
                print(json.dumps(shown(record)), flush=True)
            else:
                _print_record(record)
            seen += 1
            if count is not None and seen >= count:
                return

    try:
        asyncio.run(run())
    except UnknownTopicError as error:
        _fail(str(error))
    except KeyboardInterrupt:
        pass


def _print_record(record: Record) -> None:
    document = shown(record)
    event = document["event"]
    when = datetime.fromtimestamp(record.timestamp_ms / 1000, UTC).strftime("%H:%M:%S.%f")[:-3]
    kind = event.get("type", "?") if isinstance(event, dict) else "(not a CloudEvent)"
    console.print(
        f"[dim]{when}[/] [cyan]{record.topic}[/]:{record.partition}:{record.offset}"
        f"  [bold]{kind}[/]  key={document['key']}"
        + (f"  id={event.get('id')}" if isinstance(event, dict) else "")
    )
    errors = {k: v for k, v in record.headers.items() if k.startswith("x-")}
    if errors:
        console.print("  " + "  ".join(f"[yellow]{k}[/]={v}" for k, v in errors.items()))
    if isinstance(event, dict):
        console.print(RichJSON(json.dumps(event.get("data", event)), indent=2))
    else:
        console.print(f"  [red]{event[:500]!r}")


dlq_app = typer.Typer(
    help="Dead letters: list them with their errors, show one, replay them once.",
    no_args_is_help=True,
)
app.add_typer(dlq_app, name="dlq")

DlqTopic = Annotated[
    str | None, typer.Option("--topic", help="One topic (the original or its .dlq).")
]
DlqCsn = Annotated[str | None, typer.Option(help="Only this customer's dead letters.")]
DlqType = Annotated[str | None, typer.Option("--type", help="Only this event type.")]
DlqErrorType = Annotated[str | None, typer.Option(help="Only this error type (x-dlq-error-type).")]
DlqGroup = Annotated[str | None, typer.Option(help="Only those this consumer group gave up.")]


def _load_dead_letters(
    where: DeadLetterFilter, topics: list[str] | None = None
) -> list[DeadLetter]:
    try:
        return asyncio.run(dead_letters(where, topics=topics))
    except UnknownTopicError as error:
        _fail(str(error))


@dlq_app.command("list")
def dlq_list(
    topic: DlqTopic = None,
    csn: DlqCsn = None,
    event_type: DlqType = None,
    error_type: DlqErrorType = None,
    group: DlqGroup = None,
    as_json: JsonOption = False,
) -> None:
    """Every dead letter of every topic, with its error and whether it was replayed."""
    where = DeadLetterFilter(topic, csn, event_type, error_type, group)
    letters = _load_dead_letters(where)
    if as_json:
        _print_json([letter.as_dict() for letter in letters])
        return
    if not letters:
        console.print("no dead letter")
        return
    table = Table("ref", "group", "CSN", "type", "error", "failed at", "replayed as")
    for column in table.columns[:3]:
        column.no_wrap = True
    for letter in letters:
        table.add_row(
            letter.ref,
            letter.consumer_group,
            letter.csn or "",
            letter.event_type or "",
            f"[yellow]{letter.error_type}[/]: {letter.error[:120]}",
            letter.failed_at[:19],
            letter.replayed_as or "",
        )
    console.print(fitting(table, console))


@dlq_app.command("show")
def dlq_show(
    ref: Annotated[str, typer.Argument(help="<topic>.dlq:<offset> as `dlq list` names it.")],
    as_json: JsonOption = False,
) -> None:
    """One dead letter in full: every header, the error, the original message."""
    try:
        letter = asyncio.run(dead_letter(ref))
    except (LookupError, ValueError) as error:
        _fail(str(error))
    if as_json:
        _print_json(letter.as_dict())
        return
    console.print(
        f"[bold]{letter.ref}[/] from {letter.original_topic}"
        f"[{letter.original_partition}] offset {letter.original_offset}"
    )
    table = Table("header", "value", show_header=False)
    for name, value in letter.headers.items():
        table.add_row(name, value)
    console.print(fitting(table, console))
    console.print(f"key: {letter.key}")
    if letter.replayed_as:
        console.print(f"[green]replayed as {letter.replayed_as}")
    try:
        console.print(RichJSON(letter.value))
    except ValueError:
        console.print(repr(letter.raw_value))


@dlq_app.command("replay")
def dlq_replay(
    refs: Annotated[
        list[str] | None, typer.Argument(help="Dead letters to replay (as `dlq list` names them).")
    ] = None,
    replay_all: Annotated[
        bool, typer.Option("--all", help="Every dead letter matching the filters.")
    ] = False,
    topic: DlqTopic = None,
    csn: DlqCsn = None,
    event_type: DlqType = None,
    error_type: DlqErrorType = None,
    group: DlqGroup = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would be replayed; publish nothing.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Republish dead letters to their original topic with their original key and bytes, once:
    one already replayed is left out (the replay carries `x-replayed-from`). A truncated one
    (`x-dlq-truncated`) is refused when named and skipped by --all: fetch its original from the
    topic, partition and offset it names."""
    if not refs and not replay_all:
        _fail("name the dead letters to replay, or --all (with filters)", 2)
    where = DeadLetterFilter(topic, csn, event_type, error_type, group)
    wanted = {_normal_ref(r) for r in refs or []}
    # Named letters: read only their DLQs.
    letters = _load_dead_letters(where, sorted({r.rsplit(":", 2)[0] for r in wanted}) or None)
    if wanted:
        letters = [letter for letter in letters if letter.ref in wanted]
        missing = wanted - {letter.ref for letter in letters}
        if missing:
            _fail(f"no such dead letter (or filtered out): {', '.join(sorted(missing))}")
        truncated = [letter for letter in letters if letter.truncated]
        if truncated:  # named: refused, and nothing published
            _fail("\n".join(letter.truncated_note() for letter in truncated))
    report = asyncio.run(replay(letters, dry_run=dry_run))
    if as_json:
        _print_json(report.as_dict())
        return
    verb = "would replay" if dry_run else "replayed"
    for letter in report.replayed:
        landed = f" as {letter.replayed_as}" if letter.replayed_as else ""
        console.print(f"{verb} {letter.ref} → {letter.original_topic}{landed} (key {letter.key})")
    for letter in report.already_replayed:
        console.print(f"[dim]already replayed {letter.ref} as {letter.replayed_as}: left out")
    for letter in report.truncated:
        console.print(f"[yellow]skipped: {letter.truncated_note()}")
    if not report.replayed and not report.already_replayed and not report.truncated:
        console.print("nothing to replay")


def _normal_ref(ref: str) -> str:
    try:
        topic, partition, offset = parse_ref(ref)
    except ValueError as error:
        _fail(str(error), 2)
    return f"{topic}:{partition}:{offset}"


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
            _fail("--service takes NAME=HOST:PORT", 2)
    try:
        checks = asyncio.run(check_all(services, smtp_at=smtp))
    except ValueError as error:  # a malformed RENEWALS_HEALTH_SERVICES
        _fail(str(error), 2)
    if as_json:
        _print_json([c.as_dict() for c in checks])
    else:
        table = Table("component", "state", "detail")
        for check in checks:
            state = "[green]ok" if check.ok else "[red]DOWN"
            table.add_row(check.component, state, check.detail)
        console.print(fitting(table, console))
    if not all(c.ok for c in checks):
        raise typer.Exit(1)


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
        _fail(str(error), 2)
    if as_json:
        _print_json([event.as_dict() for event in events])
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
        _fail(str(error))
    console.print(f"[green]{ref} is back in the outbox as id {new_id}")


@outbox_app.command("drop")
def outbox_drop(ref: ParkedRef) -> None:
    """Delete a parked event for good: nobody downstream will ever hear of it."""
    try:
        asyncio.run(parked.drop_event(ref))
    except (LookupError, ValueError) as error:
        _fail(str(error))
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
        _fail(str(error), 2)
    if as_json:
        _print_json([item.as_dict() for item in items])
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
        _fail(str(error))
    console.print(f"[green]{item} will be claimed again by {loop}")


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
        _fail(f"no subscription {subscription_id} is known to the renewal service")
    if as_json:
        _print_json(found)
        return
    _print_known(found)


@customer_app.command("show")
def customer_show(csn: str, as_json: JsonOption = False) -> None:
    """What each service knows of a customer: subscriptions, batches, orders and payments,
    emails, open quotes, and the audit trail of its subscriptions."""
    found = asyncio.run(lookup.customer(csn))
    if as_json:
        _print_json(found)
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
    _print_rows("batches (renewal)", renewal.get("batches", []))
    _print_rows("orders asked for (renewal)", renewal["renewal_orders"])
    _print_rows(
        "orders (billing)",
        found["billing"]["orders"],
        ["order_id", "request_id", "status", "total", "currency", "created_at"],
    )
    _print_rows("payments (billing)", found["billing"]["payments"])
    _print_rows(
        "emails (notification)",
        found["emails"],
        ["kind", "status", "subject", "order_id", "attempts", "sent_at"],
    )
    quotes = found["quotes"]
    if not quotes["available"]:
        console.print(f"[dim]open quotes: {quotes['note']}")
    else:
        _print_rows("open quotes (quote)", quotes["open"])
    history_rows = [
        {
            **h,
            "detail": ", ".join(f"{k}={v}" for k, v in h["detail"].items()),
            "actor": h["actor"]["user_id"] if h["actor"] else "the product",
        }
        for h in renewal["history"]
    ]
    _print_rows(
        "audit trail",
        history_rows,
        ["at", "subscription_id", "change", "detail", "actor", "request_id"],
    )


def _print_rows(title: str, rows: list[dict[str, Any]], columns: list[str] | None = None) -> None:
    if not rows:
        console.print(f"[dim]{title}: none")
        return
    columns = columns or list(rows[0])
    table = Table(*columns, title=title, title_justify="left")
    for row in rows:
        table.add_row(*(str(_jsonable(row[c]) if row[c] is not None else "") for c in columns))
    console.print(fitting(table, console))


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
        _fail(str(error), 2)
    found = asyncio.run(tracing.trace(ident, since=window))
    if as_json:
        _print_json(found.as_json())
        return
    if not found.steps:
        _fail(f"no event of the last {since} mentions {ident}")
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
        _fail(f"--action must be one of {', '.join(live_explain.LIVE_ACTIONS)}", 2)
    if output_format not in OUTPUT_FORMATS:
        _fail(f"--format must be one of {', '.join(OUTPUT_FORMATS)}", 2)
    try:
        day = date.fromisoformat(target_date) if target_date is not None else None
    except ValueError:
        _fail(f"--target-date must be a date such as 2026-04-15, not {target_date!r}", 2)
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
        _fail(str(error))
    if show_request:
        _print_json(request)
        return
    try:
        parsed = parse_explain_request(request)
    except InvalidRequestError as error:
        _fail(f"invalid request: {error}", 2)
    format_: OutputFormat = "table" if output_format == "table" else "json"
    print_decision(explain_decision(parsed), format_)


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
        _fail(
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
        _fail(str(error), 2)

    async def serve() -> None:
        try:
            await server.start()
        except OSError as error:
            _fail(f"cannot listen on {host}:{port}: {error.strerror or error}", 2)
        console.print(f"console on {server.url}/" + (" (token required)" if secret else ""))
        await server.serve_forever()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


def main() -> None:
    app()


if __name__ == "__main__":
    main()
