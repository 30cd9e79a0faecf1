"""QUO-1..8: quotes from self-service, partners and sales."""

from datetime import date, timedelta
from decimal import Decimal

import pytest

from shared.eligibility import (
    Actor,
    Flags,
    PaymentMethod,
    Quote,
    QuoteChanges,
    automatic_quote_due,
    decide_accept_quote,
    decide_cancel_quote,
)
from shared.eligibility.identity import Sender
from shared.eligibility.schedules import automatic_quote_date

from .builders import (
    ACTOR,
    BUYER,
    TODAY,
    codes,
    policy,
    promotion,
    quote,
    reasons_of,
    renewing_in,
)

PARTNER = Actor(user_id="PU-1", csn="P-7")
BANK_TRANSFER = PaymentMethod(type="bank_transfer", recurring=True, valid=True)


@pytest.mark.parametrize(
    ("channel", "actor", "sold", "reasons"),
    [
        ("self_service", ACTOR, {}, set()),
        ("partner", PARTNER, {"purchase_method": "partner", "partner_csn": "P-7"}, set()),
        ("sales", ACTOR, {"purchase_method": "direct_sales"}, set()),
        # Self-service is closed to a reseller's subscription; its partner quotes it.
        (
            "self_service",
            ACTOR,
            {"purchase_method": "partner", "partner_csn": "P-7"},
            {"SELF_SERVICE_UNAVAILABLE_RESELLER"},
        ),
        # A partner or the sales team quote what self-service can't.
        ("sales", ACTOR, {"country": "BR", "flags": Flags(legacy_system=True)}, set()),
    ],
)
def test_quo_1_a_quote_comes_from_a_partner_the_sales_team_or_self_service(
    channel, actor, sold, reasons
):
    decision = quote(renewing_in(30, **sold), channel=channel, actor=actor)
    assert reasons_of(decision) == reasons


@pytest.mark.parametrize(
    ("recipients", "reasons"),
    [
        (0, []),
        (4, []),
        (5, ["TOO_MANY_RECIPIENTS"]),
    ],
)
@pytest.mark.parametrize("channel", ["self_service", "partner"])
def test_quo_2_up_to_4_recipients(channel, recipients, reasons):
    sub = renewing_in(30, purchase_method="partner", partner_csn="P-7")
    if channel == "self_service":
        sub = renewing_in(30)
    decision = quote(
        sub,
        channel=channel,
        actor=PARTNER if channel == "partner" else ACTOR,
        recipients=[f"r{i}@example.com" for i in range(recipients)],
    )
    assert codes(decision.reasons) == reasons


def test_quo_2_a_quote_is_grouped_by_csn_currency_and_purchase_method():
    decision = quote(renewing_in(30, "S-1"), renewing_in(40, "S-2", purchase_method="direct_sales"))
    assert [(g.purchase_method, g.subscription_ids) for g in decision.groups] == [
        ("direct_online", ("S-1",)),
        ("direct_sales", ("S-2",)),
    ]


@pytest.mark.parametrize(
    ("second", "reasons"),
    [
        ({}, []),
        ({"csn": "CSN-200"}, ["MIXED_CSN"]),
        ({"currency": "EUR", "country": "FR"}, ["MIXED_CURRENCY"]),
        ({"partner_csn": "P-8"}, ["MIXED_PARTNER"]),
    ],
)
def test_quo_3_one_customer_csn_one_currency_one_partner(second, reasons):
    """The sales team (a proven sender, issue 16) may quote any customer's subscriptions."""
    first = renewing_in(30, "S-1", purchase_method="partner", partner_csn="P-7")
    other = renewing_in(30, "S-2", **{"purchase_method": "partner", "partner_csn": "P-7", **second})
    decision = quote(first, other, channel="sales", sender=Sender(channel="sales"))
    assert codes(decision.reasons) == reasons
    assert decision.allowed is not reasons


def test_quo_1_a_partner_never_quotes_a_subscription_it_is_not_agent_of_record_of():
    """Issue 16: not MIXED_PARTNER (which would say the other subscription's partner), only
    NOT_AUTHORIZED, whether the partner is believed from the body or proven by its signature."""
    first = renewing_in(30, "S-1", purchase_method="partner", partner_csn="P-7")
    other = renewing_in(30, "S-2", purchase_method="partner", partner_csn="P-8")
    for sender in (None, Sender(channel="partner", partner_csn="P-7")):
        decision = quote(first, other, channel="partner", actor=PARTNER, sender=sender)
        assert codes(decision.all_reasons) == ["NOT_AUTHORIZED"]
        assert [o.subscription_id for o in decision.subscriptions] == ["S-2"]


@pytest.mark.parametrize(
    ("kind", "days_to_renewal", "reasons"),
    [
        ("renewal", 30, set()),
        ("renewal", -60, {"EXPIRED"}),
        ("new", -60, set()),  # an expired subscription is bought again
        ("alignment", 30, set()),
    ],
)
def test_quo_3_a_renewal_a_new_subscription_or_an_alignment(kind, days_to_renewal, reasons):
    sub = renewing_in(days_to_renewal)
    decision = quote(sub, kind=kind, target_date=sub.renewal_date)
    assert reasons_of(decision) == reasons


