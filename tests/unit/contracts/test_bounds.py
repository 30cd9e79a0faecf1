"""Every field of the contract is bounded (issue 15 item 1): lengths, seats, money, list sizes.

Outside a bound, a message is malformed: refused at the door (`InvalidEventError`, then the
DLQ) before a handler or a time-driven loop can choke on it. Business limits (over 100 ids,
zero seats) stay inside the bounds: they are refusals with reasons, not dead letters.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any

import pytest
from pydantic import Field, TypeAdapter, ValidationError

from deploy.local import samples
from shared.contracts import REGISTRIES, billing_events, payment_events, renewal_commands
from shared.contracts.common import (
    MAX_AMOUNT,
    MAX_IDS,
    MAX_SEATS,
    MAX_TEXT_LENGTH,
    MAX_UNIT_PRICE,
    MONEY_DECIMALS,
    Actor,
    Amount,
    PriceLine,
)
from shared.contracts.envelope import EventData, InvalidEventError, encode, new_event

CSN = "5100000001"
ACTOR = Actor(user_id="u-1", csn=CSN)
NOW = datetime(2025, 3, 1, tzinfo=UTC)


def document_of(data: EventData) -> dict[str, Any]:
    return json.loads(encode(new_event(data, subject=CSN, source="/tests", time=NOW)))  # type: ignore[no-any-return]


def parse(topic: str, document: dict[str, Any]) -> Any:
    return REGISTRIES[topic].parse(json.dumps(document).encode())


def with_data(data: EventData, **changes: Any) -> dict[str, Any]:
    document = document_of(data)
    document["data"].update(changes)
    return document


def refused(topic: str, document: dict[str, Any], problem: str) -> None:
    with pytest.raises(InvalidEventError, match=problem):
        parse(topic, document)


PRICE = samples.price("ACAD", list_price="466.00")
SNAPSHOT = samples.subscription(CSN, "SUB-1", renewal_date=date(2025, 4, 1))
ADD_SEATS = renewal_commands.AddSeats(request_id="r-1", actor=ACTOR, subscription_id="S", seats=2)
PAYMENT = payment_events.PaymentReceived(
    payment_reference="P-1",
    order_id="O-1",
    amount=Decimal("5895.00"),
    currency="EUR",
)


def renewal_request(count: int) -> renewal_commands.RequestRenewal:
    return renewal_commands.RequestRenewal(
        request_id="r-1", actor=ACTOR, subscription_ids=[f"S-{n}" for n in range(count)]
    )


# --- the envelope ---------------------------------------------------------------------------


@pytest.mark.parametrize(("field", "longest"), [("id", 128), ("source", 256), ("subject", 128)])
def test_envelope_fields_have_a_maximum_length(field: str, longest: int) -> None:
    document = document_of(PRICE)

    parse("catalog.events", {**document, field: "x" * longest})
    refused("catalog.events", {**document, field: "x" * (longest + 1)}, f"{field}: String should")


def test_a_type_too_long_is_an_unknown_type() -> None:
    refused("catalog.events", {**document_of(PRICE), "type": "t" * 10_000}, "unknown type")


# --- identifiers and text -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("topic", "data", "field", "longest"),
    [
        ("renewal.commands", ADD_SEATS, "request_id", 128),
        ("renewal.commands", ADD_SEATS, "subscription_id", 64),
        ("catalog.events", PRICE, "product_code", 64),
        ("payment.events", PAYMENT, "payment_reference", 128),
        ("payment.events", PAYMENT, "order_id", 64),
        ("subscription.events", SNAPSHOT, "csn", 64),
        ("subscription.events", SNAPSHOT, "product_name", 1000),
    ],
)
def test_identifiers_and_text_have_a_maximum_length(
    topic: str, data: EventData, field: str, longest: int
) -> None:
    parse(topic, with_data(data, **{field: "x" * longest}))
    refused(topic, with_data(data, **{field: "x" * (longest + 1)}), f"data.{field}: String")


def test_the_actor_s_user_id_has_a_maximum_length() -> None:
    document = with_data(ADD_SEATS, actor={"user_id": "u" * 129, "csn": CSN})
    refused("renewal.commands", document, "data.actor.user_id: String should have at most 128")


def test_an_email_has_at_most_320_characters() -> None:
    buyer = {"user_id": "u-1", "email": "a" * 64 + "@" + "d" * 255, "locale": "en"}
    parse("subscription.events", with_data(SNAPSHOT, buyer=buyer))
    long_buyer = {**buyer, "email": "a" * 65 + "@" + "d" * 255}
    refused("subscription.events", with_data(SNAPSHOT, buyer=long_buyer), "data.buyer.email")


def test_a_promotion_code_has_a_maximum_length() -> None:
    promotion = samples.price("ACAD")  # any catalog event will do for the envelope
    document = document_of(promotion)
    document["type"] = "promotion.published"
    document["data"] = {
        "promotion_code": "P" * 65,
        "product_codes": ["ACAD"],
        "percent_off": "15",
        "starts_on": "2025-03-01",
        "ends_on": "2025-03-31",
    }
    refused("catalog.events", document, "data.promotion_code: String should have at most 64")


# --- seats ----------------------------------------------------------------------------------


def test_seats_of_a_subscription_are_from_1_to_the_policy_ceiling() -> None:
    assert (
        parse("subscription.events", with_data(SNAPSHOT, seats=MAX_SEATS)).data.seats == MAX_SEATS
    )
    refused("subscription.events", with_data(SNAPSHOT, seats=MAX_SEATS + 1), "data.seats")
    refused("subscription.events", with_data(SNAPSHOT, seats=0), "data.seats")


def test_seats_asked_for_are_bounded_but_zero_or_fewer_is_a_business_refusal() -> None:
    for seats in (0, -1, MAX_SEATS, -MAX_SEATS):
        assert parse("renewal.commands", with_data(ADD_SEATS, seats=seats)).data.seats == seats
    refused("renewal.commands", with_data(ADD_SEATS, seats=MAX_SEATS + 1), "data.seats")
    refused("renewal.commands", with_data(ADD_SEATS, seats=-MAX_SEATS - 1), "data.seats")
    refused("renewal.commands", with_data(ADD_SEATS, seats=10**30), "data.seats")


# --- money ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "price", ["466", "466.5", "0.0001", "1179.00", str(MAX_UNIT_PRICE), "10000000.0000"]
)
def test_a_price_within_bounds_is_taken(price: str) -> None:
    assert parse("catalog.events", with_data(PRICE, list_price=price)).data.list_price == Decimal(
        price
    )


@pytest.mark.parametrize(
    ("price", "problem"),
    [
        ("0", "greater than 0"),
        ("0.00", "greater than 0"),
        ("-1.00", "greater than 0"),
        ("10000000.01", "less than or equal to"),
        ("1E+27", "plain digits"),  # breaks rounding in every loop that prices it
        ("1E+2", "plain digits"),  # 100, but not how the contract writes money
        ("1e2", "plain digits"),
        ("NaN", "plain digits"),
        ("Infinity", "plain digits"),
        ("1_000", "plain digits"),
        (" 5", "plain digits"),
        ("+5", "plain digits"),
        (".5", "plain digits"),
        ("5.", "plain digits"),
        ("\u0665", "plain digits"),  # an Arabic-Indic 5, which Decimal takes
        ("1.23456", "no more than 4 decimal places"),
        ("9" * 40, "plain digits"),
    ],
)
def test_a_price_out_of_bounds_or_not_in_plain_digits_is_refused(price: str, problem: str) -> None:
    refused("catalog.events", with_data(PRICE, list_price=price), problem)
    refused("catalog.events", with_data(PRICE, renewal_price=price), problem)


def test_a_payment_that_arrived_is_positive_and_bounded() -> None:
    parse("payment.events", with_data(PAYMENT, amount="0.01"))
    parse("payment.events", with_data(PAYMENT, amount=str(MAX_AMOUNT)))
    refused("payment.events", with_data(PAYMENT, amount="0"), "greater than 0")
    refused("payment.events", with_data(PAYMENT, amount="-5.00"), "greater than")
    refused("payment.events", with_data(PAYMENT, amount=str(MAX_AMOUNT + 1)), "less than or equal")


def test_percent_off_is_from_0_to_100() -> None:
    document = document_of(samples.price("ACAD"))
    document["type"] = "promotion.published"
    promotion = {
        "promotion_code": "SPRING",
        "product_codes": ["ACAD"],
        "starts_on": "2025-03-01",
        "ends_on": "2025-03-31",
    }
    for percent in ("0", "12.5", "100"):
        parse("catalog.events", {**document, "data": {**promotion, "percent_off": percent}})
    for percent, problem in (("100.5", "less than or equal to 100"), ("-1", "greater than")):
        refused(
            "catalog.events", {**document, "data": {**promotion, "percent_off": percent}}, problem
        )


def test_an_amount_built_in_code_travels_in_plain_digits() -> None:
    """`str(Decimal)` may say "1E+2" or "0E+1": the contract's consumers would refuse it."""
    line = PriceLine(
        subscription_id="S",
        product_code="ACAD",
        term="annual",
        seats=1,
        unit_price=Decimal("1E+2"),
        discount=Decimal("0E+1"),
        amount=Decimal("1E+2"),
    )

    dumped = json.loads(line.model_dump_json())

    assert (dumped["unit_price"], dumped["discount"], dumped["amount"]) == ("100", "0", "100")


