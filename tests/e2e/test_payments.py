"""Payments end to end: manual-only methods paid by `payment.received` (AUTO-4), a declined
automatic charge retried on the policy's schedule, then lapsed, then expired (AUTO-1, LIFE-2/3),
and a charge that survives billing killed on either side of the provider call (issue 15)."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from aiokafka.errors import TopicAuthorizationFailedError

from deploy.local import samples
from deploy.local.client import UpstreamClient
from shared.contracts import topics
from shared.contracts.payment_events import PaymentReceived
from shared.messaging.principals import PRINCIPALS, Kind, writers_of
from tests.integration.helpers import end_offsets
from tests.scenarios.steps import (
    RENEWAL_DATE,
    about_subject,
    answering,
    charges_for,
    given_a_subscription,
    given_one_subscription_each,
    given_price_known,
    publish_price,
    request_renewal,
    set_test_clock,
    until,
)


async def _bank_transfer_order(upstream, watcher, admin_db, csn: str, **snapshot_fields):
    product = f"P-{csn}"
    await publish_price(upstream, product)
    await given_price_known(admin_db, product)
    snapshot = await given_a_subscription(
        upstream, admin_db, csn, payment_type="bank_transfer", **snapshot_fields
    )
    command = await request_renewal(upstream, csn, snapshot.subscription_id)
    [awaiting] = await watcher.wait_for(about_subject(csn, "payment.awaiting_manual"))
    return command, awaiting.data


def _received(awaiting: dict, **changes) -> PaymentReceived:
    fields = {
        "payment_reference": awaiting["payment_reference"],
        "order_id": awaiting["order_id"],
        "amount": Decimal(awaiting["amount"]),
        "currency": awaiting["currency"],
        **changes,
    }
    return PaymentReceived(**fields)


async def test_auto_4_a_bank_transfer_order_waits_and_renews_once_the_payment_arrives(
    stack, upstream, watcher, admin_db
):
    csn = samples.unique_csn()
    command, awaiting = await _bank_transfer_order(upstream, watcher, admin_db, csn)
    assert awaiting["amount"] == "420.00" and date.fromisoformat(awaiting["pay_by"]) > date.today()
    # Its email, from the event alone (issue 17 item 3): amount, reference, by when.
    body = await _email_body(stack, watcher, csn, "awaiting_manual_payment")
    assert awaiting["payment_reference"] in body and "420.00" in body
    await stack.settled(admin_db)
    assert watcher.matching(answering(command.request_id, "subscription.renewed")) == []

    wrong = _received(awaiting, amount=Decimal("400.00"), currency="EUR")
    await upstream.send(topics.PAYMENT_EVENTS, samples.event(wrong, csn))
    [rejected] = await watcher.wait_for(about_subject(csn, "payment.rejected"))
    assert rejected.data["reasons"] == ["AMOUNT_MISMATCH", "CURRENCY_MISMATCH"]
    unknown = _received(awaiting, order_id="no-such-order")
    await upstream.send(topics.PAYMENT_EVENTS, samples.event(unknown, csn))
    await watcher.wait_for(
        lambda s: (
            s.type == "payment.rejected"
            and s.data["reasons"] == ["UNKNOWN_ORDER"]
            and s.data["order_id"] == "no-such-order"
        )
    )
    assert await charges_for(admin_db, csn) == 0

    paid = _received(awaiting)
    await upstream.send(topics.PAYMENT_EVENTS, samples.event(paid, csn))
    [renewed] = await watcher.wait_for(answering(command.request_id, "subscription.renewed"))
    assert renewed.data["order_id"] == awaiting["order_id"]
    await upstream.send(topics.PAYMENT_EVENTS, samples.event(paid, csn))  # paid twice
    await stack.settled(admin_db)
    assert await charges_for(admin_db, csn) == 1
    assert len(watcher.matching(answering(command.request_id, "subscription.renewed"))) == 1


async def _email_body(stack, watcher, csn: str, kind: str) -> str:
    """The plain text of the CSN's email of `kind`, once SMTP took it (`email.sent`)."""

    def sent_to_csn(seen) -> bool:
        return (
            seen.type == "email.sent" and seen.event["subject"] == csn and seen.data["kind"] == kind
        )

    [sent] = await watcher.wait_for(sent_to_csn)
    key = sent.data["notification_id"]

    def with_key() -> list:
        # Not Mailbox.with_key: a key too long for one header line is folded onto the next
        # (services/notification/message.py), and the parsed value keeps the folding space.
        return [m for m in stack.mailbox.all() if str(m["X-Notification-Key"]).strip() == key]

    async def received() -> bool:
        return bool(with_key())

    await until(received, what=f"the SMTP server to hold {key}", timeout=10)
    [email] = with_key()
    return email.get_body(("plain",)).get_content()


