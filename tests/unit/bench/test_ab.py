"""`make bench-ab` (issue 19: a change is kept only with an A/B of the bench): runs alternated in
pairs, each figure compared within its pair, a difference called only when every pair agrees."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench import ab
from bench.machine_speed import Speed


def _run(
    manual: float | None = None,
    automatic: float | None = None,
    cpu: float | None = None,
    engine_speed: float | None = None,
) -> ab.Run:
    summary: dict[str, Any] = {}
    if manual is not None:
        summary["renewals_per_s"] = manual
    if automatic is not None:
        summary["engine"] = {"auto_renewals_per_s": automatic}
    if cpu is not None:
        summary["cpu_ms_per_renewal_per_process"] = {"automatic": {ab.PRODUCT: cpu}}
    return ab.Run(summary, {"engine": Speed(engine_speed)} if engine_speed else {})


def _by_name(comparisons: list[ab.Comparison]) -> dict[str, ab.Comparison]:
    return {c.metric.name: c for c in comparisons}


def test_each_pair_runs_in_the_reverse_order_of_the_one_before() -> None:
    assert ab.run_order(3) == ["base", "head", "head", "base", "base", "head"]
    assert ab.run_order(1) == ["base", "head"]


def test_a_rate_higher_in_every_pair_is_called_for_head() -> None:
    base = [_run(automatic=900), _run(automatic=1000), _run(automatic=800)]
    head = [_run(automatic=950), _run(automatic=1010), _run(automatic=880)]
    automatic = _by_name(ab.compare(base, head))["automatic, renewals/s"]
    assert automatic.base_mean == pytest.approx(900)
    assert automatic.head_mean == pytest.approx(946.67, abs=0.01)
    assert automatic.ratios == pytest.approx([950 / 900, 1010 / 1000, 880 / 800])
    assert automatic.verdict.startswith("head better in every pair")
    assert "25%" in automatic.verdict  # 2 / 2^3: the chance of that with no change


def test_less_cpu_is_better() -> None:
    base = [_run(cpu=2.4), _run(cpu=2.2), _run(cpu=2.5)]
    head = [_run(cpu=2.3), _run(cpu=2.1), _run(cpu=2.2)]
    cpu = _by_name(ab.compare(base, head))["automatic, product CPU-ms"]
    assert cpu.head_better == 3
    assert cpu.verdict.startswith("head better in every pair")
    assert _by_name(ab.compare(head, base))["automatic, product CPU-ms"].verdict.startswith(
        "base better in every pair"
    )


def test_pairs_that_disagree_are_inconclusive_whatever_the_means() -> None:
    # head's mean is far ahead, on the strength of one pair: not a result
    base = [_run(manual=500), _run(manual=600), _run(manual=550)]
    head = [_run(manual=900), _run(manual=590), _run(manual=540)]
    manual = _by_name(ab.compare(base, head))["manual, renewals/s"]
    assert manual.head_mean > manual.base_mean
    assert manual.verdict == "inconclusive: head better in 1 of 3 pairs"


def test_a_figure_missing_from_any_run_is_left_out() -> None:
    base = [_run(manual=500, automatic=900), _run(manual=510)]
    head = [_run(manual=520, automatic=950), _run(manual=530, automatic=940)]
    names = set(_by_name(ab.compare(base, head)))
    assert "manual, renewals/s" in names
    assert "automatic, renewals/s" not in names


def test_the_figures_are_read_where_bench_run_prints_them() -> None:
    summary = _run(manual=612.5, automatic=948.0, cpu=2.27).summary
    by_name = {metric.name: ab.figure(summary, metric) for metric in ab.METRICS}
    assert by_name["manual, renewals/s"] == 612.5
    assert by_name["automatic, renewals/s"] == 948.0
    assert by_name["automatic, product CPU-ms"] == 2.27
    assert by_name["manual, product CPU-ms"] is None


def test_a_pair_whose_machine_moved_is_left_out_of_the_verdict() -> None:
    """An A/A of one commit (session 16): runs 1.73x apart in the pair whose first run had the
    machine at 204 workloads/s and the second at 371; the others within 10 %."""
    base = [
        _run(automatic=600, engine_speed=204),
        _run(automatic=1000, engine_speed=330),
        _run(automatic=900, engine_speed=328),
    ]
    head = [
        _run(automatic=1040, engine_speed=371),
        _run(automatic=930, engine_speed=356),
        _run(automatic=1010, engine_speed=339),
    ]
    automatic = _by_name(ab.compare(base, head))["automatic, renewals/s"]
    assert automatic.machine_moved == [True, False, False]
    assert automatic.counted == pytest.approx([0.93, 1010 / 900])
    assert automatic.verdict == (
        "inconclusive: 2 pair(s) counted, too few to call;"
        " 1 pair(s) left out, the machine's speed moved"
    )
    everything_moved = ab.compare(base[:1], head[:1])
    assert everything_moved[0].verdict.startswith("inconclusive: 0 pair(s) counted")


def test_two_pairs_that_agree_are_too_few_to_call() -> None:
    """With two, a change doing nothing looks like that half of the time."""
    base = [_run(automatic=900), _run(automatic=1000)]
    head = [_run(automatic=950), _run(automatic=1010)]
    automatic = _by_name(ab.compare(base, head))["automatic, renewals/s"]
    assert automatic.head_better == 2
    assert automatic.verdict == "inconclusive: 2 pair(s) counted, too few to call"


def test_the_machine_speed_is_read_from_the_runs_table() -> None:
    output = """Whole bench run: 37 s

This machine's speed before each timed phase (a fixed Python workload, the fastest of 8 bursts of 5 once the machine is quiet; 100 % = before the first phase)
  phase         workloads/s  speed
  ------------  -----------  -----
  e2e                 1,339  100%
  engine              336  99%
  engine at scale     301  90%

CPU-ms per renewal, per process
  renewal   0.38
"""
    assert ab.machine_speeds(output) == {
        "e2e": Speed(1339),
        "engine": Speed(336),
        "engine at scale": Speed(301),
    }
    assert ab.machine_speeds("no table here") == {}


def test_a_commit_git_does_not_know_is_refused_before_anything_runs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert len(ab.commit_of("HEAD")) == 40
    with pytest.raises(ab.AbError, match="no such commit"):
        ab.commit_of("no-such-revision-anywhere")
    ran: list[str] = []
    assert ab.main(["--base", "no-such-revision-anywhere"], progress=ran.append) == 2
    assert ran == []
    assert "no-such-revision-anywhere: no such commit here" in capsys.readouterr().err


def test_a_commit_runs_from_a_worktree_that_sees_this_checkouts_infrastructure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bench finds Kafka and PostgreSQL by the pid files under `.local/run`: a worktree
    without them measured neither (the first A/A: no PostgreSQL CPU, product CPU 1.51 ms
    against 2.63)."""
    local = tmp_path / "checkout-local"
    (local / "run").mkdir(parents=True)
    (local / "run" / "postgres.pid").write_text("4242\n")
    (local / "bench").mkdir()
    monkeypatch.setattr(ab, "AB_DIR", tmp_path / "ab")
    monkeypatch.setattr(ab, "_LOCAL", local)
    tree = ab._worktree(ab.commit_of("HEAD"), "base")
    try:
        assert (tree / "bench" / "run.py").is_file()
        assert (tree / ".local" / "run" / "postgres.pid").read_text() == "4242\n"
        assert not (tree / ".local" / "bench").exists()  # each tree's bench output its own
    finally:
        ab._remove_worktree(tree)
    assert not tree.exists()
    assert (local / "run" / "postgres.pid").read_text() == "4242\n"  # the link went, not ours
