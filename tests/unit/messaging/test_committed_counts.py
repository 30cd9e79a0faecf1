"""A count made inside a transaction's `counted_on_commit()` waits for it to end without an
error (shared/plumbing/committed_counts.py); outside one it is made at once."""

from __future__ import annotations

import pytest

from shared.plumbing.committed_counts import count_on_commit, counted_on_commit


class Tally:
    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1) -> None:
        self.value += amount


def test_a_count_outside_a_transaction_is_made_at_once() -> None:
    tally = Tally()
    count_on_commit(tally)
    assert tally.value == 1


def test_a_count_waits_for_its_transaction_and_is_made_once_it_ends() -> None:
    tally = Tally()
    with counted_on_commit():
        count_on_commit(tally, 2)
        assert tally.value == 0  # not committed yet
    assert tally.value == 2


def test_a_count_of_a_transaction_that_fails_is_dropped() -> None:
    tally = Tally()
    with pytest.raises(RuntimeError), counted_on_commit():
        count_on_commit(tally)
        raise RuntimeError("rolled back")
    with counted_on_commit():  # done again, alone: counted this time, once
        count_on_commit(tally)
    assert tally.value == 1
