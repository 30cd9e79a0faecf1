"""`make bench-ab`: an A/B of the bench between two trees, their runs alternated in pairs.

    uv run python -m bench.ab --base 8e04958                      # that commit vs this tree
    uv run python -m bench.ab --base main~1 --head main --pairs 4
    uv run python -m bench.ab --base HEAD -- --no-scale --no-ceilings   # bench.run's own options

Issue 19 keeps a change only with an A/B of the bench, and this machine's speed moves by 1.5-2x
within an hour for the same code: two runs one after the other compare the machine as much as
the code. So the runs alternate — base, head, then head, base, and so on (each pair's order the
reverse of the last, so that a machine slowing down or speeding up across the A/B does not
favour one side) — and every figure is compared within its pair. A pair whose two runs found
the machine at speeds more than 10 % apart (bench/machine_speed.py's probe before the phase the
figure comes from) compares the machine, not the code: it is shown (*) and left out. The summary
gives each side's mean and, for each pair, head against base; a difference is called only when
every pair left agrees on its direction (a sign test: with n pairs, a chance of 2 / 2^n that a
change doing nothing looks like that), otherwise the A/B is inconclusive and says so. An A/A of
one commit on this machine (session 16): automatic renewals/s 1.73, 0.93 and 1.12 pair by pair,
the first pair's runs at 204 and 371 workloads/s.

`--base` is a commit; `--head` a commit too, or by default this checkout as it is, uncommitted
changes included (an A/B before committing). A commit runs from a git worktree of its own under
`.local/bench/ab/` (removed at the end). Both sides run on this checkout's virtual environment
and secrets, against the same broker and PostgreSQL (bench.run makes its database afresh for
every run): an A/B of a dependency change needs more than this. The options after `--` go to
every `bench.run` (default `--engine-only --no-scale --warmup 2000`: about a minute a run); each
run's whole output is kept in `.local/bench/ab/<n>-<side>.log`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.machine_speed import TOLERANCE, Speed, comparable
from bench.procstat import REPO_ROOT
from bench.report import table
from shared.local_secrets import secrets_path

_LOCAL = REPO_ROOT / ".local"  # this checkout's infrastructure: pid files, secrets, sockets
AB_DIR = _LOCAL / "bench" / "ab"
DEFAULT_BENCH_ARGS = ["--engine-only", "--no-scale", "--warmup", "2000"]
WORKING_TREE = "working tree"
PRODUCT = "product (services, Kafka, PostgreSQL)"
POSTGRES = "postgresql: the services' backends"


@dataclass(frozen=True)
class Metric:
    name: str
    path: tuple[str, ...]  # where the figure is in bench.run's JSON line
    higher_is_better: bool
    phase: str  # the timed phase it comes from: the machine's speed probed before it


METRICS = (
    Metric("manual, renewals/s", ("renewals_per_s",), True, "e2e"),
    Metric("automatic, renewals/s", ("engine", "auto_renewals_per_s"), True, "engine"),
    Metric(
        "manual, product CPU-ms",
        ("cpu_ms_per_renewal_per_process", "manual", PRODUCT),
        False,
        "e2e",
    ),
    Metric(
        "automatic, product CPU-ms",
        ("cpu_ms_per_renewal_per_process", "automatic", PRODUCT),
        False,
        "engine",
    ),
    Metric(
        "automatic, PostgreSQL CPU-ms",
        ("cpu_ms_per_renewal_per_process", "automatic", POSTGRES),
        False,
        "engine",
    ),
)
# Fewer pairs than this cannot call a direction: with 2, a change doing nothing would look like
# one half of the time (the sign test's 2 / 2^n); with 3, a quarter.
MIN_PAIRS_TO_CALL = 3


class AbError(Exception):
    """Why the A/B cannot go on: a revision git does not know, a run without its figures."""


@dataclass(frozen=True)
class Run:
    """One bench.run: its JSON line, and the machine's speed before each timed phase
    (workloads/s, read from its table: bench.run's JSON gives them only relative)."""

    summary: dict[str, Any]
    speeds: dict[str, Speed]


def figure(summary: dict[str, Any], metric: Metric) -> float | None:
    """The metric in one run's JSON line; None when that run did not measure it."""
    value: Any = summary
    for key in metric.path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return float(value) if isinstance(value, int | float) else None


SPEED_TABLE = "This machine's speed before each timed phase"
SPEED_ROW = re.compile(r"^  (\S.*?)\s{2,}([\d,]+)\s+\d+%$")


def machine_speeds(output: str) -> dict[str, Speed]:
    """Each phase's probe (workloads/s) from bench.run's speed table, in its printed output."""
    speeds: dict[str, Speed] = {}
    lines = iter(output.splitlines())
    for line in lines:
        if line.startswith(SPEED_TABLE):
            break
    for line in lines:
        if not line.strip():
            break
        if match := SPEED_ROW.match(line):
            speeds[match.group(1).strip()] = Speed(float(match.group(2).replace(",", "")))
    return speeds


def run_order(pairs: int) -> list[str]:
    """base, head, head, base, base, head…: each pair in the reverse order of the one before."""
    order: list[str] = []
    for index in range(pairs):
        order += ["base", "head"] if index % 2 == 0 else ["head", "base"]
    return order


@dataclass(frozen=True)
class Comparison:
    metric: Metric
    base_mean: float
    head_mean: float
    ratios: list[float]  # head / base, pair by pair
    machine_moved: list[bool]  # pair by pair: the machine's speed differed between its two runs

    @property
    def counted(self) -> list[float]:
        """The ratios of the pairs that compare the code: the machine ran alike for both."""
        return [r for r, moved in zip(self.ratios, self.machine_moved, strict=True) if not moved]

    @property
    def head_better(self) -> int:
        """In how many of the counted pairs head did better."""
        if self.metric.higher_is_better:
            return sum(1 for ratio in self.counted if ratio > 1)
        return sum(1 for ratio in self.counted if ratio < 1)

    @property
    def verdict(self) -> str:
        pairs, better = len(self.counted), self.head_better
        moved = len(self.ratios) - pairs
        aside = f"; {moved} pair(s) left out, the machine's speed moved" if moved else ""
        if pairs < MIN_PAIRS_TO_CALL:
            return f"inconclusive: {pairs} pair(s) counted, too few to call{aside}"
        chance = 2 / 2**pairs
        if better == pairs:
            return f"head better in every pair (a chance of {chance:.0%} with no change){aside}"
        if better == 0 and all(ratio != 1 for ratio in self.counted):
            return f"base better in every pair (a chance of {chance:.0%} with no change){aside}"
        return f"inconclusive: head better in {better} of {pairs} pairs{aside}"


def _moved(base: Run, head: Run, phase: str) -> bool:
    """Whether the machine's speed before `phase` differed between the two runs as between two
    machines (bench/machine_speed.py); a run without the probe is taken as alike (an old tree's
    bench)."""
    return comparable(head.speeds.get(phase), base.speeds.get(phase)) is False


def compare(base: Sequence[Run], head: Sequence[Run]) -> list[Comparison]:
    """Each metric both sides measured in every pair (base[i] and head[i] are pair i)."""
    comparisons = []
    for metric in METRICS:
        pairs = [
            (figure(b.summary, metric), figure(h.summary, metric))
            for b, h in zip(base, head, strict=True)
        ]
        if not pairs or any(b is None or h is None or b == 0 for b, h in pairs):
            continue
        bases = [b for b, _ in pairs if b is not None]
        heads = [h for _, h in pairs if h is not None]
        comparisons.append(
            Comparison(
                metric,
                base_mean=sum(bases) / len(bases),
                head_mean=sum(heads) / len(heads),
                ratios=[h / b for b, h in zip(bases, heads, strict=True)],
                machine_moved=[_moved(b, h, metric.phase) for b, h in zip(base, head, strict=True)],
            )
        )
    return comparisons


def report(comparisons: Sequence[Comparison], labels: dict[str, str]) -> str:
    rows = [
        [
            c.metric.name,
            c.base_mean,
            c.head_mean,
            f"{_geometric_mean(c.ratios):.3f}",
            " ".join(
                f"{ratio:.2f}{'*' if moved else ''}"
                for ratio, moved in zip(c.ratios, c.machine_moved, strict=True)
            ),
            c.verdict,
        ]
        for c in comparisons
    ]
    return table(
        [
            "figure",
            f"base ({labels['base']})",
            f"head ({labels['head']})",
            "head/base",
            "pair by pair",
            "verdict",
        ],
        rows,
    )


def _geometric_mean(values: Sequence[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


def _git(*args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise AbError(f"git {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout.strip()


def commit_of(revision: str) -> str:
    """The commit a revision names; AbError when git knows none."""
    try:
        return _git("rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}")
    except AbError:
        raise AbError(f"{revision}: no such commit here") from None


def _worktree(commit: str, side: str) -> Path:
    """A worktree of `commit` that sees this checkout's infrastructure: its `.local` links to
    ours (the pid files the bench finds Kafka and PostgreSQL by, the secrets, the sockets), all
    but the bench's own output."""
    path = AB_DIR / "trees" / f"{side}-{commit}"  # one each: an A/A of one commit works too
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        _git("worktree", "add", "--detach", str(path), commit)
    (path / ".local").mkdir(exist_ok=True)
    for entry in _LOCAL.iterdir():
        link = path / ".local" / entry.name
        if entry.name != "bench" and not link.exists():
            link.symlink_to(entry)
    return path


def _remove_worktree(path: Path) -> None:
    """The worktree and its links, not what they link to."""
    _git("worktree", "remove", "--force", str(path))


def _run(tree: Path, bench_args: list[str], log: Path) -> Run:
    """One bench.run in `tree`: its JSON line (the last line of its output) and its probes."""
    env = {**os.environ, "RENEWALS_SECRETS_FILE": str(secrets_path())}
    with log.open("w") as out:
        subprocess.run(
            [sys.executable, "-m", "bench.run", *bench_args],
            cwd=tree,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
    output = log.read_text()
    lines = [line for line in output.splitlines() if line.startswith("{")]
    if not lines:
        raise AbError(f"a run printed no figures; its output: {log}")
    return Run(summary=json.loads(lines[-1]), speeds=machine_speeds(output))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ab",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--base", required=True, help="the commit to compare against")
    parser.add_argument("--head", help="a commit (default: this checkout, as it is)")
    parser.add_argument("--pairs", type=int, default=4, help="pairs of runs (4)")
    parser.add_argument("bench_args", nargs="*", help="bench.run's options, after --")
    args = parser.parse_args(argv)
    if args.pairs < 1:
        parser.error("--pairs: 1 or more")
    return args


def main(argv: list[str] | None = None, progress: Callable[[str], None] = print) -> int:
    args = parse_args(argv)
    bench_args = args.bench_args or DEFAULT_BENCH_ARGS
    try:
        base = commit_of(args.base)
        head = commit_of(args.head) if args.head else None
    except AbError as error:
        print(f"bench.ab: {error}", file=sys.stderr)
        return 2
    labels = {"base": base[:8], "head": head[:8] if head else WORKING_TREE}
    trees: dict[str, Path] = {}
    results: dict[str, list[Run]] = {"base": [], "head": []}
    AB_DIR.mkdir(parents=True, exist_ok=True)
    try:
        trees["base"] = _worktree(base, "base")
        trees["head"] = _worktree(head, "head") if head else REPO_ROOT
        order = run_order(args.pairs)
        for number, side in enumerate(order, start=1):
            progress(
                f"ab: run {number}/{len(order)}: {side} ({labels[side]}) {' '.join(bench_args)}"
            )
            run = _run(trees[side], bench_args, AB_DIR / f"{number}-{side}.log")
            results[side].append(run)
            shown = [
                f"{metric.name} {value:,.2f}"
                for metric in METRICS
                if (value := figure(run.summary, metric)) is not None
            ] + [
                f"machine {phase} {speed.per_second:,.0f} workloads/s"
                for phase, speed in run.speeds.items()
            ]
            progress(f"ab: run {number}/{len(order)}: {side}: {'; '.join(shown) or 'no figures'}")
    except AbError as error:
        print(f"bench.ab: {error}", file=sys.stderr)
        return 2
    finally:
        for tree in trees.values():
            if tree != REPO_ROOT:
                _remove_worktree(tree)
    comparisons = compare(results["base"], results["head"])
    print(f"\nA/B: {args.pairs} pairs of `bench.run {' '.join(bench_args)}`, alternated\n")
    print(report(comparisons, labels))
    print(
        f"  * the machine's speed (bench/machine_speed.py) differed by more than"
        f" {TOLERANCE:.0%} between the pair's two runs: left out of the verdict"
    )
    print(
        json.dumps(
            {
                "base": base,
                "head": head or WORKING_TREE,
                "bench_args": bench_args,
                "figures": {
                    c.metric.name: {
                        "base_mean": c.base_mean,
                        "head_mean": c.head_mean,
                        "ratios": c.ratios,
                        "machine_moved": c.machine_moved,
                        "verdict": c.verdict,
                    }
                    for c in comparisons
                },
            },
            separators=(",", ":"),
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
