"""The product in containers for the end-to-end suite: Kafka, PostgreSQL, the dev SMTP server
and every service, each a container of the images deploy/docker/images.py builds, started and
removed by testcontainers-python.

As in deploy/docker-compose.yml, every container uses the host's network (no bridge on these
machines, ../shared/MACHINE.md) on ports of its own, picked free for each test session, so the
stack never meets `make infra-up`, `make run` or `make up`. Ryuk (testcontainers' reaper) is off:
its image cannot be pulled here. The fixture removes what it started, and containers left by a
test process that died are removed by the next session (label `renewals.test-pid`).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")

import docker  # after the Ryuk switch above, which testcontainers reads from the environment
from testcontainers.core.container import DockerContainer

from deploy.local.launcher import credentials_env
from shared import local_secrets
from tests.scenarios.stack import TEST_STACK_SETTINGS
from tests.support.smtp import free_ports

REPO_ROOT = Path(__file__).resolve().parents[2]
PID_LABEL = "renewals.test-pid"
# Where the infrastructure containers read the secrets file (their images' default).
SECRETS_IN_CONTAINER = "/run/secrets/renewals.env"
SERVICE_MODULES = {
    "renewal": "services.renewal",
    "bulk_worker": "services.bulk_worker",
    "billing": "services.billing",
    "notification": "services.notification",
    "quote": "services.quote",
}
HEALTHY_TIMEOUT = 120.0


class NoDockerEngine(RuntimeError):
    pass


def require_docker_engine() -> None:
    try:
        docker.from_env().ping()
    except Exception as error:
        raise NoDockerEngine(
            f"no Docker engine answers ({error}): run `make docker-setup` (`make test` does)"
        ) from error


def build_images() -> dict[str, str]:
    """The image tags for the current sources, built when missing (seconds when only the code
    changed: the dependency layers are cached)."""
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "deploy/docker/images.py"), "build", "--env"],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(f"building the images failed:\n{result.stderr[-4000:]}")
    return dict(line.split("=", 1) for line in result.stdout.split())


COMPOSE_PROJECT_LABEL = "com.docker.compose.project"
TEST_PROJECT_PREFIX = "renewals-test-"  # + the test process's pid (test_compose.py)


def remove_leftovers() -> None:
    """What earlier test sessions left when their process died before its teardown: the
    fixture's containers (their pid label), test_compose.py's containers and volumes (their
    compose project, hence their names, carry the pid)."""
    client = docker.from_env()
    for container in client.containers.list(all=True):
        labels = container.labels
        project = labels.get(COMPOSE_PROJECT_LABEL, "")
        pid = labels.get(PID_LABEL) or _pid_of_test_project(project)
        if pid is not None and _dead(pid):
            container.remove(force=True, v=True)
    for volume in client.volumes.list(filters={"dangling": True}):
        pid = _pid_of_test_project(volume.name.split("_", 1)[0])
        if pid is not None and _dead(pid):
            volume.remove(force=True)


def _pid_of_test_project(project: str) -> str | None:
    return (
        project.removeprefix(TEST_PROJECT_PREFIX)
        if project.startswith(TEST_PROJECT_PREFIX)
        else None
    )


def _dead(pid: str) -> bool:
    """No test process of that pid runs any more (a pid reused by another program counts as
    dead: its command line is not pytest's)."""
    if pid == str(os.getpid()):
        return False
    try:
        return b"pytest" not in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True


@dataclass
class MaildirMailbox:
    """The emails the SMTP container kept, one .eml file each, in a folder mounted from here."""

    folder: Path

    def all(self) -> list[EmailMessage]:
        return [
            message_from_bytes(path.read_bytes(), policy=policy.default)  # type: ignore[misc]
            for path in sorted(self.folder.glob("*.eml"))
        ]

    def with_key(self, notification_key: str) -> list[EmailMessage]:
        return [m for m in self.all() if m["X-Notification-Key"] == notification_key]


@dataclass
class Ports:
    """Ports of this machine for the stack's servers, all different, picked free."""

    kafka: int
    kafka_controller: int
    postgres: int
    smtp: int
    http: dict[str, int]

    @classmethod
    def pick(cls) -> Ports:
        kafka, controller, postgres, smtp, *http = free_ports(4 + len(SERVICE_MODULES))
        return cls(kafka, controller, postgres, smtp, dict(zip(SERVICE_MODULES, http, strict=True)))

    def environment(self) -> dict[str, str]:
        return {
            "RENEWALS_KAFKA_PORT": str(self.kafka),
            "RENEWALS_KAFKA_CONTROLLER_PORT": str(self.kafka_controller),
            "RENEWALS_PG_PORT": str(self.postgres),
            "RENEWALS_SMTP_PORT": str(self.smtp),
        }


class ContainerStack:
    """A RunningStack (tests/scenarios/stack.py) whose every part is a container."""

    def __init__(self, images: dict[str, str], maildir: Path) -> None:
        self.images = images
        self.ports = Ports.pick()
        self.maildir = maildir
        self.mailbox = MaildirMailbox(maildir)
        self.containers: dict[str, DockerContainer] = {}
        # The clone's secrets file (made now if `make infra-up` has not): the test process's
        # clients read it, the infrastructure containers mount it, each service container gets
        # its own principal's and role's passwords only (as `make up` gives them).
        self.secrets = local_secrets.ensure()

    @property
    def kafka_bootstrap(self) -> str:
        return f"127.0.0.1:{self.ports.kafka}"

    def _container(self, name: str, image: str, **environment: str) -> DockerContainer:
        container = (
            DockerContainer(self.images[image])
            .with_name(f"renewals-test-{os.getpid()}-{name.replace('_', '-')}")
            .with_envs(**self.ports.environment(), **environment)
            .with_kwargs(network_mode="host", labels={PID_LABEL: str(os.getpid())})
        )
        self.containers[name] = container
        return container

    def _with_secrets(self, container: DockerContainer) -> DockerContainer:
        return container.with_volume_mapping(str(self.secrets), SECRETS_IN_CONTAINER, "ro")

    def start_all(self) -> None:
        started = time.monotonic()
        self._with_secrets(self._container("postgres", "RENEWALS_IMAGE_POSTGRES")).start()
        self._with_secrets(self._container("kafka", "RENEWALS_IMAGE_KAFKA")).start()
        self._container("smtp", "RENEWALS_IMAGE_SMTP").with_volume_mapping(
            str(self.maildir), "/var/mail/renewals", "rw"
        ).start()
        for name in ("postgres", "kafka", "smtp"):
            self.wait_healthy(name)
        infrastructure = time.monotonic() - started
        self._create_topics()
        for name, module in SERVICE_MODULES.items():
            self._container(
                name,
                "RENEWALS_IMAGE_SERVICES",
                **TEST_STACK_SETTINGS,
                **credentials_env(name),
                RENEWALS_HTTP_PORT=str(self.ports.http[name]),
            ).with_command(["python", "-m", module]).start()
        for name in SERVICE_MODULES:
            self.wait_healthy(name)
        print(
            f"container stack ready in {time.monotonic() - started:.1f}s"
            f" (Kafka, PostgreSQL, SMTP healthy after {infrastructure:.1f}s)",
            file=sys.stderr,
        )

    def _create_topics(self) -> None:
        # As the admin principal: the users and ACLs first, then the topics.
        bootstrap = self.kafka_bootstrap
        job = self._with_secrets(
            self._container(
                "topics", "RENEWALS_IMAGE_SERVICES", RENEWALS_SECRETS_FILE=SECRETS_IN_CONTAINER
            )
        ).with_command(
            [
                "sh",
                "-c",
                f"python deploy/local/kafka_security.py sync --bootstrap {bootstrap}"
                f" && exec python deploy/local/create_topics.py --bootstrap {bootstrap}",
            ]
        )
        job.start()
        if job.wait() != 0:
            raise RuntimeError(f"topic creation failed:\n{self.logs('topics')}")

    def wait_healthy(self, name: str) -> None:
        """Until the container's health check (the image's HEALTHCHECK) passes."""
        container = self.containers[name].get_wrapped_container()
        deadline = time.monotonic() + HEALTHY_TIMEOUT
        while True:
            container.reload()
            state = container.attrs["State"]
            if state.get("Health", {}).get("Status") == "healthy":
                return
            if state["Status"] == "exited" or time.monotonic() > deadline:
                raise RuntimeError(
                    f"{name} container {state['Status']}, not healthy:\n{self.logs(name)}"
                )
            time.sleep(0.2)

    def logs(self, name: str, lines: int = 40) -> str:
        container = self.containers[name].get_wrapped_container()
        return container.logs(tail=lines).decode(errors="replace")

    async def kill(self, service: str) -> None:
        """`docker kill`: SIGKILL to the container's process, no shutdown hook runs."""
        await asyncio.to_thread(self.containers[service].get_wrapped_container().kill)

    async def start(self, service: str) -> None:
        """The same container started again (same command, settings and ports)."""
        await asyncio.to_thread(self.containers[service].get_wrapped_container().start)
        await asyncio.to_thread(self.wait_healthy, service)

    def stop_all(self) -> None:
        for container in reversed(self.containers.values()):
            try:
                container.stop()
            except Exception as error:  # one failed removal must not leave the others running
                print(f"could not remove a test container: {error}", file=sys.stderr)
