"""Signed commands (issue 16 item 2): what a sender signs, what the consumer proves from it, and
what the services believe of a proven sender (shared/messaging/signing.py, identity.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from deploy.local.client import UpstreamClient
from shared import local_secrets
from shared.contracts import quote_commands, renewal_commands
from shared.contracts.common import Actor
from shared.contracts.envelope import encode, new_event
from shared.contracts.quote_commands import CancelQuote
from shared.contracts.renewal_commands import SetAutoRenew
from shared.eligibility.identity import Sender
from shared.messaging.consumer import Delivery, UnitOfWork
from shared.messaging.identity import identified, request_key, sender_of
from shared.messaging.principals import (
    PARTNER_CSNS,
    SIGNERS,
    partner_principal,
    principal,
    signers_of,
    writers_of,
)
from shared.messaging.signing import (
    SIGNATURE_HEADER,
    SIGNER_HEADER,
    SignatureVerifier,
    Unproven,
    signature,
    signed_headers,
)
from tests.unit.messaging.catalog_records import consumer_of

TOPIC = renewal_commands.TOPIC.name
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
KEYS = {
    "portal": "portal-key",
    "sales": "sales-key",
    "partner-P-1001": "p1-key",
    "partner-P-1002": "p2-key",
}


@pytest.fixture(autouse=True)
def signing_keys(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Keys by env, as the launcher gives them; no secrets file to fall back on."""
    monkeypatch.setenv("RENEWALS_SECRETS_FILE", str(tmp_path / "none.env"))
    for name, key in KEYS.items():
        monkeypatch.setenv(f"RENEWALS_{local_secrets.signing_key_name(name)}", key)


@dataclass(frozen=True)
class FakeRecord:
    value: bytes | None
    key: bytes | None = b"CSN-1"
    topic: str = TOPIC
    offset: int = 0
    partition: int = 0
    headers: tuple[tuple[str, bytes | None], ...] = field(default_factory=tuple)


def auto_renew(csn: str = "CSN-1", request_id: str = "r-1") -> Any:
    command = SetAutoRenew(
        request_id=request_id,
        actor=Actor(user_id=f"{csn}-buyer", csn=csn),
        subscription_ids=["S-1"],
        enabled=True,
    )
    return new_event(command, subject=csn, source="/portal", time=NOW)


def signed(event: Any, signer: str = "portal", secret: str | None = None) -> FakeRecord:
    key, value = event.subject.encode(), encode(event)
    headers = signed_headers(signer, secret or KEYS[signer], TOPIC, key, value)
    return FakeRecord(value, key, headers=tuple(headers))


def verifier() -> SignatureVerifier:
    return SignatureVerifier(TOPIC, signers_of(TOPIC))


def proof_of(record: FakeRecord) -> Any:
    return verifier().verify(record.topic, record.key, record.value, record.headers)


def test_the_signature_covers_the_topic_the_key_and_the_value_each_delimited() -> None:
    base = signature("k", "t", b"key", b"value")
    assert base == signature("k", "t", b"key", b"value")
    assert len({
        base,
        signature("k", "t2", b"key", b"value"),
        signature("k", "t", b"key2", b"value"),
        signature("k", "t", b"key", b"value2"),
        signature("k", "tk", b"ey", b"value"),  # the same bytes, cut elsewhere
        signature("other", "t", b"key", b"value"),
    }) == 6  # fmt: skip


def test_a_command_signed_by_its_sender_proves_it() -> None:
    assert proof_of(signed(auto_renew())).signer == "portal"
    assert proof_of(signed(auto_renew(), "partner-P-1001")).signer == "partner-P-1001"


@pytest.mark.parametrize(
    ("record", "why"),
    [
        (FakeRecord(encode(auto_renew())), Unproven.UNSIGNED),
        (signed(auto_renew(), "portal", "guessed"), Unproven.BAD_SIGNATURE),
        # The portal's key under the sales tool's name.
        (signed(auto_renew(), "sales", KEYS["portal"]), Unproven.BAD_SIGNATURE),
        (signed(auto_renew(), "mallory", "any"), Unproven.UNKNOWN_SIGNER),
        # A principal that signs nothing (the operator may write the topic: replays).
        (signed(auto_renew(), "operator", "any"), Unproven.UNKNOWN_SIGNER),
    ],
)
def test_an_unproven_sender_is_named_why(record: FakeRecord, why: Unproven) -> None:
    assert proof_of(record) == type(proof_of(record))(unproven=why)


