"""The stack in containers for tests/containers: built from the current sources (images.py),
started once for this folder by testcontainers and removed when its tests are done (not at the
end of the whole session: the other layers need the machine's two cores). The shared `upstream`,
`watcher` and `admin_db` fixtures (tests/conftest.py) reach its broker and database through the
two fixtures overridden here.

Needs a Docker engine: without one, these tests fail with how to start it (never skip).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.containers.stack import (
    ContainerStack,
    NoDockerEngine,
    build_images,
    remove_leftovers,
    require_docker_engine,
)


@pytest.fixture(scope="package")
def container_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ContainerStack]:
    try:
        require_docker_engine()
    except NoDockerEngine as error:
        pytest.fail(str(error), pytrace=False)
    remove_leftovers()
    maildir: Path = tmp_path_factory.mktemp("container-mail")
    stack = ContainerStack(build_images(), maildir)
    try:
        stack.start_all()
        yield stack
    finally:
        stack.stop_all()


@pytest.fixture(scope="package")
def stack(container_stack: ContainerStack) -> ContainerStack:
    return container_stack


@pytest.fixture(scope="package")
def kafka_bootstrap(container_stack: ContainerStack) -> str:
    return container_stack.kafka_bootstrap


@pytest.fixture(scope="package")
def postgres_address(container_stack: ContainerStack) -> tuple[str, int]:
    return "127.0.0.1", container_stack.ports.postgres
