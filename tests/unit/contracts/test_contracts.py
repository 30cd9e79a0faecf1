"""Every contract type round-trips through the CloudEvents envelope; bad input is refused."""

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from deploy.local.samples import subscription_state
from shared.contracts import (
    REGISTRIES,
    billing_commands,
    billing_events,
    catalog_events,
    clock_commands,
    notification_events,
    payment_events,
    quote_commands,
    quote_events,
    quote_orders,
    renewal_commands,
    renewal_events,
    subscription_events,
)
from shared.contracts.common import Actor, Person, PriceLine
from shared.contracts.envelope import EventData, InvalidEventError, encode, new_event
from shared.contracts.topics import ALL_TOPICS

ACTOR = Actor(user_id="u-1", csn="5100000001")
BUYER = Person(user_id="u-1", email="buyer@example.com", locale="fr-FR")
PAYMENT_METHOD = subscription_events.PaymentMethod(type="card", recurring=True, valid=True)
D = Decimal
PRICE_LINE = PriceLine(
    subscription_id="sub-1",
    product_code="ACAD",
    term="annual",
    seats=5,
    unit_price=D("1179.00"),
    discount=D("0.00"),
    amount=D("5895.00"),
)
ORDER_LINE = billing_events.OrderLine(
    subscription_id="sub-1",
    product_code="ACAD",
    term="annual",
    seats=5,
    unit_price=D("1179.00"),
    amount=D("5895.00"),
)
TODAY = date(2025, 3, 1)