async def test_issue_14_a_bank_transfer_is_due_from_the_csn_s_today_in_its_time_zone(
    stack, upstream, watcher, admin_db
):
    """DOMAIN.md: a customer's today is the date in its CSN's time zone. The order renewal asks
    for carries the zone; billing counts `pay_by` (14 days) from the date in Auckland — a day
    ahead of UTC from 11:00 UTC (NZDT) — not from the UTC date."""
    zone = ZoneInfo("Pacific/Auckland")
    csn = samples.unique_csn()
    today_before = datetime.now(zone).date()
    _, awaiting = await _bank_transfer_order(
        upstream, watcher, admin_db, csn, timezone="Pacific/Auckland"
    )
    today_after = datetime.now(zone).date()

    due_from = date.fromisoformat(awaiting["pay_by"]) - timedelta(days=14)
    assert due_from in {today_before, today_after}
    assert awaiting["csn"] == csn and awaiting["subscription_ids"] == [f"S-{csn}"]
    zone_held = await admin_db.fetchval(
        "SELECT time_zone FROM billing.csn_time_zones WHERE csn = $1", csn
    )
    assert zone_held == "Pacific/Auckland"


async def test_issue_16_a_forged_payment_for_someone_s_bank_transfer_order_is_refused(
    stack, upstream, watcher, admin_db, kafka_bootstrap
):
    """Everything a stranger can learn of a bank-transfer order (its id, reference, amount and
    currency, all in the customer's email) is not enough to settle it: any principal but the
    payment provider is refused by the broker on `payment.events`, nothing reaches the log, the
    order still awaits its money; the provider's own message then renews it (issue 16 item 4)."""
    csn = samples.unique_csn()
    command, awaiting = await _bank_transfer_order(upstream, watcher, admin_db, csn)
    forged = samples.event(_received(awaiting), csn)
    log_before = await end_offsets(kafka_bootstrap, topics.PAYMENT_EVENTS.name)

    intruders = [
        p.name
        for p in PRINCIPALS
        if p.kind is Kind.UPSTREAM and p.name not in writers_of(topics.PAYMENT_EVENTS.name)
    ]
    assert {"portal", "sales", "subscriptions", "partner-P-1001"} <= set(intruders)
    for intruder in intruders:
        async with UpstreamClient(kafka_bootstrap, principal=intruder) as client:
            with pytest.raises(TopicAuthorizationFailedError):
                await asyncio.wait_for(client.send(topics.PAYMENT_EVENTS, forged), 20)

    assert await end_offsets(kafka_bootstrap, topics.PAYMENT_EVENTS.name) == log_before
    status = await admin_db.fetchval(
        "SELECT status FROM billing.orders WHERE order_id = $1", awaiting["order_id"]
    )
    assert status == "awaiting_manual"
    assert await charges_for(admin_db, csn) == 0

    await upstream.send(topics.PAYMENT_EVENTS, forged)  # the same message, from the provider
    [renewed] = await watcher.wait_for(answering(command.request_id, "subscription.renewed"))
    assert renewed.data["order_id"] == awaiting["order_id"]
    assert await charges_for(admin_db, csn) == 1


