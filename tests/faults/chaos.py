"""The faults: service processes killed at their fault points and at random moments, the broker
and PostgreSQL restarted, one broker of a three-broker cluster killed; each recorded with when
it happened and when its target was back."""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from deploy.local.launcher import REPO_ROOT, SERVICES, ServiceProcess
from tests.faults.points import FAULT_POINTS, points_of
from tests.support.smtp import free_port

INFRA = REPO_ROOT / "deploy" / "local" / "infra.sh"
# The share of the load during which each service is killed once at random: the processes that
# stored the subscriptions run unarmed, and their first restart arms their fault points, whose
# slots come after this (a point armed at the first start would fire during the setup).
ARMING_KILLS_UNTIL = 0.25
POINTS_FROM, POINTS_UNTIL = 0.35, 0.85
POINT_REACHED = "fault point reached"
Progress = Callable[[str], None]


@dataclass
class Fault:
    kind: (
        str  # fault point | random kill | broker restart | postgres restart | ... | unexpected exit
    )
    target: str  # a service, "kafka", "postgres" or "broker N"
    detail: str
    at: float  # monotonic: injected, or the death noticed
    back: float | None = None  # monotonic: the target ready again
    wall: float = field(default_factory=time.time)  # `at` on the wall clock (mail timestamps)


