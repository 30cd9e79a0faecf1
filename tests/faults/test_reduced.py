"""The reduced fault run (issue 15 item 6), part of `make test`: ~1,000 renewals of every kind
through every service process, the real broker, PostgreSQL and the dev SMTP server, while each
service is killed at its fault points and at random, the broker and PostgreSQL restart, every
input arrives twice and poison is mixed in. The same checks as `make faults`: nothing lost,
nothing charged twice, every confirmation emailed (duplicates within the stated bound), every
poison message dead-lettered."""

from __future__ import annotations

import asyncio

import pytest

from tests.faults import run
from tests.support.infra import require_infrastructure


@pytest.mark.timeout(600)
async def test_reduced_fault_run_loses_nothing_and_charges_nothing_twice() -> None:
    require_infrastructure()
    args = run.parse_args(["--reduced"])
    refusal = run.preflight(run.MessagingSettings().kafka_bootstrap)
    if refusal:
        pytest.fail(f"the fault suite cannot run: {refusal}", pytrace=False)
    result, summary = await asyncio.wait_for(run.run(args), timeout=570)
    run.render(result, summary)
    assert not result.failures, "\n".join(result.failures)
    assert summary["complete"]
