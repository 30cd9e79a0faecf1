"""Issue 17 / issue 15 item 2: `IsolatingClaims` works one at a time the items its failed claim
took, as the claim named them (`took`): no loop writes a second query of its candidates. A
claim that failed before taking anything is raised to the loop."""

from __future__ import annotations

from typing import cast

import asyncpg
import pytest

from shared.messaging.parking import IsolatingClaims

BAD = "S-bad"


class Loop:
    """A loop's claim, in memory: `due` the items a claim takes; working `BAD` raises."""

    def __init__(self, due: list[str], *, names_them: bool = True) -> None:
        self.due = due
        self.names_them = names_them
        self.worked: list[str] = []
        self.parked: dict[str, str] = {}
        self.claims = IsolatingClaims(
            cast(asyncpg.Pool, None), "test", "test_loop", self.claim, set_aside=self.set_aside
        )

    async def claim(self, only: str | None = None) -> int:
        taken = [item for item in self.due if only in (None, item)]
        if self.names_them:
            self.claims.took(taken)
        if BAD in taken:
            raise ValueError("this item breaks the claim")  # rolled back: nothing worked
        self.worked += taken
        return len(taken)

    async def set_aside(self, item: str, reason: str) -> None:
        self.parked[item] = reason


async def test_a_failed_claims_items_are_those_it_took_each_worked_alone() -> None:
    loop = Loop(["S-1", BAD, "S-2"])

    assert await loop.claims.step() == 3

    assert loop.worked == ["S-1", "S-2"]
    assert loop.parked == {BAD: "ValueError: this item breaks the claim"}


async def test_a_whole_claim_that_works_parks_nothing() -> None:
    loop = Loop(["S-1", "S-2"])

    assert await loop.claims.step() == 2

    assert loop.worked == ["S-1", "S-2"]
    assert loop.parked == {}


async def test_a_claim_that_failed_before_taking_anything_is_raised_to_the_loop() -> None:
    """No item to blame (the claim's own query failed, say): the WorkLoop logs and backs off."""
    loop = Loop(["S-1", BAD], names_them=False)

    with pytest.raises(ValueError, match="breaks the claim"):
        await loop.claims.step()

    assert loop.parked == {}


async def test_what_an_earlier_claim_took_is_not_blamed_for_a_later_failure() -> None:
    """Each step starts with nothing taken: a failure before `took` names no stale item."""
    loop = Loop(["S-1"])
    assert await loop.claims.step() == 1
    loop.due, loop.names_them = [BAD], False

    with pytest.raises(ValueError):
        await loop.claims.step()

    assert loop.parked == {}
