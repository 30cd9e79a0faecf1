"""Customer emails end to end, with the real SMTP server: language and formats, SMTP retries,
a sender killed after SMTP accepted or mid-claim (issue 15 item 4), renewal reminders on test
clocks (NOTE-1), notices; confirmations that need nothing of billing's (issue 17 item 3)."""

from __future__ import annotations

import asyncio
import urllib.request
from collections import Counter
from datetime import date, timedelta

from deploy.local import samples
from shared.contracts import topics
from shared.contracts.clock_commands import SetTestClock
from shared.contracts.common import Actor
from shared.contracts.renewal_commands import SetAutoRenew
from tests.scenarios.steps import (
    RENEWAL_DATE,
    about_subject,
    answering,
    confirmation_to,
    given_a_subscription,
    given_price_known,
    given_subscriptions,
    publish_price,
    request_renewal,
    until,
)


async def _renewal(stack, upstream, watcher, admin_db, csn: str, **subscription):
    product = f"P-{csn}"
    await publish_price(
        upstream, product, currency="EUR", list_price="466.00", renewal_price="420.00"
    )
    await given_price_known(admin_db, product)
    snapshot = await given_a_subscription(
        upstream, admin_db, csn, currency="EUR", country="FR", **subscription
    )
    command = await request_renewal(upstream, csn, snapshot.subscription_id)
    await watcher.wait_for(answering(command.request_id, "subscription.renewed"))
    return snapshot


async def test_note_2_a_renewal_confirmation_in_french_with_french_money_and_dates(
    stack, upstream, watcher, admin_db
):
    csn = samples.unique_csn()
    snapshot = await _renewal(stack, upstream, watcher, admin_db, csn, seats=3, locale="fr-FR")
    [sent] = await watcher.wait_for(confirmation_to(csn))
    assert sent.data["locale"] == "fr-FR" and sent.data["kind"] == "order_confirmation"
    [email] = stack.smtp.mailbox.with_key(sent.data["notification_id"])
    assert email["Subject"].startswith("Votre renouvellement est confirmé : AutoCAD LT")
    body = email.get_body(("plain",)).get_content()
    assert "1\u202f260,00\u00a0€" in body  # 3 × 420.00 EUR, French formats
    assert "prochain renouvellement le" in body and email["To"] == snapshot.buyer.email


async def test_an_smtp_server_that_refuses_twice_then_accepts_gets_one_email(
    stack, upstream, watcher, admin_db
):
    csn = samples.unique_csn()
    stack.smtp.mailbox.refuse_next = 2  # 451 twice: temporary, retried with backoff
    await _renewal(stack, upstream, watcher, admin_db, csn)
    [sent] = await watcher.wait_for(confirmation_to(csn))
    await stack.settled(admin_db)
    assert len(stack.smtp.mailbox.with_key(sent.data["notification_id"])) == 1
    assert len(watcher.matching(confirmation_to(csn))) == 1
    assert stack.smtp.mailbox.refuse_next == 0


async def _auto_renew_notices_queued_while_notification_is_down(
    stack, upstream, watcher, admin_db, count: int
) -> tuple[str, list[str]]:
    """`count` emails of one customer, queued in one transaction when notification starts
    again: its sender's first claim holds them all."""
    csn = samples.unique_csn()
    snapshots = [
        samples.subscription(f"S-{csn}-{n}", csn, renewal_date=RENEWAL_DATE) for n in range(count)
    ]
    await given_subscriptions(upstream, admin_db, *snapshots)
    await asyncio.to_thread(stack.services["notification"].stop)
    switch = SetAutoRenew(
        request_id=f"ar-{csn}",
        actor=Actor(user_id=f"{csn}-buyer", csn=csn),
        subscription_ids=[s.subscription_id for s in snapshots],
        enabled=False,
    )
    await upstream.send(topics.RENEWAL_COMMANDS, samples.event(switch, csn))
    await watcher.wait_for(about_subject(csn, "auto_renew.changed"), count=count)
    return csn, [f"auto_renew_changed:{s.subscription_id}:ar-{csn}" for s in snapshots]


def _duplicates(stack) -> int:
    return sum(
        n - 1 for n in Counter(m["X-Notification-Key"] for m in stack.mailbox.all()).values()
    )


async def _killed_at(stack, fault: str) -> None:
    """Notification started with `fault` armed, killed there, then started again. With one
    sender marking two emails at a time: the bound is the emails accepted since a sender's last
    marks (README, "Emails"), and another sender of the same process may hold part of the
    emails when the consumer queued them in two batches — these tests count the killed
    sender's own window exactly."""
    notification = stack.services["notification"]
    notification.start(
        {
            "RENEWALS_FAULTS": f'["{fault}"]',
            "RENEWALS_NOTIFICATION_SENDERS": "1",
            "RENEWALS_NOTIFICATION_MARK_EVERY": "2",
        }
    )
    assert await asyncio.to_thread(notification.process.wait, 30) == -9
    await stack.restart("notification")


