"""The first flow end to end, through Kafka only, every service its own process:
subscription and price in → renewal requested by the buyer → order, charge → renewed → email.
"""

from __future__ import annotations

from deploy.local import samples
from shared.contracts import topics
from tests.scenarios.steps import (
    RENEWAL_DATE,
    about_subject,
    answering,
    charges_for,
    given_a_subscription,
    given_price_known,
    given_subscriptions,
    publish_price,
    request_renewal,
)


async def test_role_1_someone_else_than_the_buyer_is_refused(stack, upstream, watcher, admin_db):
    csn = samples.unique_csn()
    product = f"P-{csn}"
    await publish_price(upstream, product)
    snapshot = await given_a_subscription(upstream, admin_db, csn)

    command = samples.renewal_request(csn, [snapshot.subscription_id], user_id="someone-else")
    await upstream.send(topics.RENEWAL_COMMANDS, samples.event(command, csn))

    [rejected] = await watcher.wait_for(answering(command.request_id, "renewal.rejected"))
    assert rejected.data["subscription_id"] == snapshot.subscription_id
    assert "NOT_AUTHORIZED" in rejected.data["reasons"]
    assert await charges_for(admin_db, csn) == 0


async def test_unknown_subscription_and_missing_price_are_refused_with_reasons(
    stack, upstream, watcher, admin_db
):
    csn = samples.unique_csn()
    unpriced = samples.subscription(
        f"S-{csn}", csn, renewal_date=RENEWAL_DATE, product_code=f"NOPRICE-{csn}"
    )
    await given_subscriptions(upstream, admin_db, unpriced)

    command = await request_renewal(upstream, csn, unpriced.subscription_id, f"MISSING-{csn}")

    await watcher.wait_for(answering(command.request_id, "bulk.accepted"))
    rejections = await watcher.wait_for(answering(command.request_id, "renewal.rejected"), count=2)
    reasons = {r.data["subscription_id"]: r.data["reasons"] for r in rejections}
    assert reasons == {
        unpriced.subscription_id: ["NO_PRICE"],
        # Issue 16 item 3: to a self-service user, an id that does not exist answers as
        # another customer's does — no answer tells which ids exist.
        f"MISSING-{csn}": ["NOT_AUTHORIZED"],
    }
    [completed] = await watcher.wait_for(answering(command.request_id, "bulk.completed"))
    assert completed.data["succeeded"] == 0 and completed.data["rejected"] == 2


async def test_payment_method_marked_invalid_fails_the_payment_and_refuses_the_renewal(
    stack, upstream, watcher, admin_db
):
    csn = samples.unique_csn()
    product = f"P-{csn}"
    await publish_price(upstream, product)
    snapshot = samples.subscription(
        f"S-{csn}", csn, renewal_date=RENEWAL_DATE, product_code=product, payment_valid=False
    )
    await given_price_known(admin_db, product)
    await given_subscriptions(upstream, admin_db, snapshot)

    command = await request_renewal(upstream, csn, snapshot.subscription_id)

    [rejected] = await watcher.wait_for(answering(command.request_id, "renewal.rejected"))
    assert rejected.data["reasons"] == ["PAYMENT_METHOD_INVALID"]
    [failed] = await watcher.wait_for(about_subject(csn, "payment.failed"))
    assert "not valid" in failed.data["reason"]
    await stack.settled(admin_db)
    assert watcher.matching(about_subject(csn, "subscription.renewed")) == []