async def test_auto_1_a_declined_card_is_retried_then_the_subscription_lapses_and_expires(
    stack, upstream, watcher, admin_db
):
    csn = samples.unique_csn()
    product = f"P-{csn}"
    # The payment simulator declines amounts ending in .13 (insufficient funds).
    await publish_price(upstream, product, renewal_price="420.13")
    await given_price_known(admin_db, product)
    await given_a_subscription(upstream, admin_db, csn, auto_renew=True)

    await set_test_clock(upstream, csn, RENEWAL_DATE)
    [failed] = await watcher.wait_for(about_subject(csn, "payment.failed"))
    assert failed.data["next_retry_on"] == (RENEWAL_DATE + timedelta(days=1)).isoformat()
    # Its email, from the event alone (issue 17 item 3): the order's amount, the next try.
    assert "420.13" in await _email_body(stack, watcher, csn, "payment_failed")
    [lapsed] = await watcher.wait_for(about_subject(csn, "subscription.lapsed"))
    expected_retries = [(1, 3), (3, 7), (7, None)]  # tried again 1, 3 and 7 days after
    for count, (day, next_try) in enumerate(expected_retries, start=2):
        await set_test_clock(upstream, csn, RENEWAL_DATE + timedelta(days=day))
        failures = await watcher.wait_for(about_subject(csn, "payment.failed"), count=count)
        expected = (RENEWAL_DATE + timedelta(days=next_try)).isoformat() if next_try else None
        assert failures[-1].data["next_retry_on"] == expected
    await set_test_clock(upstream, csn, RENEWAL_DATE + timedelta(days=20))
    await stack.settled(admin_db)
    assert len(watcher.matching(about_subject(csn, "payment.failed"))) == 4  # no fifth try
    grace_ends = date.fromisoformat(lapsed.data["grace_ends"])
    await set_test_clock(upstream, csn, grace_ends + timedelta(days=1))
    await watcher.wait_for(about_subject(csn, "subscription.expired"))
    assert await charges_for(admin_db, csn) == 0
    assert len(watcher.matching(about_subject(csn, "subscription.lapsed"))) == 1


async def _money_taken(admin_db, csn: str) -> int:
    """Successful charges in the provider's own ledger for the CSN's orders."""
    return await admin_db.fetchval(
        "SELECT count(*) FROM billing.simulated_provider_charges c"
        " JOIN billing.orders o ON o.order_id = c.idempotency_key"
        " WHERE o.csn = $1 AND c.outcome = 'succeeded'",
        csn,
    )


async def test_issue_15_billing_killed_after_the_provider_charged_charges_once_and_renews_once(
    stack, upstream, watcher, admin_db
):
    """The crash before the charge (`billing_before_charge`: the provider has no record, the
    order is charged on restart with the same key) is proven in-process in
    tests/integration/test_billing_service.py."""
    csn = samples.unique_csn()
    [snapshot] = await given_one_subscription_each(upstream, admin_db, [csn])
    await stack.armed("billing", "billing_after_charge")
    command = await request_renewal(upstream, csn, snapshot.subscription_id)

    # Killed with the attempt committed and the money taken, before the outcome was recorded:
    # the order is `charging`, with no payment row.
    await stack.killed_at_its_fault("billing")
    [order] = await admin_db.fetch(
        "SELECT order_id, status, charge_status FROM billing.orders WHERE csn = $1", csn
    )
    assert (order["status"], order["charge_status"]) == ("placed", "charging")
    assert await _money_taken(admin_db, csn) == 1
    assert await charges_for(admin_db, csn) == 0
    await stack.restart("billing")

    # On restart the attempt is reconciled with the provider's record of the order id.
    [renewed] = await watcher.wait_for(answering(command.request_id, "subscription.renewed"))
    assert renewed.data["order_id"] == order["order_id"]
    await stack.settled(admin_db)
    assert await _money_taken(admin_db, csn) == 1
    assert await charges_for(admin_db, csn) == 1
    status = await admin_db.fetchval(
        "SELECT status FROM billing.orders WHERE order_id = $1", order["order_id"]
    )
    assert status == "succeeded"
    assert len(watcher.matching(about_subject(csn, "payment.succeeded"))) == 1
    assert len(watcher.matching(answering(command.request_id, "subscription.renewed"))) == 1