SAMPLES: dict[str, list[EventData]] = {
    "subscription.events": [
        subscription_events.SubscriptionUpserted(
            subscription_id="sub-1",
            revision=3,
            csn="5100000001",
            product_code="ACAD",
            product_name="AutoCAD",
            plan="standard",
            term="annual",
            seats=5,
            currency="EUR",
            country="FR",
            purchase_method="direct_online",
            partner_csn=None,
            payment_method=PAYMENT_METHOD,
            auto_renew=True,
            status="active",
            start_date=date(2024, 4, 1),
            renewal_date=date(2025, 4, 1),
            flags=subscription_events.SubscriptionFlags(
                maintenance_plan=False,
                third_party_platform=False,
                legacy_system=False,
                retired_product=False,
            ),
            managed_org=False,
            buyer=BUYER,
            primary_admin=BUYER,
        )
    ],
    "catalog.events": [
        catalog_events.PricePublished(
            product_code="ACAD", term="annual", currency="EUR", list_price=D("1179.00")
        ),
        catalog_events.PromotionPublished(
            promotion_code="SPRING",
            product_codes=["ACAD"],
            percent_off=D("12.5"),
            starts_on=TODAY,
            ends_on=date(2025, 3, 31),
        ),
    ],
    "renewal.commands": [
        renewal_commands.SetAutoRenew(
            request_id="r-1", actor=ACTOR, subscription_ids=["sub-1"], enabled=False
        ),
        renewal_commands.RequestRenewal(request_id="r-2", actor=ACTOR, subscription_ids=[]),
        renewal_commands.ChangeRenewalTerms(
            request_id="r-3", actor=ACTOR, subscription_id="sub-1", seats=0
        ),
        renewal_commands.AddSeats(request_id="r-4", actor=ACTOR, subscription_id="sub-1", seats=2),
        renewal_commands.AlignRenewalDates(
            request_id="r-5", actor=ACTOR, subscription_ids=["sub-1"], target_date=TODAY
        ),
    ],
    "quote.commands": [
        quote_commands.RequestQuote(
            request_id="r-6",
            actor=ACTOR,
            channel="self_service",
            kind="renewal",
            subscription_ids=[f"sub-{n}" for n in range(101)],
            recipients=["buyer@example.com"],
            changes=quote_commands.QuoteChanges(seats=0, currency="USD", success_plan=True),
        ),
        quote_commands.AcceptQuote(request_id="r-7", actor=ACTOR, quote_number="Q-1"),
        quote_commands.CancelQuote(
            request_id="r-8", actor=ACTOR, channel="sales", quote_number="Q-1"
        ),
    ],
    "clock.commands": [clock_commands.SetTestClock(csn="5100000001", today=TODAY)],
    "payment.events": [
        payment_events.PaymentReceived(
            payment_reference="P-1", order_id="O-1", amount=D("1179.00"), currency="JPY"
        )
    ],
    "renewal.events": [
        renewal_events.AutoRenewChanged(
            request_id=None, subscription_id="sub-1", enabled=False, reason="AUTO-5"
        ),
        renewal_events.RenewalRejected(
            request_id="r-2", subscription_id=None, reasons=["BULK_LIMIT_EXCEEDED"]
        ),
        renewal_events.BulkAccepted(request_id="r-2", count=2),
        renewal_events.BulkCompleted(
            request_id="r-2",
            succeeded=1,
            rejected=1,
            outcomes=[
                renewal_events.BulkOutcome(
                    subscription_id="sub-1", status="succeeded", order_id="O-1"
                ),
                renewal_events.BulkOutcome(
                    subscription_id="sub-2", status="rejected", reasons=["EXPIRED", "TOO_EARLY"]
                ),
            ],
        ),
        renewal_events.SubscriptionRenewed(
            subscription_id="sub-1",
            order_id="O-1",
            previous_renewal_date=date(2025, 4, 1),
            renewal_date=date(2026, 4, 1),
            term="annual",
            seats=5,
            buyer=BUYER,
        ),
        renewal_events.SubscriptionLapsed(
            subscription_id="sub-1", renewal_date=TODAY, grace_ends=date(2025, 4, 15)
        ),
        renewal_events.SubscriptionExpired(
            subscription_id="sub-1", renewal_date=TODAY, expired_on=date(2025, 4, 16)
        ),
        renewal_events.RenewalTermsUpdated(
            request_id="r-3", subscription_id="sub-1", term="annual", seats=3, effective_on=TODAY
        ),
        renewal_events.SeatsUpdated(
            request_id="r-4",
            subscription_id="sub-1",
            seats=7,
            order_id="O-2",
            prorated_total=D("98.25"),
        ),
        renewal_events.RenewalDatesUpdated(
            request_id="r-5",
            subscription_ids=["sub-1"],
            target_date=TODAY,
            lines=[PRICE_LINE],
            total=D("5895.00"),
            currency="EUR",
        ),
    ],
    "quote.events": [
        quote_events.QuoteSent(
            request_id=None,
            quote_number="Q-1",
            kind="alignment",
            target_date=date(2025, 6, 30),
            subscription_ids=["sub-1"],
            expires_on=date(2025, 3, 31),
            currency="EUR",
            total=D("5895.00"),
            lines=[PRICE_LINE],
            recipients=["buyer@example.com"],
            promotions=[
                quote_events.AppliedPromotion(promotion_code="SPRING", percent_off=D("10"))
            ],
        ),
        quote_events.QuoteRejected(
            request_id="r-8", reasons=["QUOTE_CANCELLATION_NOT_SELF_SERVICE"]
        ),
        quote_events.QuotePaid(quote_number="Q-1", order_id="O-1"),
        quote_events.QuoteExpired(quote_number="Q-1"),
        quote_events.QuoteCancelled(request_id="r-8", quote_number="Q-1"),
    ],
    "billing.events": [
        billing_events.OrderPlaced(
            order_id="O-1",
            csn="5100000001",
            currency="EUR",
            purchase_method="direct_online",
            lines=[ORDER_LINE],
            total=D("5895.00"),
            quote_number="Q-1",
        ),
        billing_events.PaymentSucceeded(
            order_id="O-1", amount=D("5895.00"), currency="EUR", payment_reference="P-1"
        ),
        billing_events.PaymentFailed(order_id="O-1", reason="card_declined", next_retry_on=None),
        billing_events.PaymentFailed(  # an order billing refused to place (issue 16 item 4)
            order_id="O-2",
            reason="order refused: TOTAL_MISMATCH",
            next_retry_on=None,
            refusals=["TOTAL_MISMATCH"],
        ),
        billing_events.PaymentAwaitingManual(
            order_id="O-1", amount=D("5895"), currency="JPY", payment_reference="P-1", pay_by=TODAY
        ),
        billing_events.PaymentFailed(  # naming its order, for its email (issue 17 item 3)
            order_id="O-3",
            reason="card_declined",
            next_retry_on=TODAY,
            csn="5100000001",
            subscription_ids=["S-1", "S-2"],
            amount=D("5895.00"),
            currency="EUR",
        ),
        billing_events.PaymentAwaitingManual(
            order_id="O-4",
            amount=D("5895"),
            currency="JPY",
            payment_reference="P-4",
            pay_by=TODAY,
            csn="5100000001",
            subscription_ids=["S-1"],
        ),
        billing_events.PaymentRejected(
            payment_reference="P-1", order_id="O-9", reasons=["UNKNOWN_ORDER"]
        ),
        billing_events.PaymentRefunded(
            order_id="O-1", amount=D("420.00"), currency="USD", reason="EXPIRED"
        ),
    ],
    "notification.events": [
        notification_events.EmailSent(
            notification_id="n-1",
            kind="order_confirmation",
            to=["buyer@example.com"],
            locale="fr-FR",
            subject="Votre commande O-1",
            subscription_ids=["sub-1"],
            order_id="O-1",
        ),
        notification_events.EmailFailed(
            notification_id="n-2",
            kind="quote",
            to=["buyer@example.com"],
            locale="en",
            subject="Your quote Q-1",
            subscription_ids=["sub-1"],
            quote_number="Q-1",
            reason="SMTP 550",
        ),
    ],
    "billing.commands": [
        billing_commands.PlaceOrder(
            request_id=None,
            order_id="O-1",
            csn="5100000001",
            currency="EUR",
            purchase_method="direct_online",
            payment_method=PAYMENT_METHOD,
            lines=[ORDER_LINE],
            total=D("5895.00"),
        ),
        billing_commands.PlaceOrder(  # with its CSN's time zone (issue 14: billing's pay-by)
            request_id="r-1",
            order_id="O-2",
            csn="5100000001",
            currency="EUR",
            purchase_method="direct_online",
            payment_method=PAYMENT_METHOD,
            lines=[ORDER_LINE],
            total=D("5895.00"),
            timezone="Asia/Tokyo",
        ),
        billing_commands.RefundPayment(order_id="O-1", csn="5100000001", reason="EXPIRED"),
    ],
    "quote.orders": [
        quote_orders.QuoteOrderRequested(
            request_id="r-1",
            quote_number="Q-2026-000001",
            kind="renewal",
            order_id="O-2",
            csn="5100000001",
            currency="EUR",
            purchase_method="direct_online",
            payment_method=PAYMENT_METHOD,
            lines=[ORDER_LINE],
            total=D("5895.00"),
            term_starts=[quote_orders.TermStart(subscription_id="sub-1", term_start=TODAY)],
        )
    ],
    "quote.order_answers": [
        quote_orders.QuoteOrderRefused(
            request_id="r-1",
            quote_number="Q-2026-000001",
            order_id="O-2",
            reasons=["RENEWAL_IN_PROGRESS"],
        ),
        quote_orders.QuoteOrderReleased(quote_number="Q-2026-000001", order_id="O-2"),
        quote_orders.QuoteOrderPaid(quote_number="Q-2026-000001", order_id="O-2"),
        quote_orders.QuoteOrderRefunded(
            request_id="r-1", quote_number="Q-2026-000001", order_id="O-2", reasons=["EXPIRED"]
        ),
        quote_orders.QuoteOrderPaymentFailed(quote_number="Q-2026-000001", order_id="O-2"),
    ],
    "subscription.state": [
        subscription_state("SUB-1", "5100000001", renewal_date=TODAY, open_quote="Q-1")
    ],
}

