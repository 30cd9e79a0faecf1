"""One bad item never stops the others: a loop's claim that fails is worked item by item, and
an item that fails alone is parked (`parked_items`) with its reason, counted and logged.

A step built with `IsolatingClaims` first works its claim whole, in one transaction (the fast
path). When that raises for a reason that is not transient, it works the claim's items one at
a time, each in its own transaction; an item that still raises is set aside and not claimed
again until an operator deletes its `parked_items` row. A transient error (the database gone,
a deadlock, a serialization failure) parks nothing: it is raised, and the `WorkLoop` backs off
and tries the whole claim again.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

import asyncpg

from shared.db.errors import is_transient
from shared.db.types import DbConnection
from shared.plumbing.metrics import ITEMS_PARKED

log = logging.getLogger(__name__)

REASON_LENGTH = 2000


def reason_of(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:REASON_LENGTH]


async def park_item(
    connection: asyncpg.Pool | DbConnection, *, loop: str, item: str, reason: str
) -> None:
    await connection.execute(
        """INSERT INTO parked_items (loop, item, reason) VALUES ($1, $2, $3)
           ON CONFLICT (loop, item) DO UPDATE SET reason = EXCLUDED.reason, parked_at = now()""",
        loop,
        item,
        reason,
    )


def not_parked(loop: str, item_column: str) -> str:
    """The SQL condition a loop's claim adds: its item is not parked."""
    return (
        f"NOT EXISTS (SELECT 1 FROM parked_items AS parked WHERE parked.loop = '{loop}'"
        f" AND parked.item = {item_column})"
    )


Claim = Callable[[str | None], Awaitable[int]]
SetAside = Callable[[str, str], Awaitable[None]]


@dataclass
class IsolatingClaims:
    """A loop's step: `claim(None)` works a whole claim and returns how many items it took,
    naming them with `took` as soon as it holds them; `claim(item)` works that item alone;
    `set_aside(item, reason)` parks one (default: a `parked_items` row)."""

    pool: asyncpg.Pool
    service: str
    loop: str
    claim: Claim
    set_aside: SetAside | None = None
    # The items of the claim being worked, as the claim named them (`took`).
    _taken: list[str] = field(default_factory=list, init=False, repr=False)

    def took(self, items: Iterable[str]) -> None:
        """The claim holds these items: should it fail, they are worked one at a time."""
        self._taken = list(items)

    async def step(self) -> int:
        self._taken = []
        try:
            return await self.claim(None)
        except Exception as error:
            if is_transient(error):
                raise
            items = self._taken
            if not items:
                raise  # it failed before taking anything: no item to blame, the loop backs off
            log.warning(
                "a claim failed; working its items one at a time",
                extra={"loop": self.loop, "error": reason_of(error), "items": len(items)},
            )
        for item in items:
            try:
                await self.claim(item)
            except Exception as error:
                if is_transient(error):
                    raise
                await self._park(item, error)
        return len(items)

    async def _park(self, item: str, error: Exception) -> None:
        reason = reason_of(error)
        if self.set_aside is not None:
            await self.set_aside(item, reason)
        else:
            await park_item(self.pool, loop=self.loop, item=item, reason=reason)
        ITEMS_PARKED.labels(self.service, self.loop).inc()
        log.error(
            "item parked: it is not claimed again until an operator retries it",
            extra={"loop": self.loop, "item": item, "reason": reason},
            exc_info=error,
        )
