"""The email the sender writes out directly reads back as `EmailMessage.set_content` would give."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.header import Header
from email.message import EmailMessage

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.notification.message import _header, build_message

KEY = "order_confirmation:ORD-1"
SUBJECTS = [
    "Your order ORD-1 is confirmed",
    "Votre commande ORD-1 est confirmée — renouvellement réussi, merci beaucoup à vous",
    "A plain ASCII subject that is long enough to need folding over more than one line, surely",
]
TEXTS = [
    "Hello,\n\nAutoCAD LT: 3 seats, annual, renewed to 2027-03-01.\n",
    "Bonjour,\n\nVotre abonnement « AutoCAD LT » est renouvelé jusqu'au 1 mars 2027.\n" + "é" * 120,
    ".a line with a leading dot\n" + "x" * 200 + "\nno final newline",
]


def reference(subject: str, text: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "renewals@example.com"
    message["To"] = "buyer@csn1.example.com, other@csn1.example.com"
    message["Subject"] = subject
    message["X-Notification-Key"] = KEY
    message.set_content(text)
    return message


@pytest.mark.parametrize("subject", SUBJECTS)
@pytest.mark.parametrize("text", TEXTS)
def test_the_message_reads_back_like_email_message(subject: str, text: str) -> None:
    recipients = ["buyer@csn1.example.com", "other@csn1.example.com"]
    built = build_message("renewals@example.com", recipients, subject, KEY, text)
    ours = message_from_bytes(built.data, policy=policy.default)
    # As smtplib.send_message puts it on the wire: CRLF line ends.
    wire = reference(subject, text).as_bytes(policy=policy.default.clone(linesep="\r\n"))
    theirs = message_from_bytes(wire, policy=policy.default)

    for name in ("From", "To", "Subject", "X-Notification-Key", "MIME-Version"):
        assert ours[name] == theirs[name], name
    assert ours.get_content_type() == "text/plain"
    assert ours.get_content_charset() == "utf-8"
    assert ours.get_content() == theirs.get_content()  # type: ignore[attr-defined]
    assert built.sender == "renewals@example.com" and built.recipients == recipients
    assert all(len(line) <= 78 for line in built.data.split(b"\r\n"))
    assert b"\n" not in built.data.replace(b"\r\n", b"")


def test_an_email_with_html_is_multipart_alternative_with_both_versions() -> None:
    text = "Bonjour,\n\nVotre commande ORD-1 est confirmée.\n"
    html = "<!doctype html><p>Votre commande <strong>ORD-1</strong> est confirmée.</p>\n"
    built = build_message("renewals@example.com", ["a@example.com"], "Confirmé", KEY, text, html)
    message = message_from_bytes(built.data, policy=policy.default)

    assert message.get_content_type() == "multipart/alternative"
    assert message["X-Notification-Key"] == KEY and message["Subject"] == "Confirmé"
    plain, rich = message.iter_parts()  # type: ignore[attr-defined]
    assert plain.get_content_type() == "text/plain" and rich.get_content_type() == "text/html"
    assert plain.get_content().replace("\r\n", "\n") == text
    assert "<strong>ORD-1</strong> est confirmée" in rich.get_content()


# --- Issue 19 item 5: the same message for less CPU ---

TEXT_CHARACTERS = st.characters(codec="utf-8", exclude_categories=("Cs",))


@settings(max_examples=150, deadline=None)
@given(
    subject=st.text(TEXT_CHARACTERS, min_size=1, max_size=160).map(lambda s: " ".join(s.split())),
    text=st.lists(st.text(TEXT_CHARACTERS, max_size=200), max_size=12).map("\n".join),
)
def test_any_subject_and_text_read_back_like_email_message(subject: str, text: str) -> None:
    """Whatever the subject and body — ASCII or not, short or long lines: the message reads
    back with EmailMessage's headers and content, and no line is longer than 78."""
    if not subject or "\r" in text or "\x0b" in text or "\x0c" in text:
        return  # a subject is never empty; the templates write "\n" line ends only
    built = build_message("renewals@example.com", ["a@example.com"], subject, KEY, text)
    ours = message_from_bytes(built.data, policy=policy.default)
    wire = reference(subject, text).as_bytes(policy=policy.default.clone(linesep="\r\n"))
    theirs = message_from_bytes(wire, policy=policy.default)
    assert ours["Subject"] == theirs["Subject"]
    assert ours.get_content() == theirs.get_content()  # type: ignore[attr-defined]
    assert all(len(line) <= 78 for line in built.data.split(b"\r\n"))


@settings(max_examples=300, deadline=None)
@given(
    name=st.sampled_from(["Subject", "To", "X-Notification-Key"]),
    value=st.text(TEXT_CHARACTERS, min_size=1, max_size=200),
)
def test_a_header_is_encoded_exactly_as_the_email_package_encodes_it(name: str, value: str) -> None:
    """The one-pass RFC 2047 encoder writes the very words `email.header.Header` writes."""
    if value.isascii():
        return
    reference_header = Header(value, "utf-8", header_name=name).encode(linesep="\r\n")
    assert _header(name, value) == f"{name}: {reference_header}"


ASCII_WORDS = st.lists(
    st.tuples(
        st.text(st.sampled_from("abcXYZ019-:()@.<>;,"), min_size=1, max_size=14),
        st.sampled_from([" ", " ", " ", "  ", "\t", " \t"]),
    ),
    min_size=1,
    max_size=40,
).map(lambda words: "".join(word + space for word, space in words).rstrip())


@settings(max_examples=500, deadline=None)
@given(name=st.sampled_from(["Subject", "To", "X-Notification-Key"]), value=ASCII_WORDS)
def test_an_ascii_header_is_folded_exactly_as_the_email_package_folds_it(
    name: str, value: str
) -> None:
    """s9 plan item 10: one line of ASCII longer than a line (an order confirmation's subject)
    is folded by `_folded_ascii` into the very lines `Header(value, "us-ascii")` writes: after a
    `;`, else a `,`, else at a space or tab, runs of spaces kept, a word too long alone."""
    reference_header = Header(value, "us-ascii", header_name=name).encode(linesep="\r\n")
    assert _header(name, value) == f"{name}: {reference_header}"


def test_a_long_notification_key_reads_back_as_it_was_written() -> None:
    """A key with no space to fold at (`awaiting_manual_payment:<uuid>`) once went onto a
    folded line of its own and read back with a leading space: no lookup by key found it."""
    key = "awaiting_manual_payment:0b9f4a52-6f6e-4d0c-9d43-0c6f1f0e2a11"
    built = build_message("renewals@example.com", ["buyer@csn1.example.com"], "Subject", key, "x")
    parsed = message_from_bytes(built.data, policy=policy.default)
    assert parsed["X-Notification-Key"] == key
