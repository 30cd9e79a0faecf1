"""Building the domain types from dicts with the contract's field names."""

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from shared.eligibility import InvalidRequestError, parse_explain_request, subscription_from_dict
from shared.eligibility.parsing import price_from_dict, promotion_from_dict

EXAMPLES = Path(__file__).parents[3] / "shared" / "eligibility" / "examples"

UPSERTED = {
    "subscription_id": "S-1",
    "revision": 7,
    "csn": "CSN-100",
    "product_code": "ACDLT",
    "product_name": "AutoCAD LT",
    "plan": "standard",
    "term": "annual",
    "seats": 2,
    "currency": "USD",
    "country": "US",
    "purchase_method": "direct_online",
    "partner_csn": None,
    "payment_method": {"type": "card", "recurring": True, "valid": True},
    "auto_renew": True,
    "status": "active",
    "start_date": "2025-04-15",
    "renewal_date": "2026-04-15",
    "flags": {
        "maintenance_plan": False,
        "third_party_platform": False,
        "legacy_system": False,
        "retired_product": True,
    },
    "managed_org": False,
    "buyer": {"user_id": "U-1", "email": "ana@example.com", "locale": "en"},
    "primary_admin": {"user_id": "U-2", "email": "bo@example.com", "locale": "fr"},
}


def test_a_subscription_upserted_payload_becomes_a_subscription():
    sub = subscription_from_dict(UPSERTED)
    assert (sub.subscription_id, sub.renewal_date, sub.seats) == ("S-1", date(2026, 4, 15), 2)
    assert sub.flags.retired_product and sub.admin.user_id == "U-2"


def test_optional_fields_have_defaults_and_the_admin_is_the_buyer():
    minimal = {
        k: v
        for k, v in UPSERTED.items()
        if k not in {"product_name", "plan", "partner_csn", "flags", "managed_org", "primary_admin"}
    }
    sub = subscription_from_dict(minimal)
    assert sub.admin == sub.buyer
    assert not sub.flags.retired_product


def test_prices_and_promotions_read_decimal_strings():
    price = price_from_dict(
        {"product_code": "P", "term": "annual", "currency": "USD", "list_price": "466.67"}
    )
    assert (price.list_price, price.renewal_price) == (Decimal("466.67"), None)
    promo = promotion_from_dict(
        {
            "promotion_code": "X",
            "product_codes": ["P"],
            "percent_off": "12.5",
            "starts_on": "2026-01-01",
            "ends_on": "2026-01-31",
        }
    )
    assert promo.percent_off == Decimal("12.5")
    assert promo.product_codes == ("P",)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"renewal_date": None}, "renewal_date: Input should be a valid date"),
        ({"term": "weekly"}, "term: Input should be 'monthly', 'annual' or 'three_year'"),
        ({"renewal_date": "2025-02-29"}, "renewal_date: Input should be a valid date"),
    ],
)
def test_bad_subscription_fields_are_named_in_one_line(change, message):
    with pytest.raises(InvalidRequestError) as error:
        subscription_from_dict({**UPSERTED, **change})
    assert str(error.value).startswith(message)
    assert "\n" not in str(error.value)


def test_money_as_a_float_is_refused():
    with pytest.raises(InvalidRequestError, match="list_price: Value error, must be a decimal"):
        price_from_dict({"product_code": "P", "term": "annual", "currency": "USD",
                         "list_price": 466.67})  # fmt: skip


def _request(**changes):
    request = json.loads((EXAMPLES / "manual_renewal_single.json").read_text())
    request.update(changes)
    return request


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"today": "tomorrow"}, "today: Input should be a valid date"),
        ({"action": "renew"}, "action: Input should be"),
        ({"actor": {"user_id": "U-1"}}, "actor.csn: Field required"),
        ({"todya": "2026-03-02"}, "todya: Extra inputs are not permitted"),
        ({"action": "quote"}, "quote: Field required for this action"),
        ({"action": "add_seats"}, "seats: Field required for this action"),
        ({"action": "align_dates"}, "target_date: Field required for this action"),
        ({"action": "change_terms"}, "terms: Field required for this action"),
        ({"action": "add_seats", "seats": 1, "subscription_ids": []}, "add_seats is about one"),
        ({"action": "quote", "quote": {"channel": "fax", "kind": "renewal"}}, "quote.channel:"),
        ({"policy": {"bulk_limit": 0}}, "policy.bulk_limit: Input should be greater than"),
        ({"policy": {"bulk_limt": 5}}, "policy.bulk_limt: Extra inputs are not permitted"),
        ({"subscriptions": [{"subscription_id": "S-1"}]}, "subscriptions[0].csn: Field required"),
    ],
)
def test_bad_requests_are_refused_with_a_one_line_message(changes, message):
    with pytest.raises(InvalidRequestError) as error:
        parse_explain_request(_request(**changes))
    assert str(error.value).startswith(message)
    assert "\n" not in str(error.value)


def test_every_example_request_parses():
    for path in sorted(EXAMPLES.glob("*.json")):
        parse_explain_request(json.loads(path.read_text()))


def test_policy_overrides_in_a_request():
    request = parse_explain_request(_request(policy={"bulk_limit": 3}))
    assert request.policy.bulk_limit == 3
    assert request.subscription_ids == ("S-1",)