@dataclass
class Fleet:
    """The five service processes, each watched by a supervisor of its own that restarts it
    whenever it dies (so that two deaths at once cost one start, not two in a row).

    Fault points are spread over the load: each has a slot (a time from which it may fire); a
    process started after they are planned arms the points it has not reached yet, each from
    its slot on (RENEWALS_FAULTS_AFTER), not at its first batch."""

    env: dict[str, str]
    log_dir: Path
    progress: Progress
    started: float
    services: dict[str, ServiceProcess] = field(default_factory=dict)
    pending: dict[str, list[str]] = field(default_factory=dict)
    slots: dict[tuple[str, str], float] = field(default_factory=dict)  # monotonic
    reached: dict[tuple[str, str], float] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # a fault not injected, a start given up
    recover_seconds: float = 180.0
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    _log_offsets: dict[str, int] = field(default_factory=dict)
    _supervisors: list[asyncio.Task[None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for spec in SERVICES:
            self.services[spec.name] = ServiceProcess(
                spec, env=self.env, log_dir=self.log_dir, http_port=free_port()
            )
            STARTED.append(self.services[spec.name])
            self.pending[spec.name] = points_of(spec.name)
            self._locks[spec.name] = asyncio.Lock()

    def plan_points(self, rng: random.Random, first: float, last: float) -> None:
        """One slot per fault point between the monotonic times `first` and `last`, in a random
        order across the services (never all of them down at once)."""
        points = [(name, point) for name, points in self.pending.items() for point in points]
        rng.shuffle(points)
        span = max(0.0, last - first)
        for n, key in enumerate(points):
            self.slots[key] = first + span * (n + 0.5) / max(1, len(points))

    def _start(self, name: str) -> None:
        service = self.services[name]
        self._log_offsets[name] = (
            service.log_path.stat().st_size if service.log_path.exists() else 0
        )
        armed = [p for p in self.pending[name] if (name, p) in self.slots]
        now = time.monotonic()
        after = {p: round(max(0.0, self.slots[(name, p)] - now), 1) for p in armed}
        service.start(
            {"RENEWALS_FAULTS": json.dumps(armed), "RENEWALS_FAULTS_AFTER": json.dumps(after)}
        )

    async def start_all(self) -> None:
        for name in self.services:
            self._start(name)
        for name, service in self.services.items():
            try:
                await asyncio.to_thread(service.wait_ready, 90)
            except (RuntimeError, TimeoutError):
                async with self._locks[name]:
                    if service.process is not None and service.process.poll() is not None:
                        fault = self._noticed_death(name, time.monotonic())
                        fault.back = await self._bring_up(name)
                    else:
                        raise
        self._supervisors = [
            asyncio.create_task(self._supervise(name), name=f"supervise {name}")
            for name in self.services
        ]

    def _fired_point(self, name: str) -> str | None:
        """The fault point named by the last 'fault point reached' line of this process's log."""
        service = self.services[name]
        try:
            with service.log_path.open("rb") as log:
                log.seek(self._log_offsets.get(name, 0))
                lines = log.read().decode(errors="replace").splitlines()
        except OSError:
            return None
        for line in reversed(lines):
            if POINT_REACHED in line:
                try:
                    return str(json.loads(line).get("fault"))
                except ValueError:
                    return None
        return None

    def _noticed_death(self, name: str, now: float) -> Fault:
        service = self.services[name]
        assert service.process is not None
        code = service.process.poll()
        point = self._fired_point(name) if code == -9 else None
        if point is not None:
            self.reached[(name, point)] = now
            if point in self.pending[name]:
                self.pending[name].remove(point)
            fault = Fault("fault point", name, point, now)
        else:
            fault = Fault("unexpected exit", name, f"exit code {code}", now)
        self.faults.append(fault)
        self.progress(f"fault: {name} died ({fault.kind}: {fault.detail}); restarting it")
        return fault

    async def _bring_up(self, name: str) -> float | None:
        """Start the service until it is ready; a start that dies (at a fault point, say) is
        recorded and tried again. A live process is never killed for being slow: it waits for
        the broker or the database by itself. None: not ready in `recover_seconds` (recorded)."""
        service = self.services[name]
        deadline = time.monotonic() + self.recover_seconds
        attempt = 0
        died_starting: list[Fault] = []  # back when this service is
        while True:
            self._start(name)
            try:
                await asyncio.to_thread(service.wait_ready, max(1.0, deadline - time.monotonic()))
                for fault in died_starting:
                    fault.back = time.monotonic()
                return time.monotonic()
            except RuntimeError:  # it died while starting
                died_starting.append(self._noticed_death(name, time.monotonic()))
            except TimeoutError as error:
                self.errors.append(
                    f"{name} did not recover: not ready {self.recover_seconds:.0f} s after its"
                    f" death ({error})"
                )
                self.progress(f"fault: GAVE UP on {name}: {error}")
                await asyncio.to_thread(service.kill)
                return None
            attempt += 1
            await asyncio.sleep(min(5.0, 0.5 * attempt))

    async def _supervise(self, name: str) -> None:
        """Restart this service whenever it dies by itself (a fault point, a crash)."""
        service, lock = self.services[name], self._locks[name]
        while True:
            await asyncio.sleep(0.2)
            if lock.locked() or service.process is None or service.process.poll() is None:
                continue
            async with lock:
                fault = self._noticed_death(name, time.monotonic())
                fault.back = await self._bring_up(name)
                if fault.back is None:
                    return

    async def kill(self, name: str) -> None:
        """SIGKILL at a random moment, then start it again."""
        async with self._locks[name]:
            fault = Fault("random kill", name, "SIGKILL", time.monotonic())
            self.faults.append(fault)
            self.progress(f"fault: SIGKILL {name} at a random moment")
            await asyncio.to_thread(self.services[name].kill)
            fault.back = await self._bring_up(name)

    async def stop_all(self) -> None:
        for task in self._supervisors:
            task.cancel()
        await asyncio.gather(*self._supervisors, return_exceptions=True)
        for service in self.services.values():
            await asyncio.to_thread(service.stop)

    def dead(self) -> list[str]:
        return [
            name
            for name, s in self.services.items()
            if s.process is None or s.process.poll() is not None
        ]


# Every service process of this run, for `stop_leftovers`.
STARTED: list[ServiceProcess] = []


def stop_leftovers() -> list[str]:
    """SIGKILL any service process still running (an interrupted run's cleanup may not finish)."""
    left = []
    for service in STARTED:
        if service.process is not None and service.process.poll() is None:
            left.append(service.spec.name)
            service.kill()
    return left


async def infra(*args: str, progress: Progress) -> str:
    """deploy/local/infra.sh with the suite's environment (its ports); its output."""
    process = await asyncio.create_subprocess_exec(
        str(INFRA),
        *args,
        cwd=REPO_ROOT,
        env=os.environ.copy(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    text = output.decode(errors="replace")
    if process.returncode != 0:
        errors = [line for line in text.splitlines() if "error:" in line] or text.splitlines()
        raise RuntimeError(f"infra.sh {' '.join(args)}: {errors[-1] if errors else '?'}")
    return text


@dataclass(frozen=True)
class Scheduled:
    at_fraction: float  # of the load phase
    kind: str  # random kill | broker restart | postgres restart | cluster broker kill
    target: str


def schedule(
    rng: random.Random, *, random_kills: int, broker_restarts: int, pg_restarts: int, brokers: int
) -> list[Scheduled]:
    """Random kills at random moments, the first of each service early in the load (its
    restart arms its fault points: `Fleet.plan_points`); infrastructure restarts spread evenly
    over the load."""
    names = [s.name for s in SERVICES]
    rng.shuffle(names)
    planned = [
        Scheduled(ARMING_KILLS_UNTIL * (n + rng.random()) / len(names), "random kill", name)
        for n, name in enumerate(names[:random_kills])
    ]
    planned += [
        Scheduled(rng.uniform(0.05, 0.9), "random kill", rng.choice(names))
        for _ in range(random_kills - len(planned))
    ]
    broker_kind = "cluster broker kill" if brokers == 3 else "broker restart"
    for n in range(broker_restarts):
        target = f"broker {n % 3 + 1}" if brokers == 3 else "kafka"
        planned.append(Scheduled((n + 1) / (broker_restarts + 1) * 0.8, broker_kind, target))
    for n in range(pg_restarts):
        planned.append(
            Scheduled((n + 0.5) / (pg_restarts + 0.5) * 0.8 + 0.05, "postgres restart", "postgres")
        )
    return sorted(planned, key=lambda s: s.at_fraction)


async def inject(
    planned: Scheduled, fleet: Fleet, progress: Progress, broker_down_seconds: float
) -> None:
    """One fault; one that cannot be injected is recorded in `fleet.errors` (with the reason)
    and whatever it stopped is started again, never left down."""
    if planned.kind == "random kill":
        await fleet.kill(planned.target)
        return
    fault = Fault(planned.kind, planned.target, "", time.monotonic())
    fleet.faults.append(fault)
    try:
        if planned.kind == "broker restart":
            fault.detail = "SIGKILL, then start"
            progress("fault: restarting the Kafka broker (SIGKILL)")
            await infra("restart-kafka", progress=progress)
        elif planned.kind == "postgres restart":
            fault.detail = "immediate shutdown, then start"
            progress("fault: restarting PostgreSQL (immediate shutdown)")
            output = await infra("restart-postgres", "--immediate", progress=progress)
            stopped = re.search(r"\(-m immediate\) at ([0-9.]+)", output)
            if stopped:  # the crash itself, a moment after the injection began
                fault.wall = float(stopped.group(1))
        elif planned.kind == "cluster broker kill":
            node = planned.target.split()[-1]
            fault.detail = f"SIGKILL, down {broker_down_seconds:.0f} s, then start"
            progress(f"fault: SIGKILL {planned.target} of 3 (min.insync.replicas 2)")
            await infra("cluster", "kill", node, progress=progress)
            await asyncio.sleep(broker_down_seconds)
            await infra("cluster", "start", node, progress=progress)
    except RuntimeError as error:
        fault.detail = f"NOT INJECTED: {error}"
        fleet.errors.append(f"{planned.kind} of {planned.target} failed: {error}")
        progress(f"fault: {planned.kind} FAILED ({error}); putting the infrastructure back")
        await restore_infrastructure(progress, cluster=planned.kind == "cluster broker kill")
    fault.back = time.monotonic()
    progress(f"fault: {planned.kind} done in {fault.back - fault.at:.1f} s")


async def restore_infrastructure(progress: Progress, *, cluster: bool = False) -> str | None:
    """`infra.sh up` (and the cluster's) again, so that nothing is left stopped; the error when
    even that fails."""
    try:
        await infra("up", progress=progress)
        if cluster:
            await infra("cluster", "up", progress=progress)
    except RuntimeError as error:
        progress(f"infra: could not start the infrastructure again: {error}")
        return str(error)
    return None


def not_reached(fleet: Fleet) -> list[tuple[str, str]]:
    return [(p.service, p.point) for p in FAULT_POINTS if (p.service, p.point) not in fleet.reached]
