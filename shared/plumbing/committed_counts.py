"""Counts of what a transaction did, made once it commits.

A handler counts what it decides (a refused command, a refused order) inside its transaction;
when that transaction rolls back and its work is done again — the consumer handling a failed
batch's messages one by one, the bulk worker working a failed claim's batches one at a time —
the count would be made twice for one thing. Inside `counted_on_commit()` (around the
transaction) a count waits for the block to end without an error; outside one (a handler
called directly) it is made at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import partial
from typing import Protocol


class Incrementable(Protocol):
    def inc(self, amount: float = 1) -> None: ...


_pending: ContextVar[list[Callable[[], None]] | None] = ContextVar(
    "counts_waiting_for_commit", default=None
)


def count_on_commit(counter: Incrementable, amount: float = 1) -> None:
    """`counter.inc(amount)` once the enclosing transaction commits (at once outside one)."""
    pending = _pending.get()
    if pending is None:
        counter.inc(amount)
    else:
        pending.append(partial(counter.inc, amount))


@contextmanager
def counted_on_commit() -> Iterator[None]:
    """Around a transaction (`async with connection.transaction()` inside): the counts made in
    it are made when the block ends normally, after the commit, and dropped with an error."""
    pending: list[Callable[[], None]] = []
    token = _pending.set(pending)
    try:
        yield
    finally:
        _pending.reset(token)
    for count in pending:
        count()
