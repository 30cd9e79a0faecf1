"""Exact effects, proven against the running processes: duplicates, bad input, SIGKILL, replicas."""

from __future__ import annotations

import asyncio
import json
import urllib.request

from deploy.local import samples
from shared.contracts import topics
from tests.scenarios.steps import (
    about_subject,
    answering,
    charges_for,
    confirmation_to,
    given_one_subscription_each,
    orders_for,
    request_renewal,
)


async def test_the_same_command_twice_has_one_effect_and_one_answer(
    stack, upstream, watcher, admin_db
):
    csn = samples.unique_csn()
    [snapshot] = await given_one_subscription_each(upstream, admin_db, [csn])
    command = samples.renewal_request(csn, [snapshot.subscription_id])
    event = samples.event(command, csn)
    # The same message delivered twice, and the same request id again under a new event id.
    await upstream.send_many(topics.RENEWAL_COMMANDS, [event, event, samples.event(command, csn)])

    [renewed] = await watcher.wait_for(answering(command.request_id, "subscription.renewed"))
    await watcher.wait_for(confirmation_to(csn))
    await stack.settled(admin_db)
    assert len(watcher.matching(answering(command.request_id, "subscription.renewed"))) == 1
    assert len(watcher.matching(confirmation_to(csn))) == 1
    assert await charges_for(admin_db, csn) == 1
    assert len(stack.smtp.mailbox.with_key(f"order_confirmation:{renewed.data['order_id']}")) == 1


async def test_billing_killed_after_its_db_commit_charges_once_and_emails_once(
    stack, upstream, watcher, admin_db
):
    csn = samples.unique_csn()
    [snapshot] = await given_one_subscription_each(upstream, admin_db, [csn])
    await stack.armed("billing", "after_db_commit")
    command = await request_renewal(upstream, csn, snapshot.subscription_id)

    # The fault point SIGKILLs billing right after it committed the order, before its Kafka
    # offset commit: the order will be delivered again. Its charge, made apart from the placing
    # transaction, may or may not have been recorded yet (issue 15).
    await stack.killed_at_its_fault("billing")
    assert await orders_for(admin_db, csn) == 1
    assert await charges_for(admin_db, csn) <= 1
    await stack.restart("billing")

    [renewed] = await watcher.wait_for(answering(command.request_id, "subscription.renewed"))
    await watcher.wait_for(confirmation_to(csn))
    await stack.settled(admin_db)
    assert await charges_for(admin_db, csn) == 1
    assert len(watcher.matching(about_subject(csn, "payment.succeeded"))) == 1
    assert len(stack.smtp.mailbox.with_key(f"order_confirmation:{renewed.data['order_id']}")) == 1


async def test_notification_killed_after_its_db_commit_sends_one_email(
    stack, upstream, watcher, admin_db
):
    csn = samples.unique_csn()
    [snapshot] = await given_one_subscription_each(upstream, admin_db, [csn])
    await stack.armed("notification", "after_db_commit")
    await request_renewal(upstream, csn, snapshot.subscription_id)

    await stack.killed_at_its_fault("notification")
    await stack.restart("notification")

    [sent] = await watcher.wait_for(confirmation_to(csn))
    await stack.settled(admin_db)
    assert len(watcher.matching(confirmation_to(csn))) == 1
    assert len(stack.smtp.mailbox.with_key(sent.data["notification_id"])) == 1


def _handled(port: int, topic: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith("renewals_messages_handled_total{") and f'topic="{topic}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


async def test_two_renewal_replicas_share_the_partitions_and_handle_nothing_twice(
    stack, upstream, watcher, admin_db
):
    second = stack.replica("renewal")
    second.start()
    try:
        await asyncio.to_thread(second.wait_ready)
        await asyncio.to_thread(stack.services["renewal"].wait_ready)
        first_port, second_port = stack.services["renewal"].port, second.port
        before = {p: _handled(p, "renewal.commands") for p in (first_port, second_port)}
        csns = [samples.unique_csn() for _ in range(24)]
        snapshots = await given_one_subscription_each(upstream, admin_db, csns)
        commands = [samples.renewal_request(s.csn, [s.subscription_id]) for s in snapshots]
        await upstream.send_many(
            topics.RENEWAL_COMMANDS, [samples.event(c, c.actor.csn) for c in commands]
        )

        renewed = await watcher.wait_for(
            lambda s: s.type == "subscription.renewed" and s.event["subject"] in set(csns), count=24
        )
        await stack.settled(admin_db)
        renewed = watcher.matching(
            lambda s: s.type == "subscription.renewed" and s.event["subject"] in set(csns)
        )
        assert sorted(r.data["subscription_id"] for r in renewed) == sorted(
            s.subscription_id for s in snapshots
        )
        for csn in csns:
            assert await charges_for(admin_db, csn) == 1
        after = {p: _handled(p, "renewal.commands") for p in (first_port, second_port)}
        assert all(after[p] > before[p] for p in after), (
            f"each replica handled a share: {before} → {after}"
        )
        assert json.dumps(sorted(set(csns))) == json.dumps(
            sorted({r.event["subject"] for r in renewed})
        )
    finally:
        second.stop()


async def test_settled_returns_only_once_the_last_effect_is_done(
    stack, upstream, watcher, admin_db
):
    """The tests' "nothing more will happen" signal (tests/scenarios/settled.py) waits for the
    whole chain — request, order, charge, renewal, email — without being told what to expect:
    nothing is awaited before it, and everything is there right after it."""
    csn = samples.unique_csn()
    [snapshot] = await given_one_subscription_each(upstream, admin_db, [csn])
    stack.smtp.mailbox.refuse_next = 1  # one retry on the way, after a backoff
    command = await request_renewal(upstream, csn, snapshot.subscription_id)

    await stack.settled(admin_db)
    assert await charges_for(admin_db, csn) == 1
    # The watcher reads the topics on its own: what is on them may reach it a little later.
    [renewed] = await watcher.wait_for(answering(command.request_id, "subscription.renewed"))
    assert len(stack.smtp.mailbox.with_key(f"order_confirmation:{renewed.data['order_id']}")) == 1
