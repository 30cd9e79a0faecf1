"""The core scenarios (tests/scenarios/core.py) on the stack in containers of tests/containers."""

from tests.scenarios.core import *  # noqa: F403  (the suite itself, collected with this stack)
