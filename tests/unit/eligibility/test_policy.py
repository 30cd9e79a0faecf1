"""The policy: the seeds' defaults, overridable from the environment and by keyword."""

from decimal import Decimal

import pytest
from pydantic import ValidationError

from shared.eligibility import Policy


@pytest.mark.parametrize(
    ("field", "default"),
    [
        ("window_opens_days_before", 90),  # WIN-1
        ("grace_days_quote_or_manual", 45),  # WIN-2
        ("grace_days_otherwise", 30),  # WIN-2
        ("bulk_limit", 100),  # AUTO-2, MAN-1
        ("max_quote_recipients", 4),  # QUO-2
        ("automatic_quote_days_before", 30),  # QUO-7
        ("renewal_discount_percent", Decimal("10")),  # PRICE-1
        (
            "manual_only_payment_methods",
            {"bank_transfer", "alipay", "convenience_store", "atm_transfer"},
        ),  # AUTO-4
    ],
)
def test_policy_defaults_are_the_seeds(field, default):
    assert getattr(Policy(), field) == default


@pytest.mark.parametrize("country", ["US", "CA", "AU", "FR", "DE", "IE", "IS", "LI", "NO", "GB",
                                     "CH"])  # fmt: skip
def test_policy_self_service_countries_are_us_canada_australia_and_europe(country):
    assert country in Policy().self_service_countries


def test_policy_self_service_countries_leave_out_the_rest_of_the_world():
    countries = Policy().self_service_countries
    assert {"JP", "CN", "BR", "IN", "NZ", "MX"}.isdisjoint(countries)
    assert len(countries) == 27 + 3 + 2 + 3


def test_policy_is_overridden_from_the_environment(monkeypatch):
    monkeypatch.setenv("RENEWALS_POLICY_BULK_LIMIT", "5")
    monkeypatch.setenv("RENEWALS_POLICY_SELF_SERVICE_COUNTRIES", '["JP", "US"]')
    policy = Policy()
    assert policy.bulk_limit == 5
    assert policy.self_service_countries == {"JP", "US"}
    assert Policy(bulk_limit=7).bulk_limit == 7  # a keyword wins over the environment


@pytest.mark.parametrize(
    "overrides",
    [
        {"bulk_limit": 0},
        {"renewal_discount_percent": Decimal("101")},
        {"window_opens_days_before": -1},
        {"no_such_rule": 1},
    ],
)
def test_policy_refuses_impossible_values(overrides):
    with pytest.raises(ValidationError):
        Policy(**overrides)


def test_policy_is_immutable():
    with pytest.raises(ValidationError):
        Policy().bulk_limit = 3  # type: ignore[misc]