def test_a_signed_command_changed_or_copied_elsewhere_no_longer_verifies() -> None:
    record = signed(auto_renew())
    assert record.value is not None
    changed = FakeRecord(
        record.value.replace(b"true", b"false"), record.key, headers=record.headers
    )
    other_key = FakeRecord(record.value, b"CSN-2", headers=record.headers)
    elsewhere = FakeRecord(record.value, record.key, topic="quote.commands", headers=record.headers)
    assert {proof_of(r).unproven for r in (changed, other_key, elsewhere)} == {
        Unproven.BAD_SIGNATURE,
        Unproven.UNKNOWN_SIGNER,
    }
    assert proof_of(changed).unproven is Unproven.BAD_SIGNATURE
    assert proof_of(other_key).unproven is Unproven.BAD_SIGNATURE


def test_two_signers_on_one_record_prove_nobody() -> None:
    record = signed(auto_renew())
    twice = FakeRecord(record.value, record.key, headers=(*record.headers, (SIGNER_HEADER, b"x")))
    assert proof_of(twice).unproven is Unproven.BAD_SIGNATURE


def test_the_consumer_hands_the_proof_on_and_scopes_the_inbox_by_signer_and_csn() -> None:
    async def unused(unit: UnitOfWork, deliveries: list[Delivery]) -> None:
        raise AssertionError

    consumer = consumer_of(
        unused,
        topic=renewal_commands.TOPIC,
        registry=renewal_commands.REGISTRY,
        verifier=verifier(),
    )
    event = auto_renew()
    other_tenant = auto_renew("CSN-2").model_copy(update={"id": event.id})
    records = [
        signed(event),
        FakeRecord(encode(event)),  # the same event unsigned: not a duplicate of the signed one
        signed(other_tenant),  # another tenant's event with the same id
        signed(event),  # a true duplicate in the batch
    ]
    deliveries, letters, _ = consumer._parse(records)
    assert letters == []
    assert [(d.signer, d.unproven) for d in deliveries] == [
        ("portal", None),
        (None, Unproven.UNSIGNED),
        ("portal", None),
    ]
    assert len({d.inbox_key for d in deliveries}) == 3


def test_the_channel_and_the_partner_are_the_signer_s() -> None:
    def delivery(signer: str | None) -> Delivery:
        return Delivery(auto_renew(), None, signer=signer)

    assert sender_of(delivery("portal")) == Sender(channel="self_service")
    assert sender_of(delivery("sales")) == Sender(channel="sales")
    assert sender_of(delivery("partner-P-1001")) == Sender(channel="partner", partner_csn="P-1001")
    assert sender_of(delivery("operator")) is None
    assert sender_of(delivery(None)) is None


def test_request_ids_are_scoped_to_the_signer_and_the_actor_s_csn() -> None:
    """CONTRACT.md: another tenant (or another upstream system) reusing a request id is a new
    request."""
    keys = {
        request_key(Delivery(auto_renew(csn, "same"), None, signer=signer))
        for csn, signer in [("CSN-1", "portal"), ("CSN-2", "portal"), ("CSN-1", "sales")]
    }
    assert len(keys) == 3


def cancel(channel: str, actor_csn: str = "CSN-1") -> Any:
    command = CancelQuote(
        request_id="c-1",
        actor=Actor(user_id="u", csn=actor_csn),
        channel=channel,
        quote_number="Q-2026-000001",
    )
    return new_event(command, subject="CSN-1", source="/x", time=NOW)


