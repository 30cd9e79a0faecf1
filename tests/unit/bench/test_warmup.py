"""The bench's warm-up (issue 19, session 13): renewals end to end before the timed phases, so that
the first phase does not measure a broker's JIT warming up — not counted, but still checked."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from bench.e2e import KAFKA, E2EResult
from bench.run import good, parse_args, render
from bench.smtp import MailCheck


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


def _warmup_that_sent(mail: MailCheck) -> E2EResult:
    return E2EResult(
        subscriptions=10,
        complete=True,
        seconds=1.0,
        publish_seconds=0.1,
        emails_sent=10,
        smtp_received=mail.messages,
        latencies_ms=[100.0] * 10,
        services=[],
        infra_cpu={KAFKA: 0.005},
        stages=[],
        failures={},
        setup_seconds=0.0,
        idle_cpu={},
        mail=mail,
    )


def test_a_warmup_that_sent_an_email_twice_makes_the_run_bad() -> None:
    args = parse_args(["--no-ceilings", "--no-scale"])
    twice = MailCheck(messages=11, watched=10, by_kind={"order_confirmation": 11}, duplicates=1)
    once = MailCheck(messages=10, watched=10, by_kind={"order_confirmation": 10}, duplicates=0)

    good_run = render(args, {"warmup": _warmup_that_sent(once)}, 1.0)
    bad_run = render(args, {"warmup": _warmup_that_sent(twice)}, 1.0)

    assert good_run["emails_good"] is True
    assert good_run["warmup"]["kafka_cpu_ms_per_renewal"] == 0.5
    assert bad_run["emails_good"] is False
    assert good({"warmup": _warmup_that_sent(twice)}, bad_run) is False


@pytest.mark.parametrize(
    "argv",
    [
        ["--warmup", "-1"],
        ["--subscriptions", "-5"],
        ["--engine-csns", "0"],
        ["--timeout", "0"],
        ["--bulk-fallback-rate", "nan"],
        ["--scale", "ten"],
    ],
)
def test_a_count_or_a_duration_out_of_range_is_refused(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as refused:
        parse_args(argv)
    assert refused.value.code == 2
    assert f"argument {argv[0]}" in capsys.readouterr().err
