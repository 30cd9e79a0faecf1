"""One state, followed by everyone (issue 14 item 2), on the real broker: renewal publishes the
whole state of a subscription on `subscription.state` after every change; quote and
notification follow it, so an automatic quote no longer stands in the way of an auto-renewal
switched on, and reminders say what will really happen (auto-renew off → the manual options;
the next term's price)."""

from __future__ import annotations

from datetime import date, timedelta

from deploy.local import samples
from shared.contracts import topics
from shared.contracts.common import Actor
from shared.contracts.renewal_commands import ChangeRenewalTerms
from shared.eligibility.dates import add_term
from tests.scenarios.steps import (
    about_subject,
    answering,
    charges_for,
    given_a_subscription,
    given_product_priced,
    set_auto_renew,
    set_test_clock,
    state_of,
)


async def test_issue_14_auto_1_auto_5_an_automatic_quote_then_auto_renew_on_renews_on_the_date(
    stack, upstream, watcher, admin_db
):
    """The issue's first finding: an annual subscription gets its automatic quote 30 days out
    (QUO-7); the buyer then switches auto-renew on; on the renewal date it is renewed, not
    lapsed — the automatic quote changes nothing, so it never holds the renewal (AUTO-5)."""
    csn = samples.unique_csn()
    await given_product_priced(upstream, admin_db, csn)
    renewal_date = date.today() + timedelta(days=45)
    snapshot = await given_a_subscription(
        upstream, admin_db, csn, renewal_date=renewal_date, auto_renew=False
    )
    await set_test_clock(upstream, csn, renewal_date - timedelta(days=30))
    [sent] = await watcher.wait_for(about_subject(csn, "quote.sent"))
    assert sent.data["request_id"] is None  # the automatic quote
    quote_number = sent.data["quote_number"]
    await watcher.wait_for(state_of(csn, open_quote=quote_number, auto_renew=False))

    switch = set_auto_renew(csn, [snapshot.subscription_id], True)
    await upstream.send(topics.RENEWAL_COMMANDS, samples.event(switch, csn))
    await watcher.wait_for(answering(switch.request_id, "auto_renew.changed"))
    [on] = await watcher.wait_for(state_of(csn, auto_renew=True))
    assert (on.data["open_quote"], on.data["status"]) == (quote_number, "active")
    await stack.settled(admin_db)  # quote followed the state too
    assert await admin_db.fetchval(
        "SELECT (state ->> 'auto_renew')::boolean FROM quote.subscription_states"
        " WHERE subscription_id = $1",
        snapshot.subscription_id,
    )

    await set_test_clock(upstream, csn, renewal_date)
    [renewed] = await watcher.wait_for(about_subject(csn, "subscription.renewed"))
    assert renewed.data["request_id"] is None  # renewed automatically
    assert renewed.data["renewal_date"] == add_term(renewal_date, "annual").isoformat()
    await watcher.wait_for(
        state_of(csn, renewal_date=add_term(renewal_date, "annual").isoformat(), pending_order=None)
    )
    await stack.settled(admin_db)
    assert watcher.matching(about_subject(csn, "subscription.lapsed")) == []
    assert await charges_for(admin_db, csn) == 1


async def test_issue_14_quo_7_auto_renew_switched_on_before_the_quote_day_gets_no_automatic_quote(
    stack, upstream, watcher, admin_db
):
    """QUO-7 quotes only what will not renew automatically: the quote service learns from the
    state that the buyer switched auto-renew on (the subscription system's snapshot still says
    off), and sends no automatic quote on the quote day."""
    csn = samples.unique_csn()
    await given_product_priced(upstream, admin_db, csn)
    renewal_date = date.today() + timedelta(days=45)
    snapshot = await given_a_subscription(
        upstream, admin_db, csn, renewal_date=renewal_date, auto_renew=False
    )
    await set_test_clock(upstream, csn, renewal_date - timedelta(days=31))
    switch = set_auto_renew(csn, [snapshot.subscription_id], True)
    await upstream.send(topics.RENEWAL_COMMANDS, samples.event(switch, csn))
    await watcher.wait_for(state_of(csn, auto_renew=True))
    await stack.settled(admin_db)

    await set_test_clock(upstream, csn, renewal_date - timedelta(days=30))
    await stack.settled(admin_db)
    assert (
        await admin_db.fetchval(
            "SELECT automatic_quote_for FROM quote.subscriptions WHERE subscription_id = $1",
            snapshot.subscription_id,
        )
        == renewal_date
    )  # the quote day was looked at…
    assert watcher.matching(about_subject(csn, "quote.sent")) == []  # …and nothing was sent


async def test_issue_14_note_1_a_reminder_after_auto_renew_off_gives_the_manual_option_at_the_next_terms_price(
    stack, upstream, watcher, admin_db
):
    """Reminders say what will really happen: auto-renew switched off → renew it online (not
    "renews automatically"); 3 seats set for the next renewal (SEAT-2) → 3 × 420.00."""
    csn = samples.unique_csn()
    await given_product_priced(upstream, admin_db, csn)
    renewal_date = date.today() + timedelta(days=120)
    snapshot = await given_a_subscription(
        upstream, admin_db, csn, renewal_date=renewal_date, auto_renew=True
    )
    await set_test_clock(upstream, csn, renewal_date - timedelta(days=95))  # before any reminder
    off = set_auto_renew(csn, [snapshot.subscription_id], False)
    await upstream.send(topics.RENEWAL_COMMANDS, samples.event(off, csn))
    seats = ChangeRenewalTerms(
        request_id=f"seats-{csn}",
        actor=Actor(user_id=f"{csn}-buyer", csn=csn),
        subscription_id=snapshot.subscription_id,
        seats=3,
    )
    await upstream.send(topics.RENEWAL_COMMANDS, samples.event(seats, csn))
    await watcher.wait_for(answering(seats.request_id, "renewal_terms.updated"))
    await watcher.wait_for(state_of(csn, auto_renew=False, next_seats=3))
    await stack.settled(admin_db)  # notification followed the state

    await set_test_clock(upstream, csn, renewal_date - timedelta(days=90))
    [reminder] = await watcher.wait_for(
        lambda s: (
            s.type == "email.sent"
            and s.event["subject"] == csn
            and s.data["kind"] == "renewal_reminder"
            and s.data["notification_id"].endswith(":90")
        ),
        timeout=20,
    )
    [email] = stack.smtp.mailbox.with_key(reminder.data["notification_id"])
    body = email.get_body(("plain",)).get_content()
    assert "renews automatically" not in body
    assert "Renew it online" in body
    assert "$1,260.00" in body  # the next renewal's 3 seats at the renewal price