ALL_SAMPLES = [(topic, sample) for topic, samples in SAMPLES.items() for sample in samples]


def raw(sample: EventData, **changes: Any) -> bytes:
    """The sample as the wire carries it, with `data` fields replaced (or removed when None)."""
    event = new_event(
        sample, subject="5100000001", source="/tests", time=datetime(2025, 3, 1, tzinfo=UTC)
    )
    document = json.loads(encode(event))
    for name, value in changes.items():
        if value is None:
            del document["data"][name]
        else:
            document["data"][name] = value
    return json.dumps(document).encode()


def test_every_topic_has_a_registry_and_every_type_a_sample() -> None:
    assert set(REGISTRIES) == {topic.name for topic in ALL_TOPICS}
    for topic, registry in REGISTRIES.items():
        assert {s.event_type for s in SAMPLES[topic]} == set(registry.models), topic


@pytest.mark.parametrize(
    ("topic", "sample"), ALL_SAMPLES, ids=[s.event_type for _, s in ALL_SAMPLES]
)
def test_round_trip(topic: str, sample: EventData) -> None:
    event = new_event(sample, subject="5100000001", source="/tests", time=datetime.now(UTC))
    parsed = REGISTRIES[topic].parse(encode(event))
    assert parsed == event
    assert parsed.data == sample


