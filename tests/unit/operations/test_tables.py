"""Issue 18, CLI tables that fit: in a narrow terminal every value still arrives whole (a block
per row), in a wide one the table is a table; the topics table of `renewals topics` as the case."""

from __future__ import annotations

import io

import pytest
from rich.console import Console
from rich.table import Table

from services.operations.cli.topics import topics_table
from services.operations.tables import fitting
from services.operations.topics import GroupLag, TopicStats

STATS = [
    TopicStats(
        topic="notification.events.dlq",
        partitions=6,
        end_offset=123456,
        per_second=12.5,
        groups=[
            GroupLag(group="notification.renewal.events.replay-operator", committed=123456, lag=0),
            GroupLag(group="billing.billing.commands", committed=123414, lag=42),
        ],
    )
]
VALUES = [
    "notification.events.dlq",
    "notification.renewal.events.replay-operator",
    "billing.billing.commands",
    "123456",
    "42",
]


def rendered(table: Table, width: int) -> str:
    console = Console(width=width, file=io.StringIO(), record=True, color_system=None)
    console.print(fitting(table, console))
    return console.export_text()


@pytest.mark.parametrize("width", [60, 80])
def test_in_a_narrow_terminal_no_value_is_cut(width: int) -> None:
    text = rendered(topics_table(STATS), width)
    for value in VALUES:
        assert value in text, f"{value!r} cut at {width} columns:\n{text}"
    assert "consumer group" in text  # each value says which column it is


def test_in_a_wide_terminal_it_stays_a_table() -> None:
    text = rendered(topics_table(STATS), 200)
    header = next(line for line in text.splitlines() if "topic" in line)
    for column in ("partitions", "end offset", "consumer group", "lag"):
        assert column in header
    for value in VALUES:
        assert value in text


def test_a_value_longer_than_the_terminal_folds_instead_of_vanishing() -> None:
    long_error = "x" * 150
    table = Table("ref", "error")
    table.add_row("renewal.commands.dlq:17", long_error)
    text = rendered(table, 80)
    assert "renewal.commands.dlq:17" in text
    assert text.count("x") == 150
