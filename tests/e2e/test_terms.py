"""Issue 14: one owner of a subscription's terms — races between the ways of buying a term, on
the real broker and database, each paused where it hurts (a bank transfer keeps the order open,
billing stopped between order and charge). Never a charge without its effect, never one term
bought twice."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from deploy.local import samples
from shared.contracts import topics
from shared.contracts.common import Actor
from shared.contracts.payment_events import PaymentReceived
from shared.contracts.quote_commands import CancelQuote
from shared.contracts.renewal_commands import SetAutoRenew
from shared.eligibility.dates import add_term
from tests.scenarios.steps import (
    about_subject,
    accept_quote,
    acceptance,
    answer_to_acceptance,
    answering,
    buyer,
    charges_for,
    command_answered,
    given_a_subscription,
    given_product_priced,
    given_subscriptions,
    orders_for,
    quote_sent,
    request_renewal,
    set_test_clock,
    until,
)

START = date.today() + timedelta(days=20)


async def _paid_by_hand(upstream, csn: str, awaiting) -> PaymentReceived:
    received = PaymentReceived(
        payment_reference=awaiting.data["payment_reference"],
        order_id=awaiting.data["order_id"],
        amount=Decimal(awaiting.data["amount"]),
        currency=awaiting.data["currency"],
    )
    await upstream.send(topics.PAYMENT_EVENTS, samples.event(received, csn))
    return received


async def _refunds(admin_db, order_id: str) -> int:
    return await admin_db.fetchval(
        "SELECT count(*) FROM billing.simulated_provider_refunds WHERE idempotency_key = $1",
        order_id,
    )


async def _quote_number(upstream, watcher, csn: str, subscription_id: str) -> str:
    """A renewal quote of the subscription, sent: its number."""
    return (await quote_sent(upstream, watcher, csn, subscription_id)).data["quote_number"]


async def test_man_1_two_requests_for_one_bank_transfer_subscription_make_one_order(
    stack, upstream, watcher, admin_db
):
    """A double click: the second request is refused RENEWAL_IN_PROGRESS while the first
    order awaits its bank transfer; one order, and once paid one renewal."""
    csn = samples.unique_csn()
    await given_product_priced(upstream, admin_db, csn)
    snapshot = await given_a_subscription(
        upstream, admin_db, csn, renewal_date=START, payment_type="bank_transfer"
    )
    first = samples.renewal_request(csn, [snapshot.subscription_id])
    second = samples.renewal_request(csn, [snapshot.subscription_id])
    await upstream.send_many(
        topics.RENEWAL_COMMANDS, [samples.event(first, csn), samples.event(second, csn)]
    )
    [awaiting] = await watcher.wait_for(about_subject(csn, "payment.awaiting_manual"))
    [refused] = await watcher.wait_for(
        lambda s: s.type == "renewal.rejected" and s.event.get("subject") == csn
    )
    assert refused.data["reasons"] == ["RENEWAL_IN_PROGRESS"]
    assert refused.data["request_id"] in (first.request_id, second.request_id)
    assert await orders_for(admin_db, csn) == 1

    await _paid_by_hand(upstream, csn, awaiting)
    [renewed] = await watcher.wait_for(about_subject(csn, "subscription.renewed"))
    assert renewed.data["renewal_date"] == add_term(START, "annual").isoformat()
    third = await request_renewal(upstream, csn, snapshot.subscription_id)  # the same term, settled
    [again] = await watcher.wait_for(answering(third.request_id, "renewal.rejected"))
    assert "ALREADY_RENEWED" in again.data["reasons"]
    assert await charges_for(admin_db, csn) == 1


async def test_auto_1_the_engine_and_a_manual_request_on_the_renewal_date_charge_once(
    stack, upstream, watcher, admin_db
):
    """Billing is stopped between the manual order and its charge; the renewal date comes
    meanwhile: the engine leaves the term to the open order (it only announces the lapse)."""
    csn = samples.unique_csn()
    await given_product_priced(upstream, admin_db, csn)
    snapshot = await given_a_subscription(
        upstream, admin_db, csn, renewal_date=START, auto_renew=True
    )
    await set_test_clock(upstream, csn, START - timedelta(days=1))
    await stack.kill("billing")
    try:
        request = await request_renewal(upstream, csn, snapshot.subscription_id)
        await until(
            lambda: admin_db.fetchval(
                "SELECT count(*) = 1 FROM renewal.term_reservations WHERE subscription_id = $1",
                snapshot.subscription_id,
            ),
            what="the manual order to reserve the term",
        )
        await set_test_clock(upstream, csn, START)
        await watcher.wait_for(about_subject(csn, "subscription.lapsed"))  # the engine looked
    finally:
        await stack.start("billing")
    [renewed] = await watcher.wait_for(about_subject(csn, "subscription.renewed"))
    assert renewed.data["request_id"] == request.request_id
    assert renewed.data["renewal_date"] == add_term(START, "annual").isoformat()
    await stack.settled(admin_db)
    assert await orders_for(admin_db, csn) == 1
    assert await charges_for(admin_db, csn) == 1
    assert len(watcher.matching(about_subject(csn, "subscription.renewed"))) == 1


async def test_quo_8_a_quote_accepted_after_a_manual_renewal_of_the_same_term_charges_nothing(
    stack, upstream, watcher, admin_db
):
    csn = samples.unique_csn()
    await given_product_priced(upstream, admin_db, csn)
    snapshot = await given_a_subscription(upstream, admin_db, csn, renewal_date=START)
    number = await _quote_number(upstream, watcher, csn, snapshot.subscription_id)

    request = await request_renewal(upstream, csn, snapshot.subscription_id)
    await watcher.wait_for(answering(request.request_id, "subscription.renewed"))
    refused = await accept_quote(upstream, watcher, csn, number, answer="quote.rejected")
    assert refused.data["reasons"] == ["ALREADY_RENEWED"]
    assert refused.data["quote_number"] == number
    assert await charges_for(admin_db, csn) == 1
    assert await orders_for(admin_db, csn) == 1


async def test_quo_5_a_quote_cancelled_after_acceptance_is_refused_and_renews_once(
    stack, upstream, watcher, admin_db
):
    """The quote is paid by bank transfer, so it stays accepted and unpaid while sales tries
    to cancel it: QUOTE_ALREADY_ACCEPTED; the payment then renews it once."""
    csn = samples.unique_csn()
    await given_product_priced(upstream, admin_db, csn)
    snapshot = await given_a_subscription(
        upstream, admin_db, csn, renewal_date=START, payment_type="bank_transfer"
    )
    number = await _quote_number(upstream, watcher, csn, snapshot.subscription_id)
    awaiting = await accept_quote(upstream, watcher, csn, number, answer="payment.awaiting_manual")

    cancel = CancelQuote(
        request_id=f"cancel-{csn}",
        actor=Actor(user_id="rep-1", csn=csn),
        channel="sales",
        quote_number=number,
    )
    refused = await command_answered(upstream, watcher, cancel, "quote.rejected")
    assert refused.data["reasons"] == ["QUOTE_ALREADY_ACCEPTED"]

    await _paid_by_hand(upstream, csn, awaiting)
    await watcher.wait_for(about_subject(csn, "quote.paid"))
    [renewed] = await watcher.wait_for(about_subject(csn, "subscription.renewed"))
    assert renewed.data["renewal_date"] == add_term(START, "annual").isoformat()
    await stack.settled(admin_db)
    assert watcher.matching(answering(cancel.request_id, "quote.cancelled")) == []
    assert len(watcher.matching(about_subject(csn, "subscription.renewed"))) == 1
    assert await charges_for(admin_db, csn) == 1


async def test_life_3_life_5_a_bank_transfer_after_expiry_is_refunded_once_and_stays_expired(
    stack, upstream, watcher, admin_db
):
    csn = samples.unique_csn()
    await given_product_priced(upstream, admin_db, csn)
    snapshot = await given_a_subscription(
        upstream, admin_db, csn, renewal_date=START, payment_type="bank_transfer"
    )
    await set_test_clock(upstream, csn, START - timedelta(days=1))
    request = await request_renewal(upstream, csn, snapshot.subscription_id)
    [awaiting] = await watcher.wait_for(about_subject(csn, "payment.awaiting_manual"))
    await set_test_clock(upstream, csn, START)
    [lapsed] = await watcher.wait_for(about_subject(csn, "subscription.lapsed"))
    grace_ends = date.fromisoformat(lapsed.data["grace_ends"])
    await set_test_clock(upstream, csn, grace_ends + timedelta(days=1))
    await watcher.wait_for(about_subject(csn, "subscription.expired"))
    # The expiry let the order go: the request is answered then, not only if money comes (#19).
    [answer] = await watcher.wait_for(answering(request.request_id, "renewal.rejected"))
    assert answer.data["reasons"] == ["EXPIRED"]

    late = await _paid_by_hand(upstream, csn, awaiting)
    [refunded] = await watcher.wait_for(about_subject(csn, "payment.refunded"))
    assert refunded.data["order_id"] == late.order_id
    assert (Decimal(refunded.data["amount"]), refunded.data["currency"]) == (
        late.amount,
        late.currency,
    )
    assert refunded.data["reason"] == "EXPIRED"
    await _paid_by_hand(upstream, csn, awaiting)  # the bank sends it again
    await watcher.wait_for(about_subject(csn, "payment.rejected"))
    await stack.settled(admin_db)
    assert len(watcher.matching(answering(request.request_id, "renewal.rejected"))) == 1
    assert await _refunds(admin_db, late.order_id) == 1
    assert len(watcher.matching(about_subject(csn, "payment.refunded"))) == 1
    assert watcher.matching(about_subject(csn, "subscription.renewed")) == []
    assert (
        await admin_db.fetchval(
            "SELECT renewal_date FROM renewal.subscriptions WHERE subscription_id = $1",
            snapshot.subscription_id,
        )
        == START
    )


async def test_life_5_a_monthly_subscription_renewed_in_grace_ends_after_today(
    stack, upstream, watcher, admin_db
):
    csn = samples.unique_csn()
    await given_product_priced(upstream, admin_db, csn, {"term": "monthly"})
    snapshot = await given_a_subscription(
        upstream, admin_db, csn, renewal_date=START, term="monthly"
    )
    today = START + timedelta(days=25)
    await set_test_clock(upstream, csn, today)
    request = await request_renewal(upstream, csn, snapshot.subscription_id)
    [renewed] = await watcher.wait_for(answering(request.request_id, "subscription.renewed"))
    renewal_date = date.fromisoformat(renewed.data["renewal_date"])
    assert renewed.data["previous_renewal_date"] == START.isoformat()  # LIFE-4
    assert renewal_date == add_term(START, "monthly") and renewal_date > today  # LIFE-5


async def test_life_5_a_monthly_subscription_40_days_late_is_expired_not_renewed_in_the_past(
    stack, upstream, watcher, admin_db
):
    csn = samples.unique_csn()
    await given_product_priced(upstream, admin_db, csn, {"term": "monthly"})
    snapshot = await given_a_subscription(
        upstream, admin_db, csn, renewal_date=START, term="monthly"
    )
    await set_test_clock(upstream, csn, START + timedelta(days=40))
    request = await request_renewal(upstream, csn, snapshot.subscription_id)
    [refused] = await watcher.wait_for(answering(request.request_id, "renewal.rejected"))
    assert refused.data["reasons"] == ["EXPIRED"]
    assert await charges_for(admin_db, csn) == 0


async def test_auto_1_a_card_fixed_upstream_inside_grace_renews_at_once_from_the_old_date(
    stack, upstream, watcher, admin_db
):
    csn = samples.unique_csn()
    await given_product_priced(upstream, admin_db, csn)
    invalid = await given_a_subscription(
        upstream, admin_db, csn, renewal_date=START, auto_renew=True, payment_valid=False
    )
    await set_test_clock(upstream, csn, START)
    await watcher.wait_for(about_subject(csn, "subscription.lapsed"))
    await set_test_clock(upstream, csn, START + timedelta(days=3))

    fixed = invalid.model_copy(
        update={
            "revision": 2,
            "payment_method": invalid.payment_method.model_copy(update={"valid": True}),
        }
    )
    await upstream.send(topics.SUBSCRIPTION_EVENTS, samples.event(fixed, csn))
    [renewed] = await watcher.wait_for(about_subject(csn, "subscription.renewed"))
    assert renewed.data["previous_renewal_date"] == START.isoformat()
    assert renewed.data["renewal_date"] == add_term(START, "annual").isoformat()
    assert renewed.data["request_id"] is None  # automatic
    await stack.settled(admin_db)
    assert await charges_for(admin_db, csn) == 1


async def test_man_1_an_order_not_paid_by_its_pay_by_is_released_and_its_late_money_refunded(
    stack, upstream, watcher, admin_db
):
    """Abandoned: past `pay_by` the reservation goes and the request is answered then, refused
    as a payment that did not go through (not EXPIRED: the subscription is not; issue 19); a
    new order can be placed. The first order's money arriving after all only goes back
    (RESERVATION_RELEASED): the request, answered already, is not answered again; one
    renewal."""
    csn = samples.unique_csn()
    await given_product_priced(upstream, admin_db, csn)
    snapshot = await given_a_subscription(
        upstream, admin_db, csn, renewal_date=START, payment_type="bank_transfer"
    )
    await set_test_clock(upstream, csn, START - timedelta(days=19))
    first = await request_renewal(upstream, csn, snapshot.subscription_id)
    [abandoned] = await watcher.wait_for(about_subject(csn, "payment.awaiting_manual"))
    await set_test_clock(
        upstream, csn, date.fromisoformat(abandoned.data["pay_by"]) + timedelta(days=1)
    )
    await until(
        lambda: admin_db.fetchval(
            "SELECT count(*) = 0 FROM renewal.term_reservations WHERE subscription_id = $1",
            snapshot.subscription_id,
        ),
        what="the abandoned order's reservation to be released",
    )
    [answer] = await watcher.wait_for(answering(first.request_id, "renewal.rejected"))
    assert answer.data["reasons"] == ["PAYMENT_METHOD_INVALID"]
    second = await request_renewal(upstream, csn, snapshot.subscription_id)
    waiting = await watcher.wait_for(about_subject(csn, "payment.awaiting_manual"), count=2)
    assert waiting[1].data["order_id"] != abandoned.data["order_id"]

    await _paid_by_hand(upstream, csn, abandoned)
    [refunded] = await watcher.wait_for(about_subject(csn, "payment.refunded"))
    assert (refunded.data["order_id"], refunded.data["reason"]) == (
        abandoned.data["order_id"],
        "RESERVATION_RELEASED",
    )
    await _paid_by_hand(upstream, csn, waiting[1])
    [renewed] = await watcher.wait_for(answering(second.request_id, "subscription.renewed"))
    assert renewed.data["renewal_date"] == add_term(START, "annual").isoformat()
    await stack.settled(admin_db)
    # The refund and the later renewal were settled after the late money: one answer still.
    assert len(watcher.matching(answering(first.request_id, "renewal.rejected"))) == 1
    assert len(watcher.matching(about_subject(csn, "subscription.renewed"))) == 1
    assert await _refunds(admin_db, abandoned.data["order_id"]) == 1


async def test_man_2_a_bulk_request_whose_bank_transfer_is_abandoned_completes_at_the_release(
    stack, upstream, watcher, admin_db
):
    """Two payment methods, two orders (MAN-2): the card's renews; the bank transfer's is not
    paid by its `pay_by`, and its release answers the request — that subscription rejected
    PAYMENT_METHOD_INVALID, and the request completes (`bulk.completed`, issue 19). Its money
    arriving after all only goes back: no second answer."""
    csn = samples.unique_csn()
    await given_product_priced(upstream, admin_db, csn)
    card = samples.subscription(f"S1-{csn}", csn, renewal_date=START, product_code=f"P-{csn}")
    transfer = samples.subscription(
        f"S2-{csn}", csn, renewal_date=START, product_code=f"P-{csn}", payment_type="bank_transfer"
    )
    await given_subscriptions(upstream, admin_db, card, transfer)
    await set_test_clock(upstream, csn, START - timedelta(days=19))
    command = await request_renewal(upstream, csn, card.subscription_id, transfer.subscription_id)
    [renewed] = await watcher.wait_for(answering(command.request_id, "subscription.renewed"))
    assert renewed.data["subscription_id"] == card.subscription_id
    [awaiting] = await watcher.wait_for(about_subject(csn, "payment.awaiting_manual"))
    assert watcher.matching(answering(command.request_id, "bulk.completed")) == []

    await set_test_clock(
        upstream, csn, date.fromisoformat(awaiting.data["pay_by"]) + timedelta(days=1)
    )
    [completed] = await watcher.wait_for(answering(command.request_id, "bulk.completed"))
    assert (completed.data["succeeded"], completed.data["rejected"]) == (1, 1)
    assert [
        (o["subscription_id"], o["status"], o["reasons"]) for o in completed.data["outcomes"]
    ] == [
        (card.subscription_id, "succeeded", []),
        (transfer.subscription_id, "rejected", ["PAYMENT_METHOD_INVALID"]),
    ]
    [refused] = await watcher.wait_for(answering(command.request_id, "renewal.rejected"))
    assert refused.data["subscription_id"] == transfer.subscription_id

    await _paid_by_hand(upstream, csn, awaiting)
    [refunded] = await watcher.wait_for(about_subject(csn, "payment.refunded"))
    assert refunded.data["reason"] == "RESERVATION_RELEASED"
    await stack.settled(admin_db)
    assert len(watcher.matching(answering(command.request_id, "bulk.completed"))) == 1
    assert len(watcher.matching(answering(command.request_id, "renewal.rejected"))) == 1
    assert len(watcher.matching(about_subject(csn, "subscription.renewed"))) == 1


async def test_auto_1_auto_renew_switched_on_inside_grace_renews_at_once_from_the_old_date(
    stack, upstream, watcher, admin_db
):
    csn = samples.unique_csn()
    await given_product_priced(upstream, admin_db, csn)
    snapshot = await given_a_subscription(upstream, admin_db, csn, renewal_date=START)
    await set_test_clock(upstream, csn, START)
    await watcher.wait_for(about_subject(csn, "subscription.lapsed"))
    await set_test_clock(upstream, csn, START + timedelta(days=5))

    switch = SetAutoRenew(
        request_id=f"auto-on-{csn}",
        actor=buyer(csn),
        subscription_ids=[snapshot.subscription_id],
        enabled=True,
    )
    await upstream.send(topics.RENEWAL_COMMANDS, samples.event(switch, csn))
    await watcher.wait_for(answering(switch.request_id, "auto_renew.changed"))
    [renewed] = await watcher.wait_for(about_subject(csn, "subscription.renewed"))
    assert renewed.data["previous_renewal_date"] == START.isoformat()
    assert renewed.data["renewal_date"] == add_term(START, "annual").isoformat()
    await stack.settled(admin_db)
    assert await charges_for(admin_db, csn) == 1


async def test_quo_5_a_quote_order_not_paid_by_its_pay_by_reopens_the_quote_and_late_money_goes_back(
    stack, upstream, watcher, admin_db
):
    """The acceptance is answered at the release (issue 19: it waited for ever), once: the late
    money only goes back."""
    csn = samples.unique_csn()
    await given_product_priced(upstream, admin_db, csn)
    snapshot = await given_a_subscription(
        upstream, admin_db, csn, renewal_date=START, payment_type="bank_transfer"
    )
    await set_test_clock(upstream, csn, START - timedelta(days=19))
    number = await _quote_number(upstream, watcher, csn, snapshot.subscription_id)
    awaiting = await accept_quote(upstream, watcher, csn, number, answer="payment.awaiting_manual")
    await set_test_clock(
        upstream, csn, date.fromisoformat(awaiting.data["pay_by"]) + timedelta(days=1)
    )
    await until(
        lambda: admin_db.fetchval(
            "SELECT status = 'sent' FROM quote.quotes WHERE quote_number = $1", number
        ),
        what="the abandoned quote order to reopen its quote",
    )
    [rejected] = await watcher.wait_for(about_subject(csn, "quote.rejected"))
    assert rejected.data["request_id"].startswith(f"accept-{csn}")  # the acceptance's answer
    assert rejected.data["reasons"] == ["PAYMENT_METHOD_INVALID"]
    cancel = CancelQuote(
        request_id=f"cancel-{csn}",
        actor=Actor(user_id="rep-1", csn=csn),
        channel="sales",
        quote_number=number,
    )
    await upstream.send(topics.QUOTE_COMMANDS, samples.event(cancel, csn))
    await watcher.wait_for(answering(cancel.request_id, "quote.cancelled"))

    await _paid_by_hand(upstream, csn, awaiting)
    [refunded] = await watcher.wait_for(about_subject(csn, "payment.refunded"))
    assert refunded.data["reason"] == "RESERVATION_RELEASED"
    await stack.settled(admin_db)
    assert watcher.matching(about_subject(csn, "subscription.renewed")) == []
    assert watcher.matching(about_subject(csn, "quote.paid")) == []
    assert len(watcher.matching(about_subject(csn, "quote.rejected"))) == 1
    assert await _refunds(admin_db, awaiting.data["order_id"]) == 1


async def test_life_3_quo_3_issue_19_a_quote_order_whose_subscription_expires_reopens_its_quote(
    stack, upstream, watcher, admin_db
):
    """Issue 19: the subscription of an accepted quote expires (LIFE-3) while its order waits
    for the bank transfer, its pay-by date still ahead. The expiry lets the order go and quote
    hears it then: the acceptance is answered `quote.rejected` EXPIRED and the quote is open
    again — and, a renewal quote expiring with grace, it ends (`quote.expired`) instead of
    staying accepted for ever. The money that comes too late goes back: no `quote.paid`, no
    renewal, and no second answer to the acceptance."""
    csn = samples.unique_csn()
    await given_product_priced(upstream, admin_db, csn)
    snapshot = await given_a_subscription(
        upstream, admin_db, csn, renewal_date=START, payment_type="bank_transfer"
    )
    await set_test_clock(upstream, csn, START)
    [lapsed] = await watcher.wait_for(about_subject(csn, "subscription.lapsed"))
    grace_ends = date.fromisoformat(lapsed.data["grace_ends"])
    # Quoted and accepted on grace's last day (WIN-2); the order waits for the bank transfer
    # past it, its pay-by date still ahead: the order is not abandoned, only too late.
    await set_test_clock(upstream, csn, grace_ends)
    sent = await quote_sent(upstream, watcher, csn, snapshot.subscription_id)
    number = sent.data["quote_number"]
    accept = acceptance(csn, number)
    await upstream.send(topics.QUOTE_COMMANDS, samples.event(accept, csn))
    [awaiting] = await watcher.wait_for(
        answer_to_acceptance(accept, csn, "payment.awaiting_manual")
    )
    assert date.fromisoformat(awaiting.data["pay_by"]) > grace_ends + timedelta(days=1)

    await set_test_clock(upstream, csn, grace_ends + timedelta(days=1))
    await watcher.wait_for(about_subject(csn, "subscription.expired"))
    [rejected] = await watcher.wait_for(answering(accept.request_id, "quote.rejected"))
    assert (rejected.data["quote_number"], rejected.data["reasons"]) == (number, ["EXPIRED"])
    # A renewal quote can't be paid once grace is over: it expired with it, and open again it
    # ends at once (QUO-8), giving the subscription its open quote back (AUTO-5).
    assert date.fromisoformat(sent.data["expires_on"]) == grace_ends
    await watcher.wait_for(
        lambda seen: seen.type == "quote.expired" and seen.data["quote_number"] == number
    )

    late = await _paid_by_hand(upstream, csn, awaiting)
    [refunded] = await watcher.wait_for(about_subject(csn, "payment.refunded"))
    assert (refunded.data["order_id"], refunded.data["reason"]) == (late.order_id, "EXPIRED")
    await stack.settled(admin_db)
    assert len(watcher.matching(answering(accept.request_id, "quote.rejected"))) == 1
    assert watcher.matching(about_subject(csn, "quote.paid")) == []
    assert watcher.matching(about_subject(csn, "subscription.renewed")) == []
    assert await _refunds(admin_db, late.order_id) == 1
