"""Issue 19: the due-date engine looks as soon as something became due, not at its next poll.

Renewal is run with a poll interval far longer than the test (300 s): a CSN's clock moved onto
a renewal date, or a subscription stored already due, must still be renewed within seconds
(AUTO-1), woken by the NOTIFY of the transaction that stored it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import date, timedelta

import pytest

from deploy.local import samples
from tests.scenarios.steps import (
    about_subject,
    given_a_subscription,
    given_product_priced,
    set_test_clock,
    until,
)

START = date.today() + timedelta(days=20)
# Far below the poll interval: only a wake-up can make it.
PROMPTLY = 20.0


@pytest.fixture(scope="module")
async def slow_engine(stack) -> AsyncIterator[None]:
    """Renewal polling every 300 s (its first look done at start); back to the stack's settings
    afterwards."""
    renewal = await stack.restart("renewal", {"RENEWALS_RENEWAL_ENGINE_INTERVAL_SECONDS": "300"})
    await asyncio.to_thread(renewal.wait_ready)
    try:
        yield
    finally:
        await stack.restart("renewal")


async def test_auto_1_a_clock_moved_onto_the_renewal_date_renews_at_once(
    stack, slow_engine, upstream, watcher, admin_db
):
    csn = samples.unique_csn()
    await given_product_priced(upstream, admin_db, csn)
    await given_a_subscription(upstream, admin_db, csn, renewal_date=START, auto_renew=True)

    await set_test_clock(upstream, csn, START)

    [renewed] = await watcher.wait_for(about_subject(csn, "subscription.renewed"), timeout=PROMPTLY)
    assert renewed.data["request_id"] is None  # automatic


async def test_auto_1_a_subscription_stored_already_due_renews_at_once(
    stack, slow_engine, upstream, watcher, admin_db
):
    csn = samples.unique_csn()
    await given_product_priced(upstream, admin_db, csn)
    await set_test_clock(upstream, csn, START)  # first: nothing of this CSN is due yet
    await until(
        lambda: admin_db.fetchval(
            "SELECT count(*) = 1 FROM renewal.test_clocks WHERE csn = $1", csn
        ),
        what="renewal to store the clock",
    )

    await given_a_subscription(upstream, admin_db, csn, renewal_date=START, auto_renew=True)

    [renewed] = await watcher.wait_for(about_subject(csn, "subscription.renewed"), timeout=PROMPTLY)
    assert renewed.data["request_id"] is None