@pytest.mark.parametrize(
    ("event", "signer", "unproven", "refused"),
    [
        (cancel("sales"), "sales", None, False),
        (cancel("sales"), "portal", None, True),  # the body's channel is not the signer's
        (cancel("self_service"), "portal", None, False),
        (cancel("self_service", "CSN-2"), "portal", None, True),  # for another CSN
        (cancel("partner", "P-1001"), "partner-P-1001", None, False),
        (cancel("partner", "P-1002"), "partner-P-1001", None, True),  # another partner's user
        (cancel("sales"), None, Unproven.UNSIGNED, True),
        (cancel("sales"), "sales", Unproven.BAD_SIGNATURE, True),
    ],
)
async def test_commands_its_sender_may_not_send_are_refused_before_any_handler(
    event: Any, signer: str | None, unproven: Unproven | None, refused: bool
) -> None:
    handled: list[Delivery] = []
    refusals: list[Delivery] = []

    async def handler(unit: UnitOfWork, deliveries: list[Delivery]) -> None:
        handled.extend(deliveries)

    handle = identified("test", handler, lambda unit, d: refusals.append(d))
    delivery = Delivery(event, None, signer=signer, unproven=unproven)
    await handle(UnitOfWork(connection=None), [delivery])  # type: ignore[arg-type]
    assert (refusals, handled) == (([delivery], []) if refused else ([], [delivery]))


def test_each_partner_tool_is_its_own_principal_that_writes_commands_and_reads_answers() -> None:
    assert len(PARTNER_CSNS) >= 2
    for csn in PARTNER_CSNS:
        tool = principal(partner_principal(csn))
        assert (tool.channel, tool.partner_csn) == ("partner", csn)
        assert tool.name in writers_of(TOPIC) and tool.name in SIGNERS
        assert tool.group_prefixes == (f"{tool.name}.",)
    for topic in (renewal_commands.TOPIC.name, quote_commands.TOPIC.name):
        assert set(signers_of(topic)) == {"portal", "sales", *map(partner_principal, PARTNER_CSNS)}


def test_the_secrets_file_holds_a_signing_key_per_signer_under_a_shell_safe_name(
    tmp_path: Path,
) -> None:
    path = local_secrets.ensure(tmp_path / "secrets.env")
    held = local_secrets.read(path)
    assert local_secrets.signing_key_name("partner-P-1001") == "SIGNING_KEY_PARTNER_P_1001"
    assert all(local_secrets.signing_key_name(name) in held for name in SIGNERS)
    assert all(key.replace("_", "").isalnum() for key in held)


@pytest.mark.parametrize(
    ("channel", "actor_csn", "expected"),
    [
        (None, "CSN-1", "portal"),
        ("sales", "CSN-1", "sales"),
        ("partner", "P-1002", "partner-P-1002"),
        ("partner", "P-9999", "portal"),  # no such partner tool: the portal (and its refusal)
    ],
)
def test_the_upstream_client_sends_a_command_as_the_system_of_its_channel(
    channel: str | None, actor_csn: str, expected: str
) -> None:
    event = auto_renew() if channel is None else cancel(channel, actor_csn)
    client = UpstreamClient("unused:1")
    sender = client.principal_for(TOPIC, event)
    assert sender == expected
    headers = dict(client.headers_for(sender, TOPIC, b"CSN-1", encode(event)))
    assert headers[SIGNER_HEADER] == expected.encode()
    assert (
        headers[SIGNATURE_HEADER]
        == signature(KEYS[expected], TOPIC, b"CSN-1", encode(event)).encode()
    )
    unsigned = UpstreamClient("unused:1", sign=False)
    assert SIGNER_HEADER not in dict(unsigned.headers_for(sender, TOPIC, b"CSN-1", b"{}"))


def test_the_upstream_client_reads_each_signer_s_key_once_not_per_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Issue 19: the bench's client read the secrets file again for every command it signed."""
    path = local_secrets.ensure(tmp_path / "secrets.env")
    monkeypatch.setenv("RENEWALS_SECRETS_FILE", str(path))
    monkeypatch.delenv(f"RENEWALS_{local_secrets.signing_key_name('portal')}")
    reads: list[Path | None] = []
    read = local_secrets.read
    monkeypatch.setattr(local_secrets, "read", lambda p=None: reads.append(p) or read(p))
    client = UpstreamClient("unused:1")
    events = [auto_renew(request_id=f"r-{n}") for n in range(3)]
    signed = [dict(client.headers_for("portal", TOPIC, b"CSN-1", encode(e))) for e in events]
    assert len(reads) == 1
    portal_key = local_secrets.signing_key("portal", path)
    assert portal_key is not None
    assert [headers[SIGNATURE_HEADER] for headers in signed] == [
        signature(portal_key, TOPIC, b"CSN-1", encode(e)).encode() for e in events
    ]
