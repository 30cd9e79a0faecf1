"""Changes besides renewing, end to end: the next renewal's term and seats (TERM-1, SEAT-2),
seats added now and paid pro rata (SEAT-1), renewal dates aligned (ALIGN-1)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from deploy.local import samples
from shared.contracts import topics
from shared.contracts.renewal_commands import AddSeats, AlignRenewalDates, ChangeRenewalTerms
from shared.eligibility.dates import add_term
from tests.scenarios.steps import (
    RENEWAL_DATE,
    about_subject,
    answering,
    buyer,
    charges_for,
    command_answered,
    given_a_subscription,
    given_price_known,
    given_product_priced,
    given_subscriptions,
    publish_price,
    request_renewal,
    set_test_clock,
)


async def test_term_1_seat_2_the_next_renewal_uses_the_new_term_and_seats_at_their_renewal_price(
    stack, upstream, watcher, admin_db
):
    csn = samples.unique_csn()
    await given_product_priced(
        upstream,
        admin_db,
        csn,
        {"renewal_price": "420.00"},
        {"term": "three_year", "list_price": "1310.00", "renewal_price": "1179.00"},
    )
    snapshot = await given_a_subscription(upstream, admin_db, csn, seats=5)

    change = ChangeRenewalTerms(
        request_id=f"terms-{csn}",
        actor=buyer(csn),
        subscription_id=snapshot.subscription_id,
        term="three_year",
        seats=2,
    )
    updated = await command_answered(upstream, watcher, change, "renewal_terms.updated")
    assert (updated.data["term"], updated.data["seats"]) == ("three_year", 2)
    assert updated.data["effective_on"] == RENEWAL_DATE.isoformat()

    renewal = await request_renewal(upstream, csn, snapshot.subscription_id)
    [renewed] = await watcher.wait_for(answering(renewal.request_id, "subscription.renewed"))
    assert (renewed.data["term"], renewed.data["seats"]) == ("three_year", 2)
    assert renewed.data["renewal_date"] == add_term(RENEWAL_DATE, "three_year").isoformat()
    [placed] = await watcher.wait_for(answering(renewal.request_id, "order.placed"))
    assert Decimal(placed.data["total"]) == Decimal("2358.00")  # PRICE-2: 2 × 1,179.00


async def test_seat_1_seats_added_now_are_charged_pro_rata_then_counted(
    stack, upstream, watcher, admin_db
):
    csn = samples.unique_csn()
    await given_product_priced(upstream, admin_db, csn, {"renewal_price": "365.00"})
    snapshot = await given_a_subscription(upstream, admin_db, csn, seats=3)

    added = AddSeats(
        request_id=f"seats-{csn}",
        actor=buyer(csn),
        subscription_id=snapshot.subscription_id,
        seats=2,
    )
    updated = await command_answered(upstream, watcher, added, "seats.updated")
    assert updated.data["seats"] == 5
    prorated = Decimal(updated.data["prorated_total"])
    assert Decimal(0) < prorated < Decimal("730.00")  # never more than a full term for 2 seats
    await stack.settled(admin_db)  # what the seats set off is done: one charge, no renewal
    assert await charges_for(admin_db, csn) == 1
    seats = await admin_db.fetchval(
        "SELECT seats FROM renewal.subscriptions WHERE subscription_id = $1",
        snapshot.subscription_id,
    )
    assert seats == 5
    assert watcher.matching(about_subject(csn, "subscription.renewed")) == []


async def test_align_1_dates_aligned_for_the_same_term_and_method_and_refused_otherwise(
    stack, upstream, watcher, admin_db
):
    csn = samples.unique_csn()
    product = f"P-{csn}"
    await publish_price(upstream, product)
    await publish_price(
        upstream, product, term="monthly", list_price="50.00", renewal_price="45.00"
    )
    await given_price_known(admin_db, product)
    target = RENEWAL_DATE + timedelta(days=20)
    early = samples.subscription(f"S1-{csn}", csn, renewal_date=RENEWAL_DATE, product_code=product)
    late = samples.subscription(f"S2-{csn}", csn, renewal_date=target, product_code=product)
    monthly = samples.subscription(
        f"S3-{csn}", csn, renewal_date=RENEWAL_DATE, product_code=product, term="monthly"
    )
    await given_subscriptions(upstream, admin_db, early, late, monthly)

    mismatched = AlignRenewalDates(
        request_id=f"align-bad-{csn}",
        actor=buyer(csn),
        subscription_ids=[early.subscription_id, monthly.subscription_id],
        target_date=target,
    )
    await upstream.send(topics.RENEWAL_COMMANDS, samples.event(mismatched, csn))
    refused = await watcher.wait_for(answering(mismatched.request_id, "renewal.rejected"))
    assert any("TERM_MISMATCH" in r.data["reasons"] for r in refused)

    aligned = AlignRenewalDates(
        request_id=f"align-{csn}",
        actor=buyer(csn),
        subscription_ids=[early.subscription_id, late.subscription_id],
        target_date=target,
    )
    updated = await command_answered(upstream, watcher, aligned, "renewal_dates.updated")
    assert updated.data["target_date"] == target.isoformat()
    assert Decimal(updated.data["total"]) > 0  # 20 days of one annual seat, pro rata
    dates = await admin_db.fetch(
        "SELECT renewal_date FROM renewal.subscriptions WHERE subscription_id = ANY($1::text[])",
        [early.subscription_id, late.subscription_id],
    )
    assert {row["renewal_date"] for row in dates} == {target}


async def test_life_3_a_lapsed_subscription_renewed_in_grace_keeps_its_renewal_date(
    stack, upstream, watcher, admin_db
):
    csn = samples.unique_csn()
    await given_product_priced(upstream, admin_db, csn)
    snapshot = await given_a_subscription(upstream, admin_db, csn)
    await set_test_clock(upstream, csn, RENEWAL_DATE + timedelta(days=10))  # in grace
    await watcher.wait_for(about_subject(csn, "subscription.lapsed"))

    renewal = await request_renewal(upstream, csn, snapshot.subscription_id)
    [renewed] = await watcher.wait_for(answering(renewal.request_id, "subscription.renewed"))
    # LIFE-4: a renewal inside grace starts at the old renewal date, not on the day it was paid.
    assert renewed.data["renewal_date"] == add_term(RENEWAL_DATE, "annual").isoformat()
