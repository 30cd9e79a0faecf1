"""SELF-1..3: where self-service applies, and the reasons when it doesn't."""

import pytest

from shared.eligibility import Actor, Flags
from shared.eligibility.self_service import self_service_reasons

from .builders import (
    ACTOR,
    add_seats,
    align,
    auto_renew,
    change_terms,
    codes,
    policy,
    quote,
    reasons_of,
    renew,
    renewing_in,
)

SELF_SERVICE_ACTIONS = [
    pytest.param(lambda s: renew(s), id="manual_renewal"),
    pytest.param(lambda s: auto_renew(s), id="auto_renew_on"),
    pytest.param(lambda s: auto_renew(s, enabled=False), id="auto_renew_off"),
    pytest.param(lambda s: quote(s), id="self_service_quote"),
    pytest.param(lambda s: change_terms(s, term="three_year"), id="change_terms"),
    pytest.param(lambda s: add_seats(s, 1), id="add_seats"),
    pytest.param(lambda s: align(s, target_date=s.renewal_date), id="align_dates"),
]


@pytest.mark.parametrize(
    ("fields", "reasons"),
    [
        ({}, set()),
        ({"flags": Flags(maintenance_plan=True)}, {"SELF_SERVICE_UNAVAILABLE_MAINTENANCE_PLAN"}),
        (
            {"flags": Flags(third_party_platform=True)},
            {"SELF_SERVICE_UNAVAILABLE_THIRD_PARTY_PLATFORM"},
        ),
        ({"flags": Flags(legacy_system=True)}, {"SELF_SERVICE_UNAVAILABLE_LEGACY_SYSTEM"}),
        ({"purchase_method": "partner"}, {"SELF_SERVICE_UNAVAILABLE_RESELLER"}),
        ({"flags": Flags(retired_product=True)}, {"SELF_SERVICE_UNAVAILABLE_RETIRED_PRODUCT"}),
        ({"country": "JP"}, {"SELF_SERVICE_UNAVAILABLE_COUNTRY"}),
    ],
)
@pytest.mark.parametrize("decide", SELF_SERVICE_ACTIONS)
def test_self_1_no_self_service_for_some_countries_plans_platforms_resellers_or_products(
    decide, fields, reasons
):
    assert reasons_of(decide(renewing_in(30, **fields))) == reasons


@pytest.mark.parametrize(
    ("country", "purchase_method", "available"),
    [
        ("US", "direct_online", True),
        ("CA", "direct_online", True),
        ("AU", "direct_online", True),
        ("FR", "direct_online", True),  # EU
        ("NO", "direct_online", True),  # EEA
        ("GB", "direct_online", True),  # UK
        ("CH", "direct_online", True),  # Switzerland
        ("US", "direct_sales", True),  # in some cases through the vendor's sales team
        ("US", "partner", False),
        ("JP", "direct_online", False),
        ("BR", "direct_online", False),
        ("NZ", "direct_online", False),
    ],
)
def test_self_2_self_service_is_for_direct_purchases_in_us_canada_europe_australia(
    country, purchase_method, available
):
    sub = renewing_in(30, country=country, purchase_method=purchase_method)
    assert (not self_service_reasons(sub, policy())) is available


def test_self_2_the_countries_are_a_policy_value():
    sub = renewing_in(30, country="JP")
    assert self_service_reasons(sub, policy(self_service_countries=frozenset({"JP"}))) == ()


def test_self_3_every_reason_at_once_in_the_contracts_order():
    sub = renewing_in(
        30,
        country="BR",
        purchase_method="partner",
        flags=Flags(
            maintenance_plan=True, third_party_platform=True, legacy_system=True,
            retired_product=True,
        ),
    )  # fmt: skip
    assert codes(renew(sub).outcome("S-1").reasons) == [
        "SELF_SERVICE_UNAVAILABLE_COUNTRY",
        "SELF_SERVICE_UNAVAILABLE_MAINTENANCE_PLAN",
        "SELF_SERVICE_UNAVAILABLE_THIRD_PARTY_PLATFORM",
        "SELF_SERVICE_UNAVAILABLE_LEGACY_SYSTEM",
        "SELF_SERVICE_UNAVAILABLE_RESELLER",
        "SELF_SERVICE_UNAVAILABLE_RETIRED_PRODUCT",
    ]


@pytest.mark.parametrize("channel", ["partner", "sales"])
def test_self_3_partner_and_sales_quotes_are_not_refused_for_self_service_reasons(channel):
    sub = renewing_in(30, country="BR", purchase_method="partner", partner_csn="P-7",
                      flags=Flags(legacy_system=True))  # fmt: skip
    actor = Actor(user_id="PU-1", csn="P-7") if channel == "partner" else ACTOR
    assert reasons_of(quote(sub, channel=channel, actor=actor)) == set()


def test_self_3_a_refusal_says_why_with_several_reasons_across_rules():
    sub = renewing_in(200, country="JP", purchase_method="partner")
    assert codes(renew(sub).outcome("S-1").reasons) == [
        "TOO_EARLY",
        "SELF_SERVICE_UNAVAILABLE_COUNTRY",
        "SELF_SERVICE_UNAVAILABLE_RESELLER",
    ]
