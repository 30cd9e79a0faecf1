"""Renewal by quote end to end: requested, sent and emailed, accepted and paid, expired,
cancelled (QUO-1..8)."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from decimal import Decimal

from deploy.local import samples
from shared.contracts import topics
from shared.contracts.common import Actor
from shared.contracts.quote_commands import CancelQuote, QuoteChanges, RequestQuote
from shared.eligibility.dates import add_term
from tests.scenarios.steps import (
    RENEWAL_DATE,
    about_subject,
    accept_quote,
    acceptance,
    answering,
    buyer,
    charges_for,
    command_answered,
    given_a_subscription,
    given_product_priced,
    given_subscriptions,
    quote_sent,
    request_quote,
    set_test_clock,
    until,
)


async def _quoted(upstream, admin_db, csn: str, *snapshots, **request) -> RequestQuote:
    """The snapshots stored, then a renewal quote of them asked for (request_quote's options)."""
    await given_subscriptions(upstream, admin_db, *snapshots)
    return await request_quote(upstream, csn, *(s.subscription_id for s in snapshots), **request)


async def _priced(upstream, admin_db, csn: str) -> str:
    """Annual USD and EUR prices and a three-year USD price."""
    return await given_product_priced(
        upstream,
        admin_db,
        csn,
        {},
        {"currency": "EUR", "list_price": "433.00", "renewal_price": "390.00"},
        {"term": "three_year", "list_price": "1310.00", "renewal_price": "1179.00"},
    )


async def test_quo_2_quo_8_a_bulk_quote_over_two_currencies_makes_two_quotes_and_two_emails(
    stack, upstream, watcher, admin_db
):
    csn = samples.unique_csn()
    product = await _priced(upstream, admin_db, csn)
    usd = samples.subscription(
        f"S1-{csn}", csn, renewal_date=RENEWAL_DATE, product_code=product, seats=2
    )
    eur = samples.subscription(
        f"S2-{csn}",
        csn,
        renewal_date=RENEWAL_DATE,
        product_code=product,
        currency="EUR",
        country="FR",
    )
    command = await _quoted(upstream, admin_db, csn, usd, eur, recipients=("cfo@example.com",))

    sent = await watcher.wait_for(answering(command.request_id, "quote.sent"), count=2)
    by_currency = {s.data["currency"]: s.data for s in sent}
    assert by_currency["USD"]["total"] == "840.00" and by_currency["EUR"]["total"] == "390.00"
    assert all(
        s["quote_number"].startswith(f"Q-{date.today().year}-") for s in by_currency.values()
    )
    assert by_currency["USD"]["recipients"] == [usd.buyer.email, "cfo@example.com"]
    emails = await watcher.wait_for(
        lambda s: (
            s.type == "email.sent" and s.data["kind"] == "quote" and s.event["subject"] == csn
        ),
        count=2,
    )
    for email in emails:
        quote = next(
            q for q in by_currency.values() if q["quote_number"] == email.data["quote_number"]
        )
        [message] = stack.smtp.mailbox.with_key(f"quote:{quote['quote_number']}")
        assert quote["quote_number"] in message["Subject"]
        assert "cfo@example.com" in message["To"]


async def test_quo_8_a_quote_accepted_and_paid_renews_with_its_term_and_seats_once(
    stack, upstream, watcher, admin_db
):
    csn = samples.unique_csn()
    await _priced(upstream, admin_db, csn)
    snapshot = await given_a_subscription(upstream, admin_db, csn, seats=4)
    sent = await quote_sent(
        upstream,
        watcher,
        csn,
        snapshot.subscription_id,
        changes=QuoteChanges(term="three_year", seats=2),
    )
    assert Decimal(sent.data["total"]) == Decimal("2358.00")  # 2 × 1,179.00 (PRICE-2)

    accept, again = (acceptance(csn, sent.data["quote_number"]) for _ in range(2))
    await upstream.send_many(
        topics.QUOTE_COMMANDS, [samples.event(accept, csn), samples.event(again, csn)]
    )
    [paid] = await watcher.wait_for(about_subject(csn, "quote.paid"))
    [renewed] = await watcher.wait_for(about_subject(csn, "subscription.renewed"))
    assert (renewed.data["term"], renewed.data["seats"]) == ("three_year", 2)
    assert renewed.data["renewal_date"] == add_term(RENEWAL_DATE, "three_year").isoformat()
    assert renewed.data["order_id"] == paid.data["order_id"]
    await stack.settled(admin_db)
    assert await charges_for(admin_db, csn) == 1
    assert len(watcher.matching(about_subject(csn, "subscription.renewed"))) == 1


async def test_quo_8_a_quote_left_to_expire_is_expired_and_can_no_longer_be_accepted(
    stack, upstream, watcher, admin_db
):
    csn = samples.unique_csn()
    await _priced(upstream, admin_db, csn)
    snapshot = await given_a_subscription(upstream, admin_db, csn)
    sent = await quote_sent(upstream, watcher, csn, snapshot.subscription_id)
    expires_on = date.fromisoformat(sent.data["expires_on"])

    await set_test_clock(upstream, csn, expires_on + timedelta(days=1))
    await watcher.wait_for(about_subject(csn, "quote.expired"))
    rejected = await accept_quote(
        upstream, watcher, csn, sent.data["quote_number"], answer="quote.rejected"
    )
    assert rejected.data["reasons"] == ["QUOTE_EXPIRED"]
    assert await charges_for(admin_db, csn) == 0


async def test_quo_5_a_quote_is_cancelled_by_sales_but_not_self_service(
    stack, upstream, watcher, admin_db
):
    csn = samples.unique_csn()
    await _priced(upstream, admin_db, csn)
    snapshot = await given_a_subscription(upstream, admin_db, csn)
    sent = await quote_sent(upstream, watcher, csn, snapshot.subscription_id)
    number = sent.data["quote_number"]

    by_buyer = CancelQuote(
        request_id=f"cancel-self-{csn}",
        actor=buyer(csn),
        channel="self_service",
        quote_number=number,
    )
    by_sales = CancelQuote(
        request_id=f"cancel-sales-{csn}",
        actor=Actor(user_id="rep-1", csn=csn),
        channel="sales",
        quote_number=number,
    )
    refused = await command_answered(upstream, watcher, by_buyer, "quote.rejected")
    assert refused.data["reasons"] == ["QUOTE_CANCELLATION_NOT_SELF_SERVICE"]
    cancelled = await command_answered(upstream, watcher, by_sales, "quote.cancelled")
    assert cancelled.data["quote_number"] == number


async def test_quo_7_an_automatic_quote_30_days_before_once_with_two_replicas(
    stack, upstream, watcher, admin_db
):
    csn = samples.unique_csn()
    await _priced(upstream, admin_db, csn)
    renewal_date = date.today() + timedelta(days=45)
    snapshot = await given_a_subscription(upstream, admin_db, csn, renewal_date=renewal_date)
    second = stack.replica("quote")
    second.start()
    try:
        await asyncio.to_thread(second.wait_ready)
        await set_test_clock(upstream, csn, renewal_date - timedelta(days=31))
        await stack.settled(admin_db)
        assert watcher.matching(about_subject(csn, "quote.sent")) == []  # 31 days before: not yet
        await set_test_clock(upstream, csn, renewal_date - timedelta(days=30))
        [sent] = await watcher.wait_for(about_subject(csn, "quote.sent"))
        assert sent.data["request_id"] is None and sent.data["recipients"] == [snapshot.buyer.email]
        await watcher.wait_for(
            lambda s: (
                s.type == "email.sent" and s.data["kind"] == "quote" and s.event["subject"] == csn
            )
        )
        await stack.settled(admin_db)
        assert len(watcher.matching(about_subject(csn, "quote.sent"))) == 1
    finally:
        second.stop()


async def test_auto_5_a_changing_quote_switches_auto_renew_off_and_the_subscription_renews_once(
    stack, upstream, watcher, admin_db
):
    csn = samples.unique_csn()
    await _priced(upstream, admin_db, csn)
    renewal_date = date.today() + timedelta(days=20)  # before the quote expires (30 days)
    snapshot = await given_a_subscription(
        upstream, admin_db, csn, renewal_date=renewal_date, auto_renew=True
    )
    sent = await quote_sent(
        upstream, watcher, csn, snapshot.subscription_id, changes=QuoteChanges(term="three_year")
    )
    [off] = await watcher.wait_for(about_subject(csn, "auto_renew.changed"))
    assert (off.data["enabled"], off.data["reason"]) == (False, "AUTO-5")

    await set_test_clock(upstream, csn, renewal_date)  # the renewal date: no automatic renewal
    await stack.settled(admin_db)
    assert watcher.matching(about_subject(csn, "subscription.renewed")) == []

    await accept_quote(upstream, watcher, csn, sent.data["quote_number"])
    [renewed] = await watcher.wait_for(about_subject(csn, "subscription.renewed"))
    assert renewed.data["term"] == "three_year"
    changes = await watcher.wait_for(about_subject(csn, "auto_renew.changed"), count=2)
    assert changes[-1].data["enabled"] is True  # back on once the quote is paid
    await stack.settled(admin_db)
    assert len(watcher.matching(about_subject(csn, "subscription.renewed"))) == 1
    assert await charges_for(admin_db, csn) == 1


async def test_note_1_quo_7_an_open_quote_means_no_reminder_and_no_automatic_quote(
    stack, upstream, watcher, admin_db
):
    csn = samples.unique_csn()
    await _priced(upstream, admin_db, csn)
    renewal_date = date.today() + timedelta(days=40)
    snapshot = await given_a_subscription(upstream, admin_db, csn, renewal_date=renewal_date)
    await quote_sent(upstream, watcher, csn, snapshot.subscription_id)
    await watcher.wait_for(
        lambda s: s.type == "email.sent" and s.data["kind"] == "quote" and s.event["subject"] == csn
    )
    await set_test_clock(upstream, csn, renewal_date - timedelta(days=30))
    await stack.settled(admin_db)
    kinds = [s.data["kind"] for s in watcher.matching(about_subject(csn, "email.sent"))]
    assert "renewal_reminder" not in kinds
    assert len(watcher.matching(about_subject(csn, "quote.sent"))) == 1


async def test_quo_6_a_running_promotion_applies_by_itself_and_shows_in_the_quote(
    stack, upstream, watcher, admin_db
):
    from shared.contracts.catalog_events import PromotionPublished

    csn = samples.unique_csn()
    product = await _priced(upstream, admin_db, csn)
    promotion = PromotionPublished(
        promotion_code=f"PROMO-{csn}",
        product_codes=[product],
        percent_off=Decimal("10"),
        starts_on=date.today() - timedelta(days=1),
        ends_on=date.today() + timedelta(days=60),
    )
    await upstream.send(topics.CATALOG_EVENTS, samples.event(promotion, product))
    await until(
        lambda: admin_db.fetchval(
            "SELECT count(*) = 1 FROM quote.promotions WHERE promotion_code = $1",
            promotion.promotion_code,
        ),
        what="quote to store the promotion",
    )
    snapshot = await given_a_subscription(upstream, admin_db, csn)
    sent = await quote_sent(upstream, watcher, csn, snapshot.subscription_id)
    assert sent.data["promotions"] == [{"promotion_code": f"PROMO-{csn}", "percent_off": "10"}]
    assert Decimal(sent.data["lines"][0]["discount"]) == Decimal("42.00")
    assert Decimal(sent.data["total"]) == Decimal("378.00")  # 420.00 less 10 %


async def test_quo_1_quo_4_seats_added_by_a_quote_self_service_refused_sales_allowed(
    stack, upstream, watcher, admin_db
):
    csn = samples.unique_csn()
    await _priced(upstream, admin_db, csn)
    snapshot = await given_a_subscription(upstream, admin_db, csn)
    more_seats = QuoteChanges(add_seats=2)
    self_service = await request_quote(upstream, csn, snapshot.subscription_id, changes=more_seats)
    [refused] = await watcher.wait_for(answering(self_service.request_id, "quote.rejected"))
    assert refused.data["reasons"] == ["SEAT_ADDITION"]
    await quote_sent(
        upstream, watcher, csn, snapshot.subscription_id, channel="sales", changes=more_seats
    )


async def test_quo_3_one_quote_never_mixes_agents_of_record(stack, upstream, watcher, admin_db):
    csn = samples.unique_csn()
    product = await _priced(upstream, admin_db, csn)
    subscriptions = [
        samples.subscription(
            f"S{n}-{csn}",
            csn,
            renewal_date=RENEWAL_DATE,
            product_code=product,
            purchase_method="partner",
            partner_csn=f"PARTNER-{n}",
        )
        for n in (1, 2)
    ]
    command = await _quoted(upstream, admin_db, csn, *subscriptions, channel="sales")
    [refused] = await watcher.wait_for(answering(command.request_id, "quote.rejected"))
    assert "MIXED_PARTNER" in refused.data["reasons"]


async def test_man_2_a_quote_is_one_charge_on_one_payment_method(
    stack, upstream, watcher, admin_db
):
    """A card and a bank transfer can't share a quote's one charge: refused when asked for; and
    a quote of two cards whose second became a bank transfer upstream after it was sent is not
    accepted (it would charge that subscription to the other's card): nothing is charged."""
    csn = samples.unique_csn()
    product = await _priced(upstream, admin_db, csn)
    card, other = (
        samples.subscription(f"S{n}-{csn}", csn, renewal_date=RENEWAL_DATE, product_code=product)
        for n in (1, 2)
    )
    transfer = samples.subscription(
        f"S3-{csn}",
        csn,
        renewal_date=RENEWAL_DATE,
        product_code=product,
        payment_type="bank_transfer",
    )
    mixed = await _quoted(upstream, admin_db, csn, card, transfer)
    [refused] = await watcher.wait_for(answering(mixed.request_id, "quote.rejected"))
    assert "PAYMENT_METHOD_MISMATCH" in refused.data["reasons"]

    cards = await _quoted(upstream, admin_db, csn, card, other)
    [sent] = await watcher.wait_for(answering(cards.request_id, "quote.sent"))
    moved = samples.subscription(
        other.subscription_id,
        csn,
        renewal_date=RENEWAL_DATE,
        product_code=product,
        payment_type="bank_transfer",
        revision=other.revision + 1,
    )
    await given_subscriptions(upstream, admin_db, moved)
    await until(
        lambda: admin_db.fetchval(
            "SELECT s.snapshot->'payment_method'->>'type' = 'bank_transfer'"
            " AND f.state->'payment_method'->>'type' = 'bank_transfer'"
            " FROM quote.subscription_snapshots AS s JOIN quote.subscription_states AS f"
            " USING (subscription_id) WHERE subscription_id = $1",
            other.subscription_id,
        ),
        what="quote to follow the new payment method (snapshot, then renewal's state)",
    )
    rejected = await accept_quote(
        upstream, watcher, csn, sent.data["quote_number"], answer="quote.rejected"
    )
    assert rejected.data["reasons"] == ["PAYMENT_METHOD_MISMATCH"]
    await stack.settled(admin_db)
    assert await charges_for(admin_db, csn) == 0
