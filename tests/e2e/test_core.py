"""The core scenarios (tests/scenarios/core.py) on the local-process stack of tests/e2e."""

from tests.scenarios.core import *  # noqa: F403  (the suite itself, collected with this stack)
