"""ROLE-3 where the services address emails: eligibility.email_recipient names the buyer, never
the primary admin the role was handed to (ROLE-2), from the contract's own types."""

from datetime import date
from decimal import Decimal

from deploy.local.samples import subscription
from services.notification.store import Contact
from shared import eligibility
from shared.contracts.common import Person
from shared.contracts.renewal_events import SubscriptionRenewed

BUYER = Person(user_id="U-1", email="ana@example.com", locale="fr-FR")
ADMIN = Person(user_id="U-2", email="admin@example.com", locale="en-US")


def test_role_3_a_subscriptions_emails_go_to_its_buyer_not_its_primary_admin() -> None:
    snapshot = subscription(
        "S-1", "CSN-1", renewal_date=date(2027, 1, 1), buyer=BUYER, primary_admin=ADMIN
    )
    contact = Contact("S-1", "CSN-1", snapshot, snapshot.renewal_date)
    assert eligibility.email_recipient(snapshot) == BUYER
    assert (contact.recipient.email, contact.recipient.locale) == ("ana@example.com", "fr-FR")


def test_role_3_an_order_confirmation_goes_to_the_buyer_the_renewal_names() -> None:
    renewed = SubscriptionRenewed(
        subscription_id="S-1",
        order_id="O-1",
        term="annual",
        seats=1,
        previous_renewal_date=date(2026, 1, 1),
        renewal_date=date(2027, 1, 1),
        order_total=Decimal("420.00"),
        currency="USD",
        buyer=BUYER,
    )
    assert eligibility.email_recipient(renewed) == BUYER
    assert eligibility.email_recipient(renewed.model_copy(update={"buyer": None})) is None