@pytest.mark.parametrize(
    ("changes", "kind", "reasons"),
    [
        (QuoteChanges(currency="EUR"), "renewal", ["CURRENCY_CHANGE"]),
        (QuoteChanges(currency="USD"), "renewal", []),  # the same currency is no change
        (QuoteChanges(add_seats=2), "renewal", ["SEAT_ADDITION"]),
        (QuoteChanges(success_plan=True), "renewal", ["SUCCESS_PLAN"]),
        (QuoteChanges(new_credit_line=True), "renewal", ["NEW_CREDIT_LINE"]),
        (QuoteChanges(start_date=date(2026, 4, 16)), "renewal", ["FUTURE_START_DATE"]),
        (QuoteChanges(start_date=date(2026, 4, 15)), "renewal", []),  # the renewal date
        (QuoteChanges(start_date=TODAY + timedelta(days=1)), "new", ["FUTURE_START_DATE"]),
        (QuoteChanges(start_date=TODAY), "new", []),
        (
            QuoteChanges(currency="EUR", add_seats=1, success_plan=True, new_credit_line=True),
            "renewal",
            ["CURRENCY_CHANGE", "SEAT_ADDITION", "SUCCESS_PLAN", "NEW_CREDIT_LINE"],
        ),
    ],
)
def test_quo_4_not_eligible_for_self_service(changes, kind, reasons):
    sub = renewing_in(44)  # renews on 2026-04-15
    self_service = quote(sub, kind=kind, changes=changes)
    assert codes(self_service.reasons) == reasons
    # The sales team can do what self-service can't.
    by_sales = quote(renewing_in(44, purchase_method="direct_sales"), kind=kind, changes=changes,
                     channel="sales")  # fmt: skip
    assert codes(by_sales.reasons) == []


@pytest.mark.parametrize(
    ("channel", "actor", "expires_on", "reasons"),
    [
        ("self_service", ACTOR, TODAY, ["QUOTE_CANCELLATION_NOT_SELF_SERVICE"]),
        ("partner", PARTNER, TODAY, []),
        ("partner", Actor(user_id="PU-2", csn="P-8"), TODAY, ["NOT_AUTHORIZED"]),
        ("sales", ACTOR, TODAY, []),
        ("partner", PARTNER, TODAY - timedelta(days=1), ["QUOTE_EXPIRED"]),
        (
            "self_service",
            ACTOR,
            TODAY - timedelta(days=1),
            ["QUOTE_CANCELLATION_NOT_SELF_SERVICE", "QUOTE_EXPIRED"],
        ),
    ],
)
def test_quo_5_a_quote_is_cancelled_by_its_partner_not_self_service(
    channel, actor, expires_on, reasons
):
    sent = Quote(quote_number="Q-1", csn="CSN-100", expires_on=expires_on, partner_csn="P-7")
    decision = decide_cancel_quote(actor, sent, channel=channel, today=TODAY)
    assert codes(decision.reasons) == reasons
    assert decision.allowed is not reasons


def test_quo_5_quo_8_a_closed_quote_is_neither_accepted_nor_cancelled_before_its_date():
    """Expired by the quote service's loop, or cancelled already: QUOTE_EXPIRED, even on a day
    its `expires_on` has not passed."""
    closed = Quote(
        quote_number="Q-1", csn="CSN-100", expires_on=TODAY, partner_csn="P-7", closed=True
    )
    sales = Actor(user_id="sales-1", csn="CSN-100")
    cancel = decide_cancel_quote(sales, closed, channel="sales", today=TODAY)
    accept = decide_accept_quote(ACTOR, closed, buyer=BUYER, channel="self_service", today=TODAY)
    assert (codes(cancel.reasons), codes(accept.reasons)) == (["QUOTE_EXPIRED"], ["QUOTE_EXPIRED"])
    assert not cancel.allowed and not accept.allowed


@pytest.mark.parametrize(
    ("promotions", "code", "amount"),
    [
        ((), None, Decimal("420.00")),
        ((promotion("15"),), "SPRING15", Decimal("357.00")),
        ((promotion("15"), promotion("20", "BIGGER")), "BIGGER", Decimal("336.00")),  # the best
        ((promotion("15", ends_on=TODAY - timedelta(days=1)),), None, Decimal("420.00")),
        ((promotion("15", product_codes=("REVIT",)),), None, Decimal("420.00")),
    ],
)
def test_quo_6_promotions_apply_automatically_and_show_in_the_quote(promotions, code, amount):
    decision = quote(renewing_in(30), promotions=promotions)
    line = decision.preview.lines[0]
    assert (line.promotion_code, line.amount) == (code, amount)
    assert line.subtotal - line.discount == line.amount


