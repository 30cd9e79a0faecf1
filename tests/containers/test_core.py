"""The core scenarios (tests/scenarios/core.py) on the stack in containers of tests/containers."""

import pytest

from tests.scenarios.core import *  # noqa: F403  (the suite itself, collected with this stack)

# The first test also builds the images the fixture needs when `make images` did not (minutes
# on a new machine), and the fixture's set-up counts against the test's time.
pytestmark = pytest.mark.timeout(900)
