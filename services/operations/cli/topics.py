"""Commands about the topics: their offsets and lag, a live tail, and the dead letters."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.json import JSON as RichJSON
from rich.live import Live
from rich.table import Table

from services.operations.cli.app import app
from services.operations.cli.output import (
    JsonOption,
    console,
    fail,
    print_json,
)
from services.operations.dlq import (
    DeadLetter,
    DeadLetterFilter,
    dead_letter,
    dead_letters,
    parse_ref,
    replay,
)
from services.operations.kafka import Record, UnknownTopicError
from services.operations.tables import fitting
from services.operations.tail import EventFilter, parse_since, shown
from services.operations.tail import tail as tail_events
from services.operations.topics import GroupLag, TopicStats, topic_stats


def topics_table(stats: list[TopicStats]) -> Table:
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
            fail(str(error))

    if as_json:
        print_json([s.as_dict() for s in load()])
        return
    if not watch:
        console.print(fitting(topics_table(load()), console))
        return
    with Live(fitting(topics_table(load()), console), console=console, auto_refresh=False) as live:
        try:
            while True:
                time.sleep(interval)
                live.update(fitting(topics_table(load()), console), refresh=True)
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
        fail(str(error), 2)
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
        fail(str(error))
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
        fail(str(error))


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
        print_json([letter.as_dict() for letter in letters])
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
        fail(str(error))
    if as_json:
        print_json(letter.as_dict())
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
        fail("name the dead letters to replay, or --all (with filters)", 2)
    where = DeadLetterFilter(topic, csn, event_type, error_type, group)
    wanted = {_normal_ref(r) for r in refs or []}
    # Named letters: read only their DLQs.
    letters = _load_dead_letters(where, sorted({r.rsplit(":", 2)[0] for r in wanted}) or None)
    if wanted:
        letters = [letter for letter in letters if letter.ref in wanted]
        missing = wanted - {letter.ref for letter in letters}
        if missing:
            fail(f"no such dead letter (or filtered out): {', '.join(sorted(missing))}")
        truncated = [letter for letter in letters if letter.truncated]
        if truncated:  # named: refused, and nothing published
            fail("\n".join(letter.truncated_note() for letter in truncated))
    report = asyncio.run(replay(letters, dry_run=dry_run))
    if as_json:
        print_json(report.as_dict())
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
        fail(str(error), 2)
    return f"{topic}:{partition}:{offset}"
