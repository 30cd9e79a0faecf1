"""The bench's warm-up (issue 19, session 13): renewals end to end before the timed phases, so that
the first phase does not measure a broker's JIT warming up — not counted, but still checked."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from bench.run import good, parse_args


@pytest.mark.parametrize(
    ("argv", "warmup"),
    [
        ([], 4000),
        (["--quick"], 200),
        (["--engine-only"], 4000),  # the engine's phase is timed on the same broker
        (["--no-e2e", "--no-engine"], 0),  # nothing timed: nothing to warm up for
        (["--warmup", "0"], 0),
        (["--warmup", "500", "--quick"], 500),
    ],
)
def test_warmup_size_follows_what_is_timed(argv: list[str], warmup: int) -> None:
    assert parse_args(argv).warmup == warmup


def test_a_warmup_that_lost_a_renewal_makes_the_run_bad() -> None:
    incomplete = SimpleNamespace(complete=False, failures={})
    assert good({}, {}) is True  # the baseline this test departs from
    assert good({"warmup": incomplete}, {}) is False


def test_a_warmup_with_failures_makes_the_run_bad() -> None:
    failed = SimpleNamespace(complete=True, failures={"renewal.rejected": 1})
    assert good({"warmup": failed}, {}) is False