# --- lists ----------------------------------------------------------------------------------


def test_a_renewal_request_over_the_bulk_limit_is_well_formed_up_to_the_technical_cap() -> None:
    """CONTRACT.md: over 100 is a business refusal (BULK_LIMIT_EXCEEDED), not malformed."""
    for count in (101, MAX_IDS):
        parsed = parse("renewal.commands", document_of(renewal_request(count)))
        assert len(parsed.data.subscription_ids) == count
    too_many = document_of(renewal_request(1))
    too_many["data"]["subscription_ids"] = [f"S-{n}" for n in range(MAX_IDS + 1)]
    refused("renewal.commands", too_many, "data.subscription_ids: List should have at most")


PAYMENT_EVENTS_OF_AN_ORDER = [
    billing_events.PaymentFailed(
        order_id="O-1",
        reason="card_declined",
        next_retry_on=None,
        csn=CSN,
        subscription_ids=["S-1", "S-2"],
        amount=Decimal("5895.00"),
        currency="EUR",
    ),
    billing_events.PaymentAwaitingManual(
        order_id="O-1",
        amount=Decimal("5895"),
        currency="JPY",
        payment_reference="P-1",
        pay_by=date(2025, 3, 15),
        csn=CSN,
        subscription_ids=["S-1"],
    ),
]


