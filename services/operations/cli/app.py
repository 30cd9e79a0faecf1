"""The `renewals` Typer application every command group registers on."""

import typer

app = typer.Typer(
    help="The operator's command line: topics, tail, dlq, outbox, parked, health, lookups,"
    " trace, batches, history, explain, migrate, console; --json on every command that shows"
    " something.",
    no_args_is_help=True,
    add_completion=False,
)