async def test_issue_15_4_killed_after_smtp_accepted_an_email_of_a_claim_one_duplicate(
    stack, upstream, watcher, admin_db
):
    """SIGKILLed between SMTP's acceptance of the first email of a claim of four and its mark:
    that one email goes out once more when the claim's lease (3 s here) expires — within the
    bound of the emails accepted since the last marks (README, "Exactly once") — the three
    others once; `email.sent` is announced once for each."""
    csn, keys = await _auto_renew_notices_queued_while_notification_is_down(
        stack, upstream, watcher, admin_db, count=4
    )
    duplicates = _duplicates(stack)
    await _killed_at(stack, "after_smtp_accept")
    sent = await watcher.wait_for(about_subject(csn, "email.sent"), count=4)
    assert sorted(s.data["notification_id"] for s in sent) == sorted(keys)
    assert all(stack.mailbox.with_key(key) for key in keys)
    assert _duplicates(stack) == duplicates + 1


async def test_issue_15_4_killed_mid_claim_after_its_first_email_was_marked_no_duplicate(
    stack, upstream, watcher, admin_db
):
    """SIGKILLed after the first two emails of a claim of four were accepted and marked sent
    (marked two at a time): the two others go out once the lease expires, and nothing goes
    twice."""
    csn, keys = await _auto_renew_notices_queued_while_notification_is_down(
        stack, upstream, watcher, admin_db, count=4
    )
    duplicates = _duplicates(stack)
    await _killed_at(stack, "sender_mid_claim")
    sent = await watcher.wait_for(about_subject(csn, "email.sent"), count=4)
    assert sorted(s.data["notification_id"] for s in sent) == sorted(keys)
    assert all(len(stack.mailbox.with_key(key)) == 1 for key in keys)
    assert _duplicates(stack) == duplicates


def _reminders(watcher, csn: str) -> list[int]:
    return sorted(
        int(s.data["notification_id"].rsplit(":", 1)[1])
        for s in watcher.matching(about_subject(csn, "email.sent"))
        if s.data["kind"] == "renewal_reminder"
    )


async def _clock(upstream, csn: str, day: date) -> None:
    await upstream.send(topics.CLOCK_COMMANDS, samples.event(SetTestClock(csn=csn, today=day), csn))


async def test_note_1_reminders_90_30_and_7_days_before_on_a_test_clock(
    stack, upstream, watcher, admin_db
):
    csn = samples.unique_csn()
    renewal_date = date.today() + timedelta(days=120)
    # Auto-renewing: it gets reminders, and no automatic quote (QUO-7) that would stop them.
    snapshot = samples.subscription(f"S-{csn}", csn, renewal_date=renewal_date, auto_renew=True)
    await given_subscriptions(upstream, admin_db, snapshot)
    await _clock(upstream, csn, renewal_date - timedelta(days=91))
    await stack.settled(admin_db)
    assert _reminders(watcher, csn) == []  # 91 days before: not yet
    for days, expected in ((90, [90]), (30, [30, 90]), (7, [7, 30, 90])):
        await _clock(upstream, csn, renewal_date - timedelta(days=days))
        wanted = len(expected)
        await watcher.wait_for(lambda _, n=wanted: len(_reminders(watcher, csn)) >= n, timeout=20)
        assert _reminders(watcher, csn) == expected
    await _clock(upstream, csn, renewal_date - timedelta(days=1))
    await stack.settled(admin_db)
    assert _reminders(watcher, csn) == [7, 30, 90]  # once each
    [reminder] = [
        m
        for m in stack.smtp.mailbox.to(snapshot.buyer.email)
        if "renewal_reminder" in m["X-Notification-Key"] and m["X-Notification-Key"].endswith(":30")
    ]
    assert (
        reminder["Subject"]
        == f"AutoCAD LT renews on {renewal_date:%B} {renewal_date.day}, {renewal_date.year}"
    )


