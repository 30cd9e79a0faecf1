"""Issue 14 item 4, end to end on the real broker and database: a paid quote does what its kind
says (QUO-3), a bulk renewal is charged to each subscription's own method (MAN-2), seats added
after an early renewal or a reduction (SEAT-1, SEAT-2), alignment on the same method (ALIGN-1)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from deploy.local import samples
from services.renewal.new_purchases import new_subscription_id
from shared.contracts import topics
from shared.contracts.quote_commands import QuoteChanges
from shared.contracts.renewal_commands import AddSeats, AlignRenewalDates, ChangeRenewalTerms
from shared.eligibility.dates import add_term
from tests.scenarios.steps import (
    RENEWAL_DATE,
    about_subject,
    accept_quote,
    answering,
    buyer,
    charges_for,
    command_answered,
    given_a_subscription,
    given_product_priced,
    given_subscriptions,
    quote_sent,
    renewal_date_of,
    request_renewal,
    until,
)


async def _quoted_and_paid(upstream, watcher, csn: str, kind: str, *subscription_ids: str):
    sent = await quote_sent(upstream, watcher, csn, *subscription_ids, kind=kind)
    paid = await accept_quote(upstream, watcher, csn, sent.data["quote_number"])
    return sent, paid


async def test_quo_3_a_paid_alignment_quote_moves_the_dates_to_its_target_not_a_year_on(
    stack, upstream, watcher, admin_db
):
    csn = samples.unique_csn()
    product = await given_product_priced(upstream, admin_db, csn)
    target = RENEWAL_DATE + timedelta(days=20)
    early = samples.subscription(f"S1-{csn}", csn, renewal_date=RENEWAL_DATE, product_code=product)
    late = samples.subscription(f"S2-{csn}", csn, renewal_date=target, product_code=product)
    await given_subscriptions(upstream, admin_db, early, late)

    sent, _ = await _quoted_and_paid(
        upstream, watcher, csn, "alignment", early.subscription_id, late.subscription_id
    )
    assert (sent.data["kind"], sent.data["target_date"]) == ("alignment", target.isoformat())
    await stack.settled(admin_db)
    assert await renewal_date_of(admin_db, early.subscription_id) == target
    assert await renewal_date_of(admin_db, late.subscription_id) == target
    assert watcher.matching(about_subject(csn, "subscription.renewed")) == []
    assert await charges_for(admin_db, csn) == 1


async def test_quo_3_a_paid_new_purchase_quote_starts_a_new_subscription_on_the_payment_day(
    stack, upstream, watcher, admin_db
):
    csn = samples.unique_csn()
    await given_product_priced(upstream, admin_db, csn)
    trial = await given_a_subscription(upstream, admin_db, csn, status="trial", seats=3)

    sent, paid = await _quoted_and_paid(upstream, watcher, csn, "new", trial.subscription_id)
    assert sent.data["kind"] == "new" and sent.data["target_date"] is None
    assert Decimal(sent.data["total"]) == Decimal("1398.00")  # 3 × 466.00, the new-purchase price
    started = new_subscription_id(paid.data["order_id"], trial.subscription_id)
    await until(
        lambda: admin_db.fetchval(
            "SELECT count(*) = 1 FROM renewal.subscriptions WHERE subscription_id = $1", started
        ),
        what="renewal to start the new subscription",
    )
    row = await admin_db.fetchrow(
        "SELECT renewal_date, term, seats, snapshot->>'start_date' AS start_date,"
        " snapshot->>'status' AS status FROM renewal.subscriptions WHERE subscription_id = $1",
        started,
    )
    today = date.today()  # the CSN has no test clock and no time zone: UTC
    assert (row["start_date"], row["status"]) == (today.isoformat(), "active")
    assert (row["renewal_date"], row["term"], row["seats"]) == (
        add_term(today, "annual"),
        "annual",
        3,
    )
    assert await renewal_date_of(admin_db, trial.subscription_id) == RENEWAL_DATE  # left as it is
    await stack.settled(admin_db)
    assert watcher.matching(about_subject(csn, "subscription.renewed")) == []


async def test_auto_5_an_open_new_purchase_quote_never_switches_auto_renew_off(
    stack, upstream, watcher, admin_db
):
    """AUTO-5 is about renewal quotes: a new-purchase quote for other seats (QUO-3) changes
    nothing the subscription's own renewal buys, so auto-renew stays on."""
    csn = samples.unique_csn()
    await given_product_priced(upstream, admin_db, csn)
    snapshot = await given_a_subscription(upstream, admin_db, csn, auto_renew=True)
    sent = await quote_sent(
        upstream, watcher, csn, snapshot.subscription_id, kind="new", changes=QuoteChanges(seats=4)
    )
    assert sent.data["kind"] == "new"
    await stack.settled(admin_db)
    assert watcher.matching(about_subject(csn, "auto_renew.changed")) == []
    assert await admin_db.fetchval(
        "SELECT auto_renew FROM renewal.subscriptions WHERE subscription_id = $1",
        snapshot.subscription_id,
    )


