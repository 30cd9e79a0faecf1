"""`make up`'s stack as users run it: deploy/docker-compose.yml driven by deploy/docker/stack.sh,
every container healthy, the demo's flow answered, `renewals health` green, then `down`.

It runs as a second compose project on ports picked free (RENEWALS_STACK_ENV and
RENEWALS_STACK_PROJECT), so a developer's own `make up` stack is left alone.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from services.operations.prometheus_targets import active_targets
from tests.containers.stack import (
    REPO_ROOT,
    TEST_PROJECT_PREFIX,
    NoDockerEngine,
    remove_leftovers,
    require_docker_engine,
)
from tests.support.smtp import free_ports

STACK = REPO_ROOT / "deploy/docker/stack.sh"

pytestmark = pytest.mark.timeout(900)  # `up` builds the images when `make images` did not


def _stack_env_on_free_ports(target: Path) -> None:
    """deploy/docker/stack.env with every port replaced by a free one."""
    lines = (REPO_ROOT / "deploy/docker/stack.env").read_text().splitlines()
    ports = iter(free_ports(sum(line.partition("=")[0].endswith("_PORT") for line in lines)))
    target.write_text(
        "".join(
            f"{line.partition('=')[0]}={next(ports)}\n"
            if line.partition("=")[0].endswith("_PORT")
            else f"{line}\n"
            for line in lines
        )
    )


def _stack(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(STACK), *args], env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture
def compose_env(tmp_path: Path):
    try:
        require_docker_engine()
    except NoDockerEngine as error:
        pytest.fail(str(error), pytrace=False)
    remove_leftovers()
    _stack_env_on_free_ports(tmp_path / "stack.env")
    env = {
        **os.environ,
        "RENEWALS_STACK_ENV": str(tmp_path / "stack.env"),
        "RENEWALS_STACK_PROJECT": f"{TEST_PROJECT_PREFIX}{os.getpid()}",
        "RENEWALS_MAIL_DIR": str(tmp_path / "mail"),
    }
    try:
        yield env
    finally:
        _stack("down", "--volumes", env=env)


def test_the_compose_stack_comes_up_healthy_and_the_demo_flow_works_against_it(
    compose_env, tmp_path
):
    up = _stack("up", env=compose_env)
    assert up.returncode == 0, up.stdout + up.stderr
    assert "every container healthy" in up.stdout

    ps = _stack("ps", env=compose_env)
    running = [line for line in ps.stdout.splitlines() if " Up " in line]
    for service in (
        "kafka",
        "postgres",
        "smtp",
        "prometheus",
        "renewal-1",
        "renewal-2",
        "bulk-worker",
    ):
        assert any(f"_{service}_1 " in line for line in running), ps.stdout
    assert all("(healthy)" in line for line in running), ps.stdout

    demo = _stack("demo", env=compose_env, timeout=120)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    for seen in ("subscription.renewed", "payment.succeeded", "bulk.completed", "(dead letter)"):
        assert seen in demo.stdout
    confirmations = [
        path
        for path in (tmp_path / "mail").glob("*.eml")
        if "X-Notification-Key: order_confirmation:" in path.read_text(errors="replace")
    ]
    assert len(confirmations) == 2  # the French buyer's order and the US buyer's bulk order

    health = _stack("renewals", "health", "--json", env=compose_env)
    assert health.returncode == 0, health.stdout + health.stderr
    components = {check["component"]: check["ok"] for check in json.loads(health.stdout)}
    assert components["service renewal-1"] and components["service renewal-2"]
    assert all(components.values()), components

    # Prometheus in the stack scrapes every service (its first scrape comes within 15 s).
    settings = dict(
        line.split("=", 1)
        for line in (tmp_path / "stack.env").read_text().splitlines()
        if "=" in line
    )
    prometheus = f"http://127.0.0.1:{settings['RENEWALS_PROMETHEUS_PORT']}"
    targets = _wait_for_scraped_targets(prometheus, timeout=60)
    assert {t["labels"]["process"] for t in targets} == {
        "renewal-1",
        "renewal-2",
        "bulk_worker",
        "billing",
        "notification",
        "quote",
    }
    assert all(t["health"] == "up" for t in targets), targets


def _wait_for_scraped_targets(prometheus: str, *, timeout: float) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        targets = active_targets(prometheus)
        if (targets and all(t["health"] == "up" for t in targets)) or time.monotonic() > deadline:
            return targets
        time.sleep(1)
