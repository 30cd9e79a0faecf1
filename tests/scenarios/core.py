"""The core end-to-end scenarios: one suite, run against two stacks.

tests/e2e/test_core.py runs it on the local-process stack, tests/containers/test_core.py on the
stack in containers; each folder's conftest gives `stack` (a RunningStack, see stack.py) and the
`upstream`, `watcher` and `admin_db` that reach that stack's broker and database. Nothing here
knows which stack it runs on.

This module's name does not start with `test_`: pytest collects these tests only where a test
module imports them.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from decimal import Decimal

import pytest

from deploy.local import samples
from shared.contracts import topics
from shared.contracts.envelope import encode
from shared.eligibility.dates import add_term
from tests.scenarios.settled import settled
from tests.scenarios.stack import RunningStack
from tests.scenarios.steps import (
    RENEWAL_DATE,
    answering,
    charges_for,
    confirmation_to,
    given_a_hundred_subscriptions_in_three_groups,
    given_a_subscription,
    given_one_subscription_each,
    given_product_priced,
    orders_for,
    request_renewal,
    until,
)


async def test_life_4_manual_renewal_by_the_buyer_renews_charges_and_emails(
    stack: RunningStack, upstream, watcher, admin_db
):
    csn = samples.unique_csn()
    await given_product_priced(
        upstream, admin_db, csn, {"renewal_price": "420.00", "list_price": "466.00"}
    )
    snapshot = await given_a_subscription(upstream, admin_db, csn, seats=3)

    command = await request_renewal(upstream, csn, snapshot.subscription_id)

    [renewed] = await watcher.wait_for(answering(command.request_id, "subscription.renewed"))
    # LIFE-4: the new term starts at the current renewal date, one term later.
    assert renewed.data["previous_renewal_date"] == RENEWAL_DATE.isoformat()
    assert renewed.data["renewal_date"] == add_term(RENEWAL_DATE, "annual").isoformat()
    assert renewed.event["subject"] == csn
    [placed] = await watcher.wait_for(answering(command.request_id, "order.placed"))
    assert placed.data["total"] == "1260.00"  # 3 seats × the catalog's renewal price 420.00
    assert Decimal(placed.data["lines"][0]["unit_price"]) == Decimal("420.00")
    [sent] = await watcher.wait_for(confirmation_to(csn))
    assert sent.data["order_id"] == renewed.data["order_id"]
    assert sent.data["to"] == [snapshot.buyer.email]
    [email] = stack.mailbox.with_key(f"order_confirmation:{renewed.data['order_id']}")
    assert snapshot.buyer.email in email["To"]
    assert "AutoCAD LT" in email["Subject"]
    assert await charges_for(admin_db, csn) == 1


async def test_man_1_man_2_man_3_a_hundred_subscriptions_in_three_groups_make_three_orders(
    stack: RunningStack, upstream, watcher, admin_db
):
    csn = samples.unique_csn()
    snapshots = await given_a_hundred_subscriptions_in_three_groups(upstream, admin_db, csn)
    command = await request_renewal(upstream, csn, *(s.subscription_id for s in snapshots))

    [accepted] = await watcher.wait_for(answering(command.request_id, "bulk.accepted"))
    assert accepted.data["count"] == 100
    [completed] = await watcher.wait_for(
        answering(command.request_id, "bulk.completed"), timeout=60
    )
    assert completed.data["succeeded"] == 100 and len(completed.data["outcomes"]) == 100
    order_ids = {o["order_id"] for o in completed.data["outcomes"]}
    assert len(order_ids) == 3
    await watcher.wait_for(confirmation_to(csn), count=3, timeout=60)
    await settled(upstream.bootstrap, admin_db)
    assert len(watcher.matching(confirmation_to(csn))) == 3  # MAN-3: one per order
    assert await orders_for(admin_db, csn) == 3
    assert await charges_for(admin_db, csn) == 3
    for order_id in order_ids:
        [email] = stack.mailbox.with_key(f"order_confirmation:{order_id}")
        # MAN-3: the one confirmation lists every subscription its order renewed, whatever
        # number of consumer batches their `subscription.renewed` came in
        lines = sum(1 for o in completed.data["outcomes"] if o["order_id"] == order_id)
        assert email.get_body(("plain",)).get_content().count("next renewal on") == lines


async def test_garbage_and_invalid_events_go_to_the_dlq_and_the_partition_moves_on(
    stack: RunningStack, upstream, watcher, admin_db
):
    csn = samples.unique_csn()
    [snapshot] = await given_one_subscription_each(upstream, admin_db, [csn])
    invalid = samples.event(samples.renewal_request(csn, [snapshot.subscription_id]), csn)
    invalid_bytes = encode(invalid).replace(b'"subscription_ids"', b'"subscriptions"')
    key = csn.encode()  # same key: same partition as the good command after them
    await upstream.send_raw(topics.RENEWAL_COMMANDS, b"\x00garbage\xff", key=key)
    await upstream.send_raw(topics.RENEWAL_COMMANDS, invalid_bytes, key=key)
    good = await request_renewal(upstream, csn, snapshot.subscription_id)

    await watcher.wait_for(answering(good.request_id, "subscription.renewed"))
    dead = await watcher.wait_for(
        lambda s: s.topic == topics.RENEWAL_COMMANDS.dlq and s.key == key, count=2
    )
    by_value = {d.value: d.headers for d in dead}
    assert by_value[b"\x00garbage\xff"]["x-dlq-error"].startswith("not JSON")
    assert "subscription_ids" in by_value[invalid_bytes]["x-dlq-error"]
    assert by_value[invalid_bytes]["x-dlq-original-topic"] == topics.RENEWAL_COMMANDS.name


CUSTOMERS = 150  # one subscription each: a renewal request, an order, a charge, an email each


@pytest.mark.parametrize("service", ["billing", "renewal"])
async def test_a_service_killed_mid_flow_and_started_again_loses_nothing_and_doubles_nothing(
    service: str, stack: RunningStack, upstream, watcher, admin_db
):
    """Renewal requests keep arriving before, while and after the service is killed (SIGKILL /
    `docker kill`) at the first charge of the run, so that some customers are charged and the
    others not yet; once it is started again every customer is renewed, charged and emailed
    exactly once. Where exactly in a batch the kill lands is up to timing: the narrowest
    window (after the database commit, before the Kafka offset commit) is hit deterministically
    by the fault points of tests/e2e/test_exactly_once.py."""
    run = samples.unique_csn("KILL")
    csns = [f"{run}-{n:03}" for n in range(CUSTOMERS)]
    snapshots = await given_one_subscription_each(upstream, admin_db, csns)
    commands = [samples.renewal_request(s.csn, [s.subscription_id]) for s in snapshots]
    sent = 0

    async def charged() -> int:
        return await admin_db.fetchval(
            "SELECT count(*) FROM billing.payments p JOIN billing.orders o USING (order_id)"
            " WHERE o.csn = ANY($1::text[]) AND p.outcome = 'succeeded'",
            csns,
        )

    async def keep_sending() -> None:
        """Five requests every 100 ms (3 s in all), before, during and after the kill."""
        nonlocal sent
        for start in range(0, CUSTOMERS, 5):
            chunk = commands[start : start + 5]
            await upstream.send_many(
                topics.RENEWAL_COMMANDS, [samples.event(c, c.actor.csn) for c in chunk]
            )
            sent += len(chunk)
            await asyncio.sleep(0.1)

    async def under_way() -> bool:
        return await charged() > 0

    sending = asyncio.create_task(keep_sending())
    await until(under_way, what="the first charge of the run")
    sent_at_kill = sent
    await stack.kill(service)
    charged_at_kill = await charged()
    await sending
    assert 0 < charged_at_kill < CUSTOMERS, f"{charged_at_kill} charged, {sent_at_kill} sent"
    await stack.start(service)

    customers = set(csns)

    async def everyone_confirmed() -> bool:
        confirmed = watcher.matching(
            lambda s: (
                confirmation_to(s.event.get("subject", ""))(s) and s.event["subject"] in customers
            )
        )
        return len({s.event["subject"] for s in confirmed}) == CUSTOMERS

    await until(everyone_confirmed, what=f"{CUSTOMERS} order confirmations", timeout=120)
    await settled(upstream.bootstrap, admin_db)
    charges = await admin_db.fetch(
        "SELECT o.csn, count(*) AS charges FROM billing.payments p JOIN billing.orders o"
        " USING (order_id) WHERE o.csn = ANY($1::text[]) AND p.outcome = 'succeeded'"
        " GROUP BY o.csn",
        csns,
    )
    assert {r["csn"]: r["charges"] for r in charges} == dict.fromkeys(csns, 1)
    orders = await admin_db.fetch(
        "SELECT order_id FROM billing.orders WHERE csn = ANY($1::text[])", csns
    )
    assert len(orders) == CUSTOMERS
    renewed_to = await admin_db.fetch(
        "SELECT renewal_date FROM renewal.subscriptions WHERE csn = ANY($1::text[])", csns
    )
    assert Counter(r["renewal_date"] for r in renewed_to) == {
        add_term(RENEWAL_DATE, "annual"): CUSTOMERS  # renewed once: one term later, not two
    }
    emails = Counter(m["X-Notification-Key"] for m in stack.mailbox.all())
    assert [emails[f"order_confirmation:{o['order_id']}"] for o in orders] == [1] * CUSTOMERS
