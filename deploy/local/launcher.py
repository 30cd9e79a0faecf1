"""Start, watch and stop the services as separate OS processes: `make run` and the end-to-end
tests start them the same way, through this module.

    python -m deploy.local.launcher up       # every service, waits until each is ready
    python -m deploy.local.launcher down     # stops what `up` started (pid files)
    python -m deploy.local.launcher status
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from services.processes import SERVICES, ServiceSpec
from shared import local_secrets
from shared.messaging.principals import (
    COMMAND_TOPICS,
    SERVICE_CONSUMES,
    SERVICE_PRINCIPAL,
    signers_of,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
STATE = REPO_ROOT / ".local"


# The database role of each service process (the bulk worker works renewal's schema).
DATABASE_ROLE = {"bulk_worker": "renewal_svc"}


def credentials_env(service: str) -> dict[str, str]:
    """The service's own Kafka principal and database role, with their passwords from the
    secrets file (`make infra-up` writes it): each process is given its own and no other; a
    service that consumes commands also gets the keys that verify their signers (issue 16)."""
    principal = SERVICE_PRINCIPAL[service]
    role = DATABASE_ROLE.get(service, f"{service}_svc")
    return {
        "RENEWALS_KAFKA_USERNAME": principal,
        "RENEWALS_KAFKA_PASSWORD": local_secrets.kafka_password(principal) or "",
        "RENEWALS_PG_USER": role,
        "RENEWALS_PG_PASSWORD": local_secrets.database_password(role) or "",
        **signing_keys_env(service),
    }


def signing_keys_env(service: str) -> dict[str, str]:
    """RENEWALS_SIGNING_KEY_<SIGNER> for each signer of the command topics `service` reads."""
    consumed = {t.name for t in SERVICE_CONSUMES.get(service, ())}
    signers = {name for t in COMMAND_TOPICS if t.name in consumed for name in signers_of(t.name)}
    return {
        f"RENEWALS_{local_secrets.signing_key_name(name)}": local_secrets.signing_key(name) or ""
        for name in sorted(signers)
    }


@dataclass
class ServiceProcess:
    """One service process with its log file; `kill()` is a real SIGKILL, `restart()` a new one."""

    spec: ServiceSpec
    env: dict[str, str] = field(default_factory=dict)
    log_dir: Path = STATE / "logs"
    http_port: int | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def port(self) -> int:
        return self.http_port if self.http_port is not None else self.spec.http_port

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"{self.spec.name}.log"

    def start(self, extra_env: dict[str, str] | None = None) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            **credentials_env(self.spec.name),
            **self.env,
            **(extra_env or {}),
            "RENEWALS_HTTP_PORT": str(self.port),
        }
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", self.spec.module],
                cwd=REPO_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a terminal's Ctrl-C goes to `make`, not to each service
            )

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.spec.name} exited with {self.process.returncode}; see {self.log_path}"
                )
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/ready", timeout=2) as r:
                    if r.status == 200:
                        return
            except urllib.error.HTTPError as error:
                last = error.read().decode().replace("\n", ", ")
            except OSError as error:
                last = repr(error)
            time.sleep(0.2)
        raise TimeoutError(
            f"{self.spec.name} not ready after {timeout}s ({last}); see {self.log_path}"
        )

    def kill(self) -> None:
        """SIGKILL: no shutdown hook runs, exactly like a crashed machine."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def stop(self, timeout: float = 20.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


def _pid_file(spec: ServiceSpec) -> Path:
    return STATE / "run" / f"service-{spec.name}.pid"


def _running_pid(spec: ServiceSpec) -> int | None:
    try:
        pid = int(_pid_file(spec).read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except (OSError, ValueError):
        return None
    return pid if spec.module.encode() in cmdline else None


def running_services() -> list[str]:
    return [spec.name for spec in SERVICES if _running_pid(spec) is not None]


def up() -> None:
    started = []
    for spec in SERVICES:
        if _running_pid(spec) is not None:
            print(f"  {spec.name:<13} already running")
            continue
        # `make run` is a development stack: test clocks on (CONTRACT.md, clock.commands).
        service = ServiceProcess(spec, env={"RENEWALS_TEST_CLOCKS_ENABLED": "true"})
        service.start()
        assert service.process is not None
        _pid_file(spec).parent.mkdir(parents=True, exist_ok=True)
        _pid_file(spec).write_text(str(service.process.pid))
        started.append(service)
    for service in started:
        service.wait_ready()
    for spec in SERVICES:
        print(
            f"  {spec.name:<13} pid {_running_pid(spec)!s:<8} http://127.0.0.1:{spec.http_port}/ready"
            f"  log .local/logs/{spec.name}.log"
        )


def down() -> None:
    for spec in SERVICES:
        pid = _running_pid(spec)
        if pid is None:
            continue
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
            time.sleep(0.1)
        if Path(f"/proc/{pid}").exists():
            os.kill(pid, signal.SIGKILL)
        _pid_file(spec).unlink(missing_ok=True)
        print(f"  {spec.name:<13} stopped")


def status() -> None:
    for spec in SERVICES:
        pid = _running_pid(spec)
        state = f"up (pid {pid})" if pid else "down"
        print(f"  {spec.name:<13} {state:<16} http://127.0.0.1:{spec.http_port}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("action", choices=["up", "down", "status"])
    action = parser.parse_args().action
    {"up": up, "down": down, "status": status}[action]()


if __name__ == "__main__":
    main()
