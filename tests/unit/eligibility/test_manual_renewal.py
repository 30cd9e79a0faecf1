"""MAN-1..4: manual renewal paid online, one or many at once, grouped in transactions."""

from datetime import date
from decimal import Decimal

import pytest

from shared.eligibility import Actor, PaymentMethod

from .builders import CARD, codes, reasons_of, renew, renewing_in, subscription


@pytest.mark.parametrize(
    ("count", "days_to_renewal", "request_reasons", "allowed"),
    [
        (1, 30, [], True),
        (100, 30, [], True),
        (101, 30, ["BULK_LIMIT_EXCEEDED"], False),  # nothing is done
        (0, 30, ["INVALID_QUANTITY"], False),
        (1, 91, [], False),  # outside the window: refused per subscription (WIN-1)
        (1, -46, [], False),  # after grace (WIN-2)
    ],
)
def test_man_1_one_or_up_to_100_subscriptions_inside_the_window(
    count, days_to_renewal, request_reasons, allowed
):
    subs = [renewing_in(days_to_renewal, f"S-{i}") for i in range(count)]
    decision = renew(*subs)
    assert codes(decision.reasons) == request_reasons
    assert decision.allowed is allowed


def test_man_1_the_bulk_limit_is_a_policy_value():
    subs = [renewing_in(30, f"S-{i}") for i in range(3)]
    assert codes(renew(*subs, bulk_limit=2).reasons) == ["BULK_LIMIT_EXCEEDED"]


def test_man_1_some_refused_subscriptions_leave_the_others_renewable():
    decision = renew(renewing_in(30, "S-1"), renewing_in(200, "S-2"), ids=["S-1", "S-2", "S-3"])
    assert decision.allowed
    assert decision.allowed_ids == ("S-1",)
    assert reasons_of(decision, "S-2") == {"TOO_EARLY"}
    assert reasons_of(decision, "S-3") == {"UNKNOWN_SUBSCRIPTION"}


def test_man_1_asking_twice_for_one_subscription_renews_it_once():
    decision = renew(renewing_in(30), ids=["S-1", "S-1"])
    assert [o.subscription_id for o in decision.subscriptions] == ["S-1"]


@pytest.mark.parametrize(
    ("subscriptions", "groups"),
    [
        (
            [
                renewing_in(30, "S-1"),
                renewing_in(30, "S-2", currency="EUR", country="FR"),
                renewing_in(30, "S-3", purchase_method="direct_sales"),
                renewing_in(30, "S-4"),
                renewing_in(30, "S-5", csn="CSN-200"),
            ],
            [
                (("CSN-100", "USD", "direct_online"), ("S-1", "S-4"), Decimal("840.00")),
                (("CSN-100", "EUR", "direct_online"), ("S-2",), Decimal("450.00")),
                (("CSN-100", "USD", "direct_sales"), ("S-3",), Decimal("420.00")),
            ],
        ),
    ],
)
def test_man_2_a_bulk_renewal_is_one_transaction_per_csn_currency_and_purchase_method(
    subscriptions, groups
):
    decision = renew(*subscriptions)
    assert reasons_of(decision, "S-5") == {"NOT_AUTHORIZED"}  # another customer's
    assert [
        ((g.csn, g.currency, g.purchase_method), g.subscription_ids, g.total.amount)
        for g in decision.groups
    ] == groups


def test_man_2_a_card_and_a_bank_transfer_are_two_charges_never_one_on_the_first_method():
    """MAN-2: a group is charged with one method valid for every subscription in it; methods
    that can't share a charge (a card and a bank transfer, a valid card and an invalid one) are
    split into their own groups, each naming the method it is charged with."""
    transfer = PaymentMethod(type="bank_transfer", recurring=False, valid=True)
    broken_card = PaymentMethod(type="card", recurring=True, valid=False)
    decision = renew(
        renewing_in(30, "S-1"),
        renewing_in(30, "S-2", payment_method=transfer),
        renewing_in(30, "S-3"),
        renewing_in(30, "S-4", payment_method=broken_card),
    )
    assert [(g.subscription_ids, g.payment_method) for g in decision.groups] == [
        (("S-1", "S-3"), CARD),
        (("S-2",), transfer),
        (("S-4",), broken_card),
    ]
    assert [g.total.amount for g in decision.groups] == [
        Decimal("840.00"),
        Decimal("420.00"),
        Decimal("420.00"),
    ]


def test_man_3_one_transaction_per_group_so_one_confirmation_per_group():
    decision = renew(renewing_in(30, "S-1"), renewing_in(30, "S-2", currency="EUR", country="FR"))
    totals = {t.currency: t.total for t in decision.preview.totals}
    assert {g.currency: g.total.amount for g in decision.groups} == totals


@pytest.mark.parametrize("today", [date(2026, 1, 15), date(2026, 3, 1), date(2026, 4, 15)])
def test_man_4_the_renewal_date_stays_unchanged(today):
    sub = subscription(renewal_date=date(2026, 4, 15))
    decision = renew(sub, today=today)
    assert decision.preview.lines[0].starts_on == date(2026, 4, 15)
    assert decision.outcome("S-1").next_renewal_date == date(2027, 4, 15)


def test_man_any_actor_other_than_the_buyer_is_refused_per_subscription():
    decision = renew(renewing_in(30), actor=Actor(user_id="U-2", csn="CSN-100"))
    assert reasons_of(decision) == {"NOT_AUTHORIZED"}
    assert decision.groups == ()


def test_all_reasons_merges_the_request_and_the_subscriptions_reasons():
    subs = [renewing_in(200, f"S-{i}") for i in range(3)]
    decision = renew(*subs, bulk_limit=2)
    assert codes(decision.all_reasons) == ["TOO_EARLY", "BULK_LIMIT_EXCEEDED"]