@pytest.mark.parametrize(
    ("sold", "quote_date"),
    [
        ({"term": "annual"}, date(2026, 3, 16)),  # 30 days before the renewal date
        ({"term": "three_year"}, date(2026, 3, 16)),
        ({"term": "monthly"}, None),  # not by term
        ({"auto_renew": True}, None),  # renews by itself
        ({"status": "trial"}, None),
        ({"auto_renew": True, "payment_method": BANK_TRANSFER}, date(2026, 3, 16)),  # AUTO-4
    ],
)
def test_quo_7_some_subscriptions_get_an_automatic_quote_30_days_before_expiry(sold, quote_date):
    sub = renewing_in(44, **sold)  # renews on 2026-04-15
    assert automatic_quote_date(sub, policy()) == quote_date
    if quote_date is not None:
        assert not automatic_quote_due(sub, quote_date - timedelta(days=1), policy())
        assert automatic_quote_due(sub, quote_date, policy())
        assert automatic_quote_due(sub, sub.renewal_date - timedelta(days=1), policy())
        assert not automatic_quote_due(sub, sub.renewal_date, policy())


def test_quo_8_the_quote_carries_its_expiry_date_and_total_with_discounts():
    sub = renewing_in(10, seats=2)
    decision = quote(sub, promotions=(promotion("15"),))
    preview = decision.preview
    assert preview.expires_on == TODAY + timedelta(days=30)
    assert [(t.currency, t.subtotal, t.discount, t.total) for t in preview.totals] == [
        ("USD", Decimal("840.00"), Decimal("126.00"), Decimal("714.00"))
    ]


def test_quo_8_a_renewal_quote_expires_no_later_than_grace():
    sub = renewing_in(-40)  # grace ends in 5 days
    assert quote(sub).preview.expires_on == TODAY + timedelta(days=5)


@pytest.mark.parametrize(
    ("changes", "reasons"),
    [
        (QuoteChanges(seats=0), ["INVALID_QUANTITY"]),
        (QuoteChanges(seats=-3), ["INVALID_QUANTITY"]),
        (QuoteChanges(add_seats=-1), ["INVALID_QUANTITY"]),
    ],
)
def test_quote_out_of_range_numbers_are_invalid_quantities(changes, reasons):
    decision = quote(renewing_in(30), changes=changes, channel="sales")
    assert codes(decision.reasons) == reasons
    assert reasons_of(decision) == set()  # the request's numbers, not the subscription's
    assert not decision.allowed
    if changes.seats is not None:
        assert decision.preview.lines == ()  # nothing is priced for an impossible seat count


def test_quote_with_no_subscription_is_an_invalid_quantity():
    decision = quote(ids=[])
    assert codes(decision.reasons) == ["INVALID_QUANTITY"]
    assert not decision.allowed


def test_quote_is_one_document_refused_when_any_subscription_is():
    decision = quote(renewing_in(30, "S-1"), renewing_in(200, "S-2"))
    assert decision.allowed_ids == ("S-1",)
    assert not decision.allowed


@pytest.mark.parametrize("kind", ["renewal", "new"])
@pytest.mark.parametrize(
    ("second_method", "reasons"),
    [
        (None, []),
        (BANK_TRANSFER, ["PAYMENT_METHOD_MISMATCH"]),  # a card and a bank transfer
        (PaymentMethod(type="card", recurring=True, valid=False), ["PAYMENT_METHOD_MISMATCH"]),
    ],
)
def test_man_2_a_quote_is_one_charge_on_one_payment_method(kind, second_method, reasons):
    """A quote is one order: its subscriptions must share one payment method, or the buyer's
    acceptance would charge them all to the first one's."""
    second = {} if second_method is None else {"payment_method": second_method}
    decision = quote(renewing_in(30, "S-1"), renewing_in(30, "S-2", **second), kind=kind)
    assert codes(decision.reasons) == reasons
    assert decision.allowed is not reasons


def test_man_2_a_quote_whose_methods_drifted_apart_since_it_was_sent_is_not_accepted():
    """The subscription system changed one subscription's method after the quote was sent:
    accepting it would charge that subscription to the other's method."""
    sent = Quote(quote_number="Q-1", csn="CSN-100", expires_on=TODAY + timedelta(days=10))
    same = [renewing_in(30, "S-1"), renewing_in(30, "S-2")]
    apart = [renewing_in(30, "S-1"), renewing_in(30, "S-2", payment_method=BANK_TRANSFER)]
    accepted = decide_accept_quote(
        ACTOR, sent, buyer=BUYER, channel="self_service", today=TODAY, subscriptions=same
    )
    refused = decide_accept_quote(
        ACTOR, sent, buyer=BUYER, channel="self_service", today=TODAY, subscriptions=apart
    )
    assert accepted.allowed and not accepted.reasons
    assert codes(refused.reasons) == ["PAYMENT_METHOD_MISMATCH"] and not refused.allowed
