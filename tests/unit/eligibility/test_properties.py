"""Properties over many generated subscriptions and requests (hypothesis)."""

from collections import Counter
from datetime import date, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.eligibility import (
    Actor,
    Decision,
    Flags,
    PaymentMethod,
    PriceBasis,
    QuoteChanges,
    QuoteRequest,
    Reason,
    decide_add_seats,
    decide_align_dates,
    decide_auto_renew,
    decide_change_terms,
    decide_manual_renewal,
    decide_quote,
    group_subscriptions,
)
from shared.eligibility.dates import add_term
from shared.eligibility.grouping import group_key
from shared.eligibility.pricing import price_line, prorated_days_left
from shared.eligibility.reasons import in_contract_order

from .builders import ACTOR, BUYER, PRICES, TODAY, policy, promotion, subscription

PROPERTIES = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])

terms = st.sampled_from(["monthly", "annual", "three_year"])
days = st.integers(min_value=-150, max_value=1200)


@st.composite
def subscriptions(draw, subscription_id=None):
    flags = Flags(
        maintenance_plan=draw(st.booleans()) and draw(st.booleans()),
        third_party_platform=draw(st.booleans()) and draw(st.booleans()),
        legacy_system=False,
        retired_product=draw(st.booleans()) and draw(st.booleans()),
    )
    return subscription(
        subscription_id or draw(st.sampled_from([f"S-{i}" for i in range(12)])),
        csn=draw(st.sampled_from(["CSN-100", "CSN-100", "CSN-200"])),
        term=draw(terms),
        seats=draw(st.integers(min_value=-1, max_value=5)),
        currency=draw(st.sampled_from(["USD", "EUR", "JPY"])),
        country=draw(st.sampled_from(["US", "FR", "JP"])),
        purchase_method=draw(st.sampled_from(["direct_online", "direct_sales", "partner"])),
        partner_csn=draw(st.sampled_from([None, "P-7", "P-8"])),
        payment_method=PaymentMethod(
            type=draw(st.sampled_from(["card", "paypal", "bank_transfer", "alipay"])),
            recurring=draw(st.booleans()),
            valid=draw(st.booleans()),
        ),
        auto_renew=draw(st.booleans()),
        status=draw(st.sampled_from(["active", "active", "active", "trial"])),
        renewal_date=TODAY + timedelta(days=draw(days)),
        flags=flags,
        managed_org=draw(st.booleans()),
    )


subscription_lists = st.lists(subscriptions(), max_size=12, unique_by=lambda s: s.subscription_id)
actors = st.sampled_from(
    [ACTOR, Actor(user_id="U-9", csn="CSN-200"), Actor(user_id="PU", csn="P-7")]
)


@PROPERTIES
@given(subscription_lists)
def test_groups_partition_the_input_and_never_mix_csn_currency_or_purchase_method(subs):
    groups = group_subscriptions(subs)
    grouped = [i for g in groups for i in g.subscription_ids]
    assert Counter(grouped) == Counter(s.subscription_id for s in subs)
    by_id = {s.subscription_id: s for s in subs}
    keys = [(g.csn, g.currency, g.purchase_method) for g in groups]
    assert len(set(keys)) == len(keys)
    for g in groups:
        assert g.subscription_ids
        assert {group_key(by_id[i]) for i in g.subscription_ids} == {
            (g.csn, g.currency, g.purchase_method)
        }


@PROPERTIES
@given(subscriptions("S-1"), st.integers(min_value=0, max_value=90), terms)
def test_early_renewal_never_moves_the_renewal_date(sub, days_before, term):
    sub = subscription("S-1", term=term, renewal_date=sub.renewal_date, seats=2)
    today = sub.renewal_date - timedelta(days=days_before)
    decision = decide_manual_renewal(
        ACTOR, [sub], ["S-1"], prices=PRICES, promotions=(), today=today, policy=policy()
    )
    assert decision.outcome("S-1").next_renewal_date == add_term(sub.renewal_date, term)
    for line in decision.preview.lines:
        assert line.starts_on == sub.renewal_date


@PROPERTIES
@given(
    unit=st.decimals(min_value=Decimal("0.01"), max_value=Decimal("100000"), places=4),
    seats=st.integers(min_value=1, max_value=1000),
    renewal_offset=st.integers(min_value=-400, max_value=1200),
    term=terms,
    currency=st.sampled_from(["USD", "JPY", "KWD"]),
    percent_off=st.sampled_from([None, Decimal("15"), Decimal("100")]),
)
def test_pro_rata_never_exceeds_a_full_term_per_term_left(unit, seats, renewal_offset, term,
                                                          currency, percent_off):  # fmt: skip
    """SEAT-1: within a term of today never more than a full term; after an early renewal
    (the renewal date terms ahead) never more than a full term for each term left."""
    renewal_date = TODAY + timedelta(days=renewal_offset)
    left, term_days = prorated_days_left(TODAY, renewal_date, term)
    promo = None if percent_off is None else promotion(str(percent_off), starts_on=date.min)

    def line(prorated_days=None, days_in_term=None):
        return price_line(
            subscription_id="S-1", product_code="ACDLT", currency=currency, term=term,
            seats=seats, basis=PriceBasis.RENEWAL, exact_unit_price=unit, starts_on=TODAY,
            ends_on=renewal_date, promotion=promo, prorated_days=prorated_days,
            term_days=days_in_term,
        )  # fmt: skip

    prorated = line(left, term_days)
    terms_left = left // term_days + 1
    # a full term for each term left, rounded once (rounding each term apart would round a
    # ¥0.35 term down to ¥0 while ¥0.50 of it rounds up to ¥1)
    full_terms_left = line(terms_left * term_days, term_days)
    assert left >= 0
    if renewal_date <= add_term(TODAY, term):
        assert left <= term_days
    assert Decimal(0) <= prorated.amount <= full_terms_left.amount
    assert prorated.subtotal - prorated.discount == prorated.amount


