"""The renewal lifecycle on test clocks, end to end: auto-renew switch, automatic renewal on the
renewal date, lapse, expiry — each CSN on a clock of its own, walked forward in seconds."""

from __future__ import annotations

from datetime import date, timedelta

from deploy.local import samples
from shared.contracts import topics
from shared.eligibility.dates import add_term
from tests.scenarios.steps import (
    about_subject,
    answering,
    charges_for,
    confirmation_to,
    given_a_subscription,
    given_product_priced,
    given_subscriptions,
    request_renewal,
    set_auto_renew,
    set_test_clock,
)

START = date.today() + timedelta(days=20)


async def test_auto_2_auto_4_auto_renew_switched_for_several_and_refused_for_manual_only_methods(
    stack, upstream, watcher, admin_db
):
    csn = samples.unique_csn()
    card = samples.subscription(f"S1-{csn}", csn, renewal_date=START)
    konbini = samples.subscription(
        f"S2-{csn}", csn, renewal_date=START, payment_type="convenience_store"
    )
    await given_subscriptions(upstream, admin_db, card, konbini)
    command = set_auto_renew(csn, [card.subscription_id, konbini.subscription_id], True)
    await upstream.send(topics.RENEWAL_COMMANDS, samples.event(command, csn))

    [changed] = await watcher.wait_for(answering(command.request_id, "auto_renew.changed"))
    assert changed.data["subscription_id"] == card.subscription_id and changed.data["enabled"]
    [refused] = await watcher.wait_for(answering(command.request_id, "renewal.rejected"))
    assert refused.data["subscription_id"] == konbini.subscription_id
    assert "MANUAL_RENEWAL_REQUIRED" in refused.data["reasons"]
    [completed] = await watcher.wait_for(answering(command.request_id, "bulk.completed"))
    assert (completed.data["succeeded"], completed.data["rejected"]) == (1, 1)
    assert await admin_db.fetchval(
        "SELECT auto_renew FROM renewal.subscriptions WHERE subscription_id = $1",
        card.subscription_id,
    )


async def test_auto_1_a_year_of_an_auto_renewing_subscription_walked_on_a_test_clock(
    stack, upstream, watcher, admin_db
):
    csn = samples.unique_csn()
    await given_product_priced(upstream, admin_db, csn)
    await given_a_subscription(upstream, admin_db, csn, renewal_date=START, auto_renew=True)

    await set_test_clock(upstream, csn, START - timedelta(days=1))
    await set_test_clock(upstream, csn, START)  # the renewal date: the engine renews it
    [renewed] = await watcher.wait_for(about_subject(csn, "subscription.renewed"))
    next_date = add_term(START, "annual")
    assert renewed.data["renewal_date"] == next_date.isoformat()
    assert renewed.data["request_id"] is None  # automatic
    await watcher.wait_for(confirmation_to(csn))

    await set_test_clock(
        upstream, csn, START + timedelta(days=200)
    )  # the rest of the year: nothing
    await set_test_clock(upstream, csn, next_date - timedelta(days=1))
    await stack.settled(admin_db)
    assert len(watcher.matching(about_subject(csn, "subscription.renewed"))) == 1
    assert await charges_for(admin_db, csn) == 1
    assert watcher.matching(about_subject(csn, "subscription.lapsed")) == []

    await set_test_clock(upstream, csn, next_date)  # a year later: renewed once more
    renewals = await watcher.wait_for(about_subject(csn, "subscription.renewed"), count=2)
    assert renewals[1].data["renewal_date"] == add_term(next_date, "annual").isoformat()
    assert await charges_for(admin_db, csn) == 2


async def test_life_2_life_3_a_failing_card_lapses_then_expires_and_renewal_is_refused(
    stack, upstream, watcher, admin_db
):
    csn = samples.unique_csn()
    await given_product_priced(upstream, admin_db, csn)
    snapshot = await given_a_subscription(
        upstream, admin_db, csn, renewal_date=START, auto_renew=True, payment_valid=False
    )

    await set_test_clock(upstream, csn, START)
    [lapsed] = await watcher.wait_for(about_subject(csn, "subscription.lapsed"))
    assert lapsed.data["renewal_date"] == START.isoformat()
    grace_ends = date.fromisoformat(lapsed.data["grace_ends"])
    assert grace_ends > START

    await set_test_clock(upstream, csn, grace_ends)  # the last day of grace: not yet expired
    await stack.settled(admin_db)
    assert watcher.matching(about_subject(csn, "subscription.expired")) == []
    await set_test_clock(upstream, csn, grace_ends + timedelta(days=1))
    [expired] = await watcher.wait_for(about_subject(csn, "subscription.expired"))
    assert expired.data["expired_on"] == (grace_ends + timedelta(days=1)).isoformat()

    command = await request_renewal(upstream, csn, snapshot.subscription_id)
    [refused] = await watcher.wait_for(answering(command.request_id, "renewal.rejected"))
    assert "EXPIRED" in refused.data["reasons"]
    assert await charges_for(admin_db, csn) == 0
    assert len(watcher.matching(about_subject(csn, "subscription.lapsed"))) == 1


async def test_a_test_clock_moves_only_that_customers_time(stack, upstream, watcher, admin_db):
    walked, other = samples.unique_csn(), samples.unique_csn()
    product = await given_product_priced(upstream, admin_db, walked)
    subscriptions = [
        samples.subscription(f"S-{csn}", csn, renewal_date=START, product_code=product)
        for csn in (walked, other)
    ]
    await given_subscriptions(upstream, admin_db, *subscriptions)
    await set_test_clock(upstream, walked, START + timedelta(days=1))
    await watcher.wait_for(about_subject(walked, "subscription.lapsed"))
    await stack.settled(admin_db)
    assert watcher.matching(about_subject(other, "subscription.lapsed")) == []
