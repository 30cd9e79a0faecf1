"""Tables for the operator's terminal that never cut a value: a table where it fits, one block
of `column: value` lines per row where it does not (an 80-column terminal, a narrow pane).

Rich shrinks the columns of a table wider than the terminal until identifiers such as topic
names, consumer groups or error types shrink to a few characters, or nothing. Ids and errors are
what an operator copies into the next command, so they must arrive whole.
"""

from __future__ import annotations

from rich.console import Console, Group, RenderableType
from rich.measure import Measurement
from rich.rule import Rule
from rich.table import Table


def fitting(table: Table, console: Console) -> RenderableType:
    """`table` itself when its natural width fits `console`; otherwise one block per row."""
    for column in table.columns:
        column.overflow = "fold"  # a value longer than the whole terminal wraps, never vanishes
    # Measured as if the terminal had no edge: the width the table wants, not what it would get.
    natural = Measurement.get(console, console.options.update_width(100_000), table).maximum
    if natural <= console.width:
        return table
    return as_records(table)


def as_records(table: Table) -> Group:
    """Each row of `table` as lines of `column  value` (empty cells left out), rows separated
    by a rule."""
    headers = [str(column.header) for column in table.columns]
    columns = [list(column.cells) for column in table.columns]
    blocks: list[RenderableType] = []
    if table.title:
        blocks.append(table.title)
    for index in range(table.row_count):
        record = Table.grid(padding=(0, 2))
        record.add_column(style="bold", no_wrap=True)
        record.add_column(overflow="fold")
        for header, cells in zip(headers, columns, strict=True):
            if cells[index] != "":  # a continuation row leaves the cells it shares empty
                record.add_row(header, cells[index])
        if index:
            blocks.append(Rule(style="dim"))
        blocks.append(record)
    return Group(*blocks)
