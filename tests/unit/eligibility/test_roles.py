"""ROLE-1..3: who may act on a subscription, and who gets its emails."""

import pytest

from shared.eligibility import Actor, Person, email_recipient

from .builders import (
    ACTOR,
    BUYER,
    add_seats,
    align,
    auto_renew,
    change_terms,
    quote,
    reasons_of,
    renew,
    renewing_in,
)

ADMIN = Person(user_id="U-2", email="admin@example.com", locale="fr")


@pytest.mark.parametrize(
    ("actor", "managed_org", "authorized"),
    [
        (ACTOR, False, True),  # the buyer
        (Actor(user_id="U-1", csn="CSN-999"), False, False),  # same user id, another CSN
        (Actor(user_id="U-2", csn="CSN-100"), False, False),  # the admin, not a managed org
        (Actor(user_id="U-2", csn="CSN-100"), True, True),  # the admin in a managed org
        (Actor(user_id="U-3", csn="CSN-100"), True, False),  # someone else of the CSN
        (ACTOR, True, True),  # the buyer keeps buyer duties in a managed org (ROLE-2)
    ],
)
@pytest.mark.parametrize(
    "decide",
    [
        pytest.param(lambda s, a: renew(s, actor=a), id="manual_renewal"),
        pytest.param(lambda s, a: auto_renew(s, actor=a), id="auto_renew_on"),
        pytest.param(lambda s, a: auto_renew(s, actor=a, enabled=False), id="auto_renew_off"),
        pytest.param(lambda s, a: quote(s, actor=a), id="quote"),
        pytest.param(lambda s, a: change_terms(s, seats=3, actor=a), id="change_terms"),
        pytest.param(lambda s, a: add_seats(s, 1, actor=a), id="add_seats"),
        pytest.param(lambda s, a: align(s, target_date=s.renewal_date, actor=a), id="align"),
    ],
)
def test_role_1_only_the_buyer_or_a_managed_orgs_primary_admin_may_act(
    decide, actor, managed_org, authorized
):
    sub = renewing_in(30, managed_org=managed_org, primary_admin=ADMIN)
    decision = decide(sub, actor)
    assert ("NOT_AUTHORIZED" in reasons_of(decision)) is not authorized
    assert decision.allowed is authorized


@pytest.mark.parametrize(
    ("actor", "channel", "authorized"),
    [
        (Actor(user_id="PU-1", csn="P-7"), "partner", True),  # the agent of record
        (Actor(user_id="PU-1", csn="P-8"), "partner", False),  # another partner
        (Actor(user_id="PU-1", csn="P-7"), "self_service", False),
        (ACTOR, "partner", True),  # the buyer asking its partner
    ],
)
def test_role_1_a_partners_quote_may_come_from_the_agent_of_record(actor, channel, authorized):
    sub = renewing_in(30, purchase_method="partner", partner_csn="P-7")
    assert ("NOT_AUTHORIZED" in reasons_of(quote(sub, channel=channel, actor=actor))) is (
        not authorized
    )


@pytest.mark.parametrize("primary_admin", [None, ADMIN])
def test_role_3_purchase_billing_and_renewal_emails_go_to_the_buyer(primary_admin):
    assert email_recipient(renewing_in(30, primary_admin=primary_admin)) == BUYER