@pytest.mark.parametrize("data", PAYMENT_EVENTS_OF_AN_ORDER, ids=lambda d: d.event_type)
def test_issue_17_3_a_payment_event_names_its_order_within_the_bounds(data: EventData) -> None:
    """What its email needs (the order's CSN and subscriptions) is bounded like every id and
    list: up to MAX_IDS subscriptions of at most 64 characters, a CSN of at most 64."""
    most = [f"S-{n}" for n in range(MAX_IDS)]
    assert parse("billing.events", with_data(data, subscription_ids=most)).data.subscription_ids
    too_many = with_data(data, subscription_ids=[*most, "S-X"])
    refused("billing.events", too_many, "data.subscription_ids: List should have at most")
    refused(
        "billing.events",
        with_data(data, subscription_ids=["S" * 65]),
        "data.subscription_ids.0: String should have at most 64",
    )
    refused("billing.events", with_data(data, csn="C" * 65), "data.csn: String should have at most")


def test_issue_17_3_a_failed_payment_s_amount_is_bounded_money() -> None:
    failed = PAYMENT_EVENTS_OF_AN_ORDER[0]
    refused("billing.events", with_data(failed, amount=5895.0), "data.amount")
    refused("billing.events", with_data(failed, amount=str(MAX_AMOUNT + 1)), "data.amount")


@pytest.mark.parametrize("data", PAYMENT_EVENTS_OF_AN_ORDER, ids=lambda d: d.event_type)
def test_a_payment_event_published_before_it_named_its_order_still_parses(
    data: EventData,
) -> None:
    """Additive (CONTRACT.md): an event of an older billing, without the order's fields, is
    well formed — its reader decides what it can do without them."""
    added = {"csn", "subscription_ids"}
    if isinstance(data, billing_events.PaymentFailed):
        added |= {"amount", "currency"}
    document = document_of(data)
    document["data"] = {k: v for k, v in document["data"].items() if k not in added}
    parsed = parse("billing.events", document).data
    assert (parsed.csn, parsed.subscription_ids) == (None, [])


def test_an_error_message_written_by_the_product_is_cut_not_refused() -> None:
    """A provider's or an SMTP server's long error must not make the event itself fail."""
    failed = billing_events.PaymentFailed(order_id="O-1", reason="e" * 5000, next_retry_on=None)

    assert len(failed.reason) == MAX_TEXT_LENGTH


@pytest.mark.parametrize(
    "amount",
    [
        "0",
        "0.00",
        "0.00000",
        "1",
        "1.5",
        "1179.00",
        "1.2345",
        "1.23450",
        "1.234500000",
        "1.23456",
        "0.00001",
        "10.000010",
        "100.00000000000000000000000000001",
        "5.0000000000000000000000",
    ],
)
def test_the_money_decimals_check_refuses_what_pydantic_decimal_places_refuses(amount: str) -> None:
    """#19 item 6: the contract's own check of the decimals (cheaper) keeps pydantic's rule."""
    theirs = TypeAdapter(Annotated[Decimal, Field(decimal_places=MONEY_DECIMALS)])
    ours = TypeAdapter(Amount)

    def outcome(adapter: TypeAdapter[Decimal]) -> str:
        try:
            adapter.validate_python(Decimal(amount))
        except ValidationError as refused_amount:
            return refused_amount.errors()[0]["type"]
        return "valid"

    assert outcome(ours) == outcome(theirs)
