"""The due-date engine's decision, decided here and nowhere else (issue 14 item 3): AUTO-1's
charge and its retries inside grace, AUTO-5, LIFE-2's lapse, LIFE-3's expiry, the next look."""

from datetime import timedelta
from decimal import Decimal

from shared.eligibility import Reservation, decide_due_date, expires_on, grace_ends
from shared.eligibility.due_dates import retry_on

from .builders import PRICES, TODAY, policy, renewing_in

POLICY = policy()


def decide(sub, today=TODAY, *, last_attempt=0, reservation=None, quoted=(), prices=PRICES,
           lapse_announced=False):  # fmt: skip
    return decide_due_date(
        sub,
        today,
        POLICY,
        last_attempt=last_attempt,
        reservation=reservation,
        quoted=quoted,
        prices=prices,
        lapse_announced=lapse_announced,
    )


def test_auto_1_on_the_renewal_date_orders_the_next_term_at_its_renewal_price():
    sub = renewing_in(0, auto_renew=True, seats=3)

    decision = decide(sub)

    assert decision.order is not None
    assert decision.order.attempt == 1
    line = decision.order.line
    assert (line.term, line.seats, line.unit_price, line.amount) == (
        "annual",
        3,
        Decimal("420.00"),
        Decimal("1260.00"),
    )
    assert (line.starts_on, line.ends_on) == (sub.renewal_date, sub.renewal_date.replace(2027))
    assert decision.order.next_retry_on == retry_on(sub.renewal_date, 1, POLICY)
    assert not decision.announce_lapse and not decision.announce_expiry
    # the charge in flight: no look before billing answers, bounded by the expiry day
    assert decision.next_look == expires_on(sub, POLICY)


def test_term_1_seat_2_the_order_buys_the_next_term_and_seats():
    sub = renewing_in(0, auto_renew=True, seats=5, next_term="three_year", next_seats=2)

    line = decide(sub).order.line

    assert (line.term, line.seats, line.amount) == ("three_year", 2, Decimal("2358.00"))


def test_auto_1_a_failed_charge_is_tried_again_on_the_schedule_and_the_subscription_lapses_meanwhile():
    sub = renewing_in(0, auto_renew=True)
    first_retry = retry_on(sub.renewal_date, 1, POLICY)

    waiting = decide(sub, last_attempt=1)

    assert waiting.order is None
    assert waiting.announce_lapse  # LIFE-2: not renewed by its renewal date
    assert waiting.next_look == first_retry

    on_the_retry_day = decide(sub, first_retry, last_attempt=1, lapse_announced=True)

    assert on_the_retry_day.order is not None and on_the_retry_day.order.attempt == 2
    assert not on_the_retry_day.announce_lapse  # once per renewal date


def test_auto_1_the_last_try_is_on_the_schedule_s_last_day_and_none_follows_it():
    """Tried on the renewal date, then once on each day of `payment_retry_days_after`."""
    sub = renewing_in(0, auto_renew=True)
    schedule = POLICY.payment_retry_days_after
    last_day = sub.renewal_date + timedelta(days=schedule[-1])
    assert last_day <= grace_ends(sub, POLICY)

    last = decide(sub, last_day, last_attempt=len(schedule), lapse_announced=True)

    assert last.order is not None and last.order.attempt == len(schedule) + 1
    assert last.order.next_retry_on is None  # billing is told no retry is left
    after_it = decide(sub, last_day, last_attempt=len(schedule) + 1, lapse_announced=True)
    assert after_it.order is None
    assert after_it.next_look == expires_on(sub, POLICY)


def test_life_3_the_day_after_grace_the_subscription_expires():
    sub = renewing_in(0, auto_renew=True)
    expiry = expires_on(sub, POLICY)

    decision = decide(sub, expiry, last_attempt=9, lapse_announced=True)

    assert decision.order is None
    assert decision.announce_expiry and not decision.announce_lapse


def test_life_2_without_auto_renew_it_lapses_on_its_date_and_is_looked_at_again_on_expiry():
    sub = renewing_in(0, auto_renew=False)

    decision = decide(sub)

    assert decision.order is None and decision.announce_lapse and not decision.announce_expiry
    assert decision.next_look == expires_on(sub, POLICY)


def test_auto_5_only_a_quote_that_changes_what_the_renewal_buys_holds_it_back():
    sub = renewing_in(0, auto_renew=True, seats=2)

    assert decide(sub, quoted=[("annual", 2)]).order is not None  # QUO-7: changes nothing
    held = decide(sub, quoted=[("annual", 5)])
    assert held.order is None and held.announce_lapse


def test_issue_14_an_order_of_another_path_holds_the_term_and_the_engine_looks_again_tomorrow():
    sub = renewing_in(0, auto_renew=True)
    manual = Reservation(subscription_id="S-1", order_id="O-manual", term_start=sub.renewal_date)

    decision = decide(sub, reservation=manual)

    assert decision.order is None
    assert decision.next_look == TODAY + timedelta(days=1)


def test_auto_1_without_a_price_for_the_term_it_buys_it_lapses_and_says_why():
    sub = renewing_in(0, auto_renew=True, currency="GBP")

    decision = decide(sub)

    assert decision.order is None and decision.unpriced and decision.announce_lapse


def test_life_1_a_trial_never_renews_automatically():
    decision = decide(renewing_in(0, auto_renew=True, status="trial"))

    assert decision.order is None and not decision.unpriced


def test_auto_1_a_retry_the_schedule_puts_past_grace_is_not_announced():
    sub = renewing_in(0, auto_renew=True)
    late = policy(payment_retry_days_after=(1, 60))

    second = decide_due_date(
        sub,
        sub.renewal_date + timedelta(days=1),
        late,
        last_attempt=1,
        reservation=None,
        quoted=(),
        prices=PRICES,
        lapse_announced=True,
    )

    assert second.order is not None and second.order.next_retry_on is None