@PROPERTIES
@given(subscriptions("S-1"), st.integers(min_value=-3, max_value=50))
def test_added_seats_never_cost_more_than_a_full_term_per_term_left(sub, seats):
    decision = decide_add_seats(
        ACTOR, [sub], "S-1", seats=seats, prices=PRICES, promotions=(), today=TODAY,
        policy=policy(),
    )  # fmt: skip
    outcome = decision.outcome("S-1")
    if outcome.total is not None:
        assert seats > 0
        left, term_days = prorated_days_left(TODAY, sub.renewal_date, sub.term)
        terms_left = left // term_days + 1  # SEAT-1 after an early renewal
        assert 0 <= outcome.total.amount <= outcome.unit_price.amount * seats * terms_left


requests = st.fixed_dictionaries(
    {
        "action": st.sampled_from(
            ["manual_renewal", "auto_renew_on", "auto_renew_off", "quote", "change_terms",
             "add_seats", "align_dates"]
        ),
        "subscriptions": subscription_lists,
        "extra_ids": st.lists(st.sampled_from(["S-1", "S-2", "S-404"]), max_size=3),
        "actor": actors,
        "seats": st.one_of(st.none(), st.integers(min_value=-2, max_value=5)),
        "term": st.one_of(st.none(), terms),
        "channel": st.sampled_from(["self_service", "partner", "sales"]),
        "kind": st.sampled_from(["renewal", "new", "alignment"]),
        "recipients": st.integers(min_value=0, max_value=6),
        "currency": st.sampled_from([None, "USD", "EUR"]),
        "target_offset": st.integers(min_value=-30, max_value=500),
        "today_offset": st.integers(min_value=-30, max_value=30),
    }
)  # fmt: skip


def _decide(r) -> Decision:
    subs = r["subscriptions"]
    ids = [s.subscription_id for s in subs] + r["extra_ids"]
    today = TODAY + timedelta(days=r["today_offset"])
    common = {"prices": PRICES, "promotions": (promotion(),), "today": today, "policy": policy()}
    match r["action"]:
        case "manual_renewal":
            return decide_manual_renewal(r["actor"], subs, ids, **common)
        case "auto_renew_on" | "auto_renew_off":
            return decide_auto_renew(
                r["actor"], subs, ids, enabled=r["action"] == "auto_renew_on", today=today,
                policy=policy(),
            )  # fmt: skip
        case "quote":
            request = QuoteRequest(
                channel=r["channel"],
                kind=r["kind"],
                subscription_ids=tuple(ids),
                recipients=tuple(f"r{i}@example.com" for i in range(r["recipients"])),
                changes=QuoteChanges(term=r["term"], seats=r["seats"], currency=r["currency"]),
            )
            return decide_quote(r["actor"], subs, request, **common)
        case "change_terms":
            return decide_change_terms(
                r["actor"], subs, ids[0] if ids else "S-404", term=r["term"], seats=r["seats"],
                **common,
            )  # fmt: skip
        case "add_seats":
            return decide_add_seats(
                r["actor"], subs, ids[0] if ids else "S-404", seats=r["seats"] or 0, **common
            )
        case _:
            return decide_align_dates(
                r["actor"], subs, ids, target_date=TODAY + timedelta(days=r["target_offset"]),
                **common,
            )  # fmt: skip


@PROPERTIES
@given(requests)
def test_every_refusal_has_at_least_one_reason_in_the_contracts_order(request):
    decision = _decide(request)
    for outcome in decision.subscriptions:
        assert outcome.allowed is (not outcome.reasons)
        assert outcome.reasons == in_contract_order(outcome.reasons)
        assert all(isinstance(r, Reason) for r in outcome.reasons)
    assert decision.reasons == in_contract_order(decision.reasons)
    if not decision.allowed:
        assert decision.reasons or decision.refused_ids
    if decision.allowed:
        assert not decision.reasons and decision.allowed_ids


@PROPERTIES
@given(requests)
def test_groups_hold_only_allowed_subscriptions_and_add_up_to_the_preview(request):
    decision = _decide(request)
    grouped = {i for g in decision.groups for i in g.subscription_ids}
    assert grouped <= set(decision.allowed_ids)
    if decision.preview is not None and decision.groups:
        by_currency: Counter[str] = Counter()
        for g in decision.groups:
            by_currency[g.total.currency] += g.total.amount
        assert dict(by_currency) == {t.currency: t.total for t in decision.preview.totals}


def test_builders_buyer_is_the_actor():
    assert (BUYER.user_id, ACTOR.user_id) == ("U-1", "U-1")
