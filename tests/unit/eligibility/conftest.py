import os

import pytest


@pytest.fixture(autouse=True, scope="session")
def _policy_from_defaults_only():
    """The tests check the seeds' defaults: an operator's RENEWALS_POLICY_* must not leak in."""
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith("RENEWALS_POLICY_"):
                patch.delenv(name)
        yield
