"""Issue 16 items 2 and 3: the proven sender decides the channel and the partner, and whoever may
not act on a subscription or a quote gets NOT_AUTHORIZED and nothing more (OWASP API1)."""

from datetime import timedelta

import pytest

from shared.eligibility import Actor, Person, Quote, decide_cancel_quote
from shared.eligibility.identity import Sender, command_reasons
from shared.eligibility.quote_decisions import decide_accept_quote

from .builders import (
    ACTOR,
    STRANGER,
    TODAY,
    add_seats,
    align,
    auto_renew,
    change_terms,
    codes,
    quote,
    renew,
    renewing_in,
)

PORTAL = Sender(channel="self_service")
SALES = Sender(channel="sales")
PARTNER_7 = Sender(channel="partner", partner_csn="P-7")
PARTNER_USER = Actor(user_id="PU-1", csn="P-7")

DECISIONS = [
    pytest.param(lambda s, a, sender: renew(s, actor=a, sender=sender), id="manual_renewal"),
    pytest.param(lambda s, a, sender: auto_renew(s, actor=a, sender=sender), id="auto_renew_on"),
    pytest.param(
        lambda s, a, sender: auto_renew(s, actor=a, enabled=False, sender=sender),
        id="auto_renew_off",
    ),
    pytest.param(
        lambda s, a, sender: quote(
            s, actor=a, sender=sender, channel=sender.channel if sender else "self_service"
        ),
        id="quote",
    ),
    pytest.param(
        lambda s, a, sender: change_terms(s, seats=3, actor=a, sender=sender), id="change_terms"
    ),
    pytest.param(lambda s, a, sender: add_seats(s, 1, actor=a, sender=sender), id="add_seats"),
    pytest.param(
        lambda s, a, sender: align(s, target_date=s.renewal_date, actor=a, sender=sender),
        id="align",
    ),
]


@pytest.mark.parametrize("decide", DECISIONS)
@pytest.mark.parametrize("sender", [None, PORTAL], ids=["rules_alone", "portal"])
def test_a_stranger_gets_not_authorized_and_nothing_more(decide, sender):
    """The subscription would be refused for many reasons (a trial, a reseller's product in a
    country without self-service, a maintenance plan); a stranger learns none of them, nor its
    state, dates or price."""
    sub = renewing_in(
        200, status="trial", purchase_method="partner", partner_csn="P-7", country="BR"
    )
    decision = decide(sub, STRANGER, sender)
    assert codes(decision.all_reasons) == ["NOT_AUTHORIZED"]
    [outcome] = decision.subscriptions
    assert (outcome.state, outcome.window_opens, outcome.grace_ends, outcome.total) == (
        None,
        None,
        None,
        None,
    )
    assert decision.preview is None or not decision.preview.lines


@pytest.mark.parametrize("decide", DECISIONS)
def test_a_partner_acts_only_for_what_it_sold(decide):
    """DOMAIN.md "Time and channels": the agent of record, for its own customers only."""
    own = renewing_in(30, purchase_method="partner", partner_csn="P-7")
    others = renewing_in(30, purchase_method="partner", partner_csn="P-8")
    assert decide(own, PARTNER_USER, PARTNER_7).allowed
    assert codes(decide(others, PARTNER_USER, PARTNER_7).all_reasons) == ["NOT_AUTHORIZED"]


@pytest.mark.parametrize("decide", DECISIONS)
def test_the_sales_team_acts_for_any_customer_and_self_service_limits_do_not_apply(decide):
    """SELF-1/SELF-3: what self-service can't do, the sales team can (a direct-sales product of
    a country without self-service)."""
    sub = renewing_in(30, purchase_method="direct_sales", country="BR")
    someone = Actor(user_id="SALES-1", csn="VENDOR")
    assert decide(sub, someone, SALES).allowed
    assert "SELF_SERVICE_UNAVAILABLE_COUNTRY" in codes(decide(sub, ACTOR, PORTAL).all_reasons)


