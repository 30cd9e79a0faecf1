"""Signed commands: who sent a `renewal.commands` or `quote.commands` message, proven (issue 16
item 2; CONTRACT.md "Who may send what").

Several upstream systems may write the command topics (the portal, the sales tool, each partner's
tool: shared/messaging/principals.py), so the broker's ACLs alone do not say which one sent a
message, and its body's `channel` is only a claim. Each of them has a signing key (the secrets
file, shared/local_secrets.py) and sends two headers:

    x-renewals-signer     its principal name, e.g. `portal`, `sales`, `partner-P-1001`
    x-renewals-signature  hex HMAC-SHA256, keyed with its signing key (UTF-8), over the topic, the
                          Kafka key and the value, each as an 8-byte big-endian length then its
                          bytes (an absent key is empty)

The consuming service holds the signers' keys (RENEWALS_SIGNING_KEY_<PRINCIPAL>, else the
secrets file) and verifies every record: an unsigned record, an unknown signer (or one that may
not write the topic), or a signature that does not match is refused NOT_AUTHORIZED, and a counter
says why. The signature covers the bytes as they are on the wire, so an operator's replay of a
dead letter (same topic, key and value) still verifies; a copy to another topic does not.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from shared import local_secrets

log = logging.getLogger(__name__)

SIGNER_HEADER = "x-renewals-signer"
SIGNATURE_HEADER = "x-renewals-signature"

Headers = Sequence[tuple[str, bytes | None]]


class Unproven(StrEnum):
    """Why a record's sender is not proven (the `why` label of the refusal counter)."""

    UNSIGNED = "unsigned"
    UNKNOWN_SIGNER = "unknown_signer"
    BAD_SIGNATURE = "bad_signature"


@dataclass(frozen=True)
class Proof:
    """What verifying one record found: the proven signer, or why there is none."""

    signer: str | None = None
    unproven: Unproven | None = None


def signature(secret: str, topic: str, key: bytes | None, value: bytes | None) -> str:
    mac = hmac.new(secret.encode(), digestmod=hashlib.sha256)
    for part in (topic.encode(), key or b"", value or b""):
        # Lengths first: no two (topic, key, value) triples give the same bytes to sign.
        mac.update(len(part).to_bytes(8, "big"))
        mac.update(part)
    return mac.hexdigest()


def signed_headers(
    signer: str, secret: str, topic: str, key: bytes | None, value: bytes | None
) -> list[tuple[str, bytes]]:
    return [
        (SIGNER_HEADER, signer.encode()),
        (SIGNATURE_HEADER, signature(secret, topic, key, value).encode()),
    ]


def signing_key_of(principal: str) -> str | None:
    """A signer's key: RENEWALS_SIGNING_KEY_<PRINCIPAL> (a service given it by the launcher or
    the container stack), else the secrets file's (tools and tests run from the clone)."""
    name = f"RENEWALS_{local_secrets.signing_key_name(principal)}"
    return os.environ.get(name) or local_secrets.signing_key(principal)


class SignatureVerifier:
    """Verifies the records of one topic against the keys of the principals that may sign it."""

    def __init__(self, topic: str, signers: Iterable[str]) -> None:
        self.topic = topic
        self.keys = {name: key for name in signers if (key := signing_key_of(name))}
        if missing := sorted(set(signers) - set(self.keys)):
            # Their commands will be refused until the key is given: loud, not silent.
            log.warning(
                "no signing key for some signers of %s: their commands will be refused",
                topic,
                extra={"signers": missing},
            )

    def verify(self, topic: str, key: bytes | None, value: bytes | None, headers: Headers) -> Proof:
        signers = _values(headers, SIGNER_HEADER)
        signatures = _values(headers, SIGNATURE_HEADER)
        if not signers and not signatures:
            return Proof(unproven=Unproven.UNSIGNED)
        if len(signers) != 1 or len(signatures) != 1:
            return Proof(unproven=Unproven.BAD_SIGNATURE)  # two signers: which one is it?
        signer = signers[0].decode(errors="replace")
        secret = self.keys.get(signer)
        if secret is None or topic != self.topic:
            return Proof(unproven=Unproven.UNKNOWN_SIGNER)
        expected = signature(secret, topic, key, value).encode()
        if not hmac.compare_digest(expected, signatures[0]):
            return Proof(unproven=Unproven.BAD_SIGNATURE)
        return Proof(signer=signer)


def _values(headers: Headers, name: str) -> list[bytes]:
    return [value or b"" for header, value in headers or () if header == name]