async def test_note_1_a_late_subscription_gets_only_the_reminders_ahead_and_a_partner_none(
    stack, upstream, watcher, admin_db
):
    late_csn, partner_csn = samples.unique_csn(), samples.unique_csn()
    renewal_date = date.today() + timedelta(days=10)  # seen 10 days before its date
    late = samples.subscription(
        f"S-{late_csn}", late_csn, renewal_date=renewal_date, auto_renew=True
    )
    partner = samples.subscription(
        f"S-{partner_csn}",
        partner_csn,
        renewal_date=renewal_date,
        purchase_method="partner",
        partner_csn="PARTNER-1",
    )
    await given_subscriptions(upstream, admin_db, late, partner)
    await stack.settled(admin_db)
    assert _reminders(watcher, late_csn) == []  # the 90- and 30-day reminders are past
    for csn in (late_csn, partner_csn):
        await _clock(upstream, csn, renewal_date - timedelta(days=7))
    await watcher.wait_for(lambda s: _reminders(watcher, late_csn) == [7], timeout=20)
    await stack.settled(admin_db)
    assert _reminders(watcher, partner_csn) == []  # the partner reminds (policy)


async def test_lapse_and_auto_renew_notices_reach_the_buyer(stack, upstream, watcher, admin_db):
    csn = samples.unique_csn()
    snapshot = samples.subscription(f"S-{csn}", csn, renewal_date=RENEWAL_DATE, locale="fr-FR")
    await given_subscriptions(upstream, admin_db, snapshot)
    switch = SetAutoRenew(
        request_id=f"ar-{csn}",
        actor=Actor(user_id=f"{csn}-buyer", csn=csn),
        subscription_ids=[snapshot.subscription_id],
        enabled=False,
    )
    await upstream.send(topics.RENEWAL_COMMANDS, samples.event(switch, csn))
    await _clock(upstream, csn, RENEWAL_DATE)
    await watcher.wait_for(about_subject(csn, "subscription.lapsed"))
    sent = await watcher.wait_for(
        lambda s: (
            s.type == "email.sent"
            and s.event["subject"] == csn
            and s.data["kind"] in ("lapsed", "auto_renew_changed")
        ),
        count=2,
    )
    subjects = {s.data["kind"]: s.data["subject"] for s in sent}
    assert subjects["lapsed"] == "Votre abonnement AutoCAD LT a expiré"
    assert "désactivé" in subjects["auto_renew_changed"]


def _order_placed_skipped(stack) -> float:
    """How many `order.placed` notification's consumer skipped by their type, unparsed."""
    port = stack.services["notification"].port
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        for line in response.read().decode().splitlines():
            if (
                line.startswith("renewals_messages_skipped_total{")
                and 'topic="billing.events"' in line
                and 'type="order.placed"' in line
            ):
                return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_issue_17_3_manual_and_automatic_confirmations_carry_their_total_without_billing(
    stack, upstream, watcher, admin_db
):
    """Issue 17 item 3, issue 19 items 1 and 3: an order confirmation is made from
    `subscription.renewed` alone. Notification keeps nothing of billing's orders (no table) and
    skips their `order.placed` by type, unparsed (a positive signal: its skip counter counts
    them); a manual renewal and an automatic one (the due-date engine, on a test clock) are both
    confirmed, each with its order's total."""
    assert await admin_db.fetchval("SELECT to_regclass('notification.orders')") is None
    skipped_before = _order_placed_skipped(stack)
    manual_csn, automatic_csn = samples.unique_csn(), samples.unique_csn()
    product = f"P-{automatic_csn}"
    await publish_price(upstream, product, currency="EUR", renewal_price="420.00")
    await given_price_known(admin_db, product)
    due = date.today() + timedelta(days=20)
    automatic = samples.subscription(
        f"S-{automatic_csn}",
        automatic_csn,
        renewal_date=due,
        product_code=product,
        currency="EUR",
        seats=2,
        auto_renew=True,
    )
    await given_subscriptions(upstream, admin_db, automatic)
    await _clock(upstream, automatic_csn, due - timedelta(days=1))
    await _renewal(stack, upstream, watcher, admin_db, manual_csn, seats=3)
    await _clock(upstream, automatic_csn, due)  # the renewal date: the engine renews it
    confirmations = [
        (await watcher.wait_for(confirmation_to(csn), timeout=20))[0]
        for csn in (manual_csn, automatic_csn)
    ]

    async def both_skipped() -> bool:
        return _order_placed_skipped(stack) >= skipped_before + 2

    await until(both_skipped, what="notification to skip both orders' order.placed")
    [manual, automatic_email] = [
        stack.mailbox.with_key(sent.data["notification_id"])[0] for sent in confirmations
    ]
    assert "Total (excluding tax): €1,260.00" in manual.get_body(("plain",)).get_content()
    assert "Total (excluding tax): €840.00" in automatic_email.get_body(("plain",)).get_content()
    [renewed] = watcher.matching(about_subject(automatic_csn, "subscription.renewed"))
    assert renewed.data["request_id"] is None  # automatic
    assert (renewed.data["order_total"], renewed.data["currency"]) == ("840.00", "EUR")
    assert renewed.data["renewed_in_order"] == 1