@pytest.mark.parametrize(
    ("sender", "actor", "csn", "channel", "refused"),
    [
        (PORTAL, ACTOR, "CSN-100", None, False),
        (PORTAL, ACTOR, "CSN-100", "self_service", False),
        (PORTAL, ACTOR, "CSN-100", "sales", True),  # the body claims a channel it is not
        (PORTAL, ACTOR, "CSN-999", None, True),  # a self-service actor for another CSN
        (PARTNER_7, PARTNER_USER, "CSN-100", "partner", False),
        (PARTNER_7, Actor(user_id="PU-1", csn="P-8"), "CSN-100", "partner", True),
        (PARTNER_7, PARTNER_USER, "CSN-100", "sales", True),
        (SALES, ACTOR, "CSN-100", "sales", False),
        (SALES, ACTOR, "CSN-100", "partner", True),
    ],
)
def test_a_command_s_claims_are_checked_against_its_proven_sender(
    sender, actor, csn, channel, refused
):
    reasons = command_reasons(sender, actor, csn=csn, channel=channel)
    assert codes(reasons) == (["NOT_AUTHORIZED"] if refused else [])


def test_a_quote_whose_body_channel_contradicts_its_sender_is_refused():
    sub = renewing_in(30, purchase_method="direct_sales")
    assert quote(sub, channel="sales", sender=SALES).allowed
    refused = quote(sub, channel="sales", sender=PORTAL)
    assert codes(refused.all_reasons) == ["NOT_AUTHORIZED"]


SENT = Quote(quote_number="Q-1", csn="CSN-100", expires_on=TODAY, partner_csn="P-7", accepted=True)
EXPIRED = Quote(quote_number="Q-2", csn="CSN-100", expires_on=TODAY - timedelta(days=1))


@pytest.mark.parametrize("quote_", [SENT, EXPIRED])
@pytest.mark.parametrize(
    ("actor", "channel", "sender"),
    [
        (STRANGER, "self_service", PORTAL),
        (STRANGER, "self_service", None),
        (Actor(user_id="PU-2", csn="P-8"), "partner", Sender(channel="partner", partner_csn="P-8")),
        (PARTNER_USER, "sales", PORTAL),
    ],
)
def test_someone_else_s_quote_says_neither_expired_nor_accepted(quote_, actor, channel, sender):
    buyer = Person(user_id=ACTOR.user_id)
    cancel = decide_cancel_quote(actor, quote_, channel=channel, today=TODAY, sender=sender)
    accept = decide_accept_quote(
        actor, quote_, buyer=buyer, channel=channel, today=TODAY, sender=sender
    )
    assert codes(cancel.all_reasons) == codes(accept.all_reasons) == ["NOT_AUTHORIZED"]


def test_the_buyer_accepts_a_quote_before_it_expires():
    buyer = Person(user_id=ACTOR.user_id)
    sent = Quote(quote_number="Q-1", csn="CSN-100", expires_on=TODAY)
    assert decide_accept_quote(
        ACTOR, sent, buyer=buyer, channel="self_service", today=TODAY, sender=PORTAL
    ).allowed
    late = decide_accept_quote(
        ACTOR, EXPIRED, buyer=buyer, channel="self_service", today=TODAY, sender=PORTAL
    )
    assert codes(late.all_reasons) == ["QUOTE_EXPIRED"]


@pytest.mark.parametrize(
    ("sender", "actor", "answer"),
    [
        (PORTAL, ACTOR, ["NOT_AUTHORIZED"]),
        (PARTNER_7, PARTNER_USER, ["NOT_AUTHORIZED"]),
        (SALES, ACTOR, ["UNKNOWN_SUBSCRIPTION"]),
        (None, ACTOR, ["UNKNOWN_SUBSCRIPTION"]),  # the rules alone: an operator's explain
    ],
    ids=["portal", "partner", "sales", "rules_alone"],
)
def test_an_id_that_does_not_exist_answers_a_tenant_as_another_tenants_would(sender, actor, answer):
    """Issue 16 item 3: were a missing subscription UNKNOWN_SUBSCRIPTION to a self-service user
    and someone else's NOT_AUTHORIZED, the answers would tell which ids exist."""
    theirs = renewing_in(30, csn="CSN-999", purchase_method="partner", partner_csn="P-8")
    missing = renew(ids=["S-NOWHERE"], actor=actor, sender=sender)
    assert codes(missing.all_reasons) == answer
    if sender in (PORTAL, PARTNER_7):
        assert codes(renew(theirs, actor=actor, sender=sender).all_reasons) == answer