async def test_man_2_a_bulk_of_a_card_and_a_bank_transfer_is_two_orders_each_on_its_method(
    stack, upstream, watcher, admin_db
):
    csn = samples.unique_csn()
    product = await given_product_priced(upstream, admin_db, csn)
    card = samples.subscription(f"S1-{csn}", csn, renewal_date=RENEWAL_DATE, product_code=product)
    transfer = samples.subscription(
        f"S2-{csn}",
        csn,
        renewal_date=RENEWAL_DATE,
        product_code=product,
        payment_type="bank_transfer",
    )
    await given_subscriptions(upstream, admin_db, card, transfer)

    renewal = await request_renewal(upstream, csn, card.subscription_id, transfer.subscription_id)
    placed = await watcher.wait_for(answering(renewal.request_id, "order.placed"), count=2)
    assert sorted(len(p.data["lines"]) for p in placed) == [1, 1]
    by_subscription = {p.data["lines"][0]["subscription_id"]: p.data["order_id"] for p in placed}
    [awaiting] = await watcher.wait_for(about_subject(csn, "payment.awaiting_manual"))
    assert awaiting.data["order_id"] == by_subscription[transfer.subscription_id]
    assert Decimal(awaiting.data["amount"]) == Decimal("420.00")
    [renewed] = await watcher.wait_for(about_subject(csn, "subscription.renewed"))
    assert renewed.data["subscription_id"] == card.subscription_id  # the transfer is not paid yet
    assert await renewal_date_of(admin_db, transfer.subscription_id) == RENEWAL_DATE


async def test_seat_2_seats_added_after_a_reduction_are_renewed_too(
    stack, upstream, watcher, admin_db
):
    csn = samples.unique_csn()
    await given_product_priced(upstream, admin_db, csn)
    snapshot = await given_a_subscription(upstream, admin_db, csn, seats=5)
    reduce = ChangeRenewalTerms(
        request_id=f"reduce-{csn}", actor=buyer(csn), subscription_id=snapshot.subscription_id,
        seats=3,
    )  # fmt: skip
    await upstream.send(topics.RENEWAL_COMMANDS, samples.event(reduce, csn))
    await watcher.wait_for(answering(reduce.request_id, "renewal_terms.updated"))
    added = AddSeats(
        request_id=f"add-{csn}", actor=buyer(csn), subscription_id=snapshot.subscription_id,
        seats=2,
    )  # fmt: skip
    updated = await command_answered(upstream, watcher, added, "seats.updated")
    assert updated.data["seats"] == 7

    renewal = await request_renewal(upstream, csn, snapshot.subscription_id)
    [renewed] = await watcher.wait_for(answering(renewal.request_id, "subscription.renewed"))
    assert renewed.data["seats"] == 5  # the 3 kept and the 2 paid for since
    [placed] = await watcher.wait_for(answering(renewal.request_id, "order.placed"))
    assert Decimal(placed.data["total"]) == Decimal("2100.00")  # 5 × 420.00


async def test_seat_1_seats_can_be_added_after_an_early_renewal(stack, upstream, watcher, admin_db):
    csn = samples.unique_csn()
    await given_product_priced(upstream, admin_db, csn)
    snapshot = await given_a_subscription(upstream, admin_db, csn, seats=2)
    renewal = await request_renewal(upstream, csn, snapshot.subscription_id)
    await watcher.wait_for(answering(renewal.request_id, "subscription.renewed"))

    added = AddSeats(
        request_id=f"add-{csn}", actor=buyer(csn), subscription_id=snapshot.subscription_id,
        seats=1,
    )  # fmt: skip
    updated = await command_answered(upstream, watcher, added, "seats.updated")
    assert updated.data["seats"] == 3
    # The rest of the running term and the whole term paid ahead: more than one term's price.
    assert Decimal("420.00") < Decimal(updated.data["prorated_total"]) < Decimal("840.00")


async def test_align_1_the_same_card_type_is_not_enough_the_method_must_be_the_same_and_valid(
    stack, upstream, watcher, admin_db
):
    csn = samples.unique_csn()
    product = await given_product_priced(upstream, admin_db, csn)
    target = RENEWAL_DATE + timedelta(days=20)
    valid = samples.subscription(f"S1-{csn}", csn, renewal_date=RENEWAL_DATE, product_code=product)
    broken = samples.subscription(
        f"S2-{csn}", csn, renewal_date=target, product_code=product, payment_valid=False
    )
    await given_subscriptions(upstream, admin_db, valid, broken)
    aligned = AlignRenewalDates(
        request_id=f"align-{csn}",
        actor=buyer(csn),
        subscription_ids=[valid.subscription_id, broken.subscription_id],
        target_date=target,
    )
    await upstream.send(topics.RENEWAL_COMMANDS, samples.event(aligned, csn))
    refused = await watcher.wait_for(answering(aligned.request_id, "renewal.rejected"), count=2)
    reasons = {r.data["subscription_id"]: r.data["reasons"] for r in refused}
    assert reasons == {
        None: ["PAYMENT_METHOD_MISMATCH"],
        broken.subscription_id: ["PAYMENT_METHOD_INVALID"],
    }
    assert await renewal_date_of(admin_db, valid.subscription_id) == RENEWAL_DATE