def test_money_travels_as_a_string_and_keeps_its_cents() -> None:
    price = SAMPLES["catalog.events"][0]
    document = json.loads(raw(price))
    assert document["data"]["list_price"] == "1179.00"
    assert document["data"]["renewal_price"] is None
    parsed = REGISTRIES["catalog.events"].parse(raw(price))
    assert parsed.data.list_price == Decimal("1179.00")
    assert json.loads(encode(parsed))["data"]["list_price"] == "1179.00"


PRICE = SAMPLES["catalog.events"][0]
PROMOTION = SAMPLES["catalog.events"][1]
CLOCK = SAMPLES["clock.commands"][0]
ADD_SEATS = SAMPLES["renewal.commands"][3]


@pytest.mark.parametrize(
    ("topic", "message", "expected"),
    [
        ("catalog.events", b"\xff{not json", "not JSON"),
        ("catalog.events", b'["price.published"]', "not an object"),
        ("catalog.events", None, "empty message"),
        ("catalog.events", raw(CLOCK), "unknown type 'test_clock.set' on catalog.events"),
        ("catalog.events", raw(PRICE, list_price=None), "data.list_price: Field required"),
        ("catalog.events", raw(PRICE, list_price=1179.0), "money must be a decimal string"),
        ("catalog.events", raw(PRICE, list_price="lots"), "not a decimal number"),
        ("catalog.events", raw(PRICE, currency="euro"), "data.currency"),
        ("catalog.events", raw(PRICE, discount="1"), "data.discount: Extra inputs"),
        ("catalog.events", raw(PROMOTION, percent_off="120"), "less than or equal to 100"),
        ("catalog.events", raw(PROMOTION, ends_on="2025-02-01"), "is before starts_on"),
        ("renewal.commands", raw(ADD_SEATS, seats="2"), "data.seats: Input should be a valid"),
        ("clock.commands", raw(CLOCK, today="01/03/2025"), "data.today"),
        ("clock.commands", raw(CLOCK, today="2025-03-01T00:00:00"), "data.today"),
    ],
    ids=[
        "garbage",
        "not-object",
        "empty",
        "unknown-type",
        "missing-field",
        "float-money",
        "word-money",
        "bad-currency",
        "extra-field",
        "percent-over-100",
        "promotion-ends-before-start",
        "string-for-int",
        "non-iso-date",
        "datetime-for-date",
    ],
)
def test_bad_input_is_refused_with_a_reason(
    topic: str, message: bytes | None, expected: str
) -> None:
    with pytest.raises(InvalidEventError, match=expected):
        REGISTRIES[topic].parse(message)


def test_business_limits_are_not_schema_errors() -> None:
    # BULK_LIMIT_EXCEEDED and INVALID_QUANTITY are refusals with reasons, not dead letters.
    for topic, sample in [
        ("renewal.commands", SAMPLES["renewal.commands"][1]),  # no subscriptions
        ("renewal.commands", SAMPLES["renewal.commands"][2]),  # seats=0
        ("quote.commands", SAMPLES["quote.commands"][0]),  # 101 subscriptions, seats=0
    ]:
        assert REGISTRIES[topic].parse(raw(sample)).data == sample


def test_a_snapshot_names_its_csns_time_zone_or_none() -> None:
    """CONTRACT.md: an optional IANA `timezone` (absent: UTC); a published snapshot carrying one
    is a subscription like any other, never a dead letter."""
    from deploy.local.samples import subscription
    from shared.contracts.subscription_events import SubscriptionUpserted

    fields = subscription("S-1", "C-1", renewal_date=date(2027, 1, 1)).model_dump(mode="json")
    assert SubscriptionUpserted.model_validate(fields).timezone is None
    zoned = SubscriptionUpserted.model_validate({**fields, "timezone": "America/Los_Angeles"})
    assert zoned.timezone == "America/Los_Angeles"
    for wrong in ("Mars/Olympus_Mons", "", "x" * 65, "PST8PDT "):
        with pytest.raises(ValueError, match="timezone"):
            SubscriptionUpserted.model_validate({**fields, "timezone": wrong})
