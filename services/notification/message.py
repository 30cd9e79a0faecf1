"""An email's bytes as SMTP is given them, written out directly, each part encoded only as much as
its content needs."""

from __future__ import annotations

import binascii
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from email import base64mime, quoprimime
from email.charset import RFC2047_CHROME_LEN, Charset
from email.header import Header

MAX_LINE = 78  # the default policy's max_line_length


@dataclass(frozen=True)
class OutgoingEmail:
    """What SMTP is given: the envelope and the message's bytes (CRLF line ends)."""

    sender: str
    recipients: list[str]
    data: bytes


def build_message(
    sender: str, recipients: list[str], subject: str, key: str, text: str, html: str = ""
) -> OutgoingEmail:
    """A plain-text UTF-8 email, written out directly.

    Same headers and content as `email.message.EmailMessage` with `set_content(text)` gives
    (From, To, Subject — RFC 2047 encoded when not ASCII —, X-Notification-Key, MIME-Version,
    Content-Type text/plain; charset="utf-8", the same transfer encoding), for a tenth of its
    CPU: the default policy's header machinery cost ~0.9-1.5 ms per email, this ~0.15 ms.
    """
    lines = [
        _header("From", sender),
        _header("To", ", ".join(recipients)),
        _header("Subject", subject),
        # Lets a mailbox (and the tests) see that a duplicate is the same notification.
        _header("X-Notification-Key", key),
        "MIME-Version: 1.0",
    ]
    if html:
        return OutgoingEmail(sender, recipients, _alternative(lines, key, text, html))
    lines.append('Content-Type: text/plain; charset="utf-8"')
    cte, body = _body(text)
    lines.append(f"Content-Transfer-Encoding: {cte}")
    head = "\r\n".join(lines).encode("ascii")
    return OutgoingEmail(sender, recipients, head + b"\r\n\r\n" + body)


def _alternative(headers: list[str], key: str, text: str, html: str) -> bytes:
    """multipart/alternative: the plain text first, the HTML version last (preferred by mail
    readers that show HTML), each part encoded as `_body` encodes a plain-text email."""
    boundary = "=_renewals_" + hashlib.sha256(key.encode()).hexdigest()[:24]
    head = [*headers, f'Content-Type: multipart/alternative; boundary="{boundary}"']
    chunks = ["\r\n".join(head).encode("ascii") + b"\r\n\r\n"]
    for subtype, content in (("plain", text), ("html", html)):
        cte, body = _body(content)
        part = (
            f'--{boundary}\r\nContent-Type: text/{subtype}; charset="utf-8"\r\n'
            f"Content-Transfer-Encoding: {cte}\r\n\r\n"
        )
        # The line break before a boundary belongs to the boundary: one more keeps the body's own.
        chunks.append(part.encode("ascii") + body + b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode("ascii"))
    return b"".join(chunks)


def _body(text: str) -> tuple[str, bytes]:
    """7bit or 8bit when every line fits in 78 bytes (no encoding at all), else the shorter of
    quoted-printable and base64 on the first ten lines — the choice `set_content` makes
    (email.contentmanager.set_text_content, default policy). Both encoders are binascii's C:
    `quoprimime.body_encode` spent ~90 µs on an HTML part's long lines, `b2a_qp` ~16 µs; its
    soft line breaks come at 76 columns instead of 78, the decoded text is the same."""
    lines = text.encode("utf-8").splitlines()
    if not lines or max(len(line) for line in lines) <= MAX_LINE:
        return ("7bit" if text.isascii() else "8bit"), b"\r\n".join(lines) + b"\r\n"
    data = b"\n".join(lines) + b"\n"
    sniff = b"\n".join(lines[:10]) + b"\n"
    if len(binascii.b2a_qp(sniff, istext=True)) > len(binascii.b2a_base64(sniff)):
        encoded = base64mime.body_encode(data, MAX_LINE - 2)
        return "base64", encoded.replace("\n", "\r\n").encode("ascii")
    return "quoted-printable", binascii.b2a_qp(data, istext=True).replace(b"\n", b"\r\n")


def _header(name: str, value: str) -> str:
    one_line = value.isascii() and "\n" not in value and "\r" not in value
    if one_line and len(name) + len(value) <= 76:
        return f"{name}: {value}"
    if one_line and not any(c.isspace() for c in value) and len(name) + 2 + len(value) <= 998:
        # A token with no space to fold at (a long notification key): folding would only put
        # it on a line of its own, which reads back with a leading space; RFC 5322 allows 998.
        return f"{name}: {value}"
    if one_line and value.splitlines() == [value]:
        return _folded_ascii(name, value)
    if value.isascii() or value.splitlines() != [value]:  # Header's way with line breaks
        charset = "us-ascii" if value.isascii() else UTF8_WORDS
        return f"{name}: " + Header(value, charset, header_name=name).encode(linesep="\r\n")
    # One line of UTF-8: what Header writes, without its formatter — the encoded words, the
    # first after the name, each other on a folded line of its own.
    words = UTF8_WORDS.header_encode_lines(value, _line_room(len(name) + 2))
    if words[0] is None:  # nothing fits after a name this long: Header's own way
        return f"{name}: " + Header(value, UTF8_WORDS, header_name=name).encode(linesep="\r\n")
    return f"{name}: " + "\r\n ".join(word for word in words if word is not None)


_FOLDING_SPACE = re.compile(r"([ \t]+)")  # what Header folds at, kept with the word after it


def _folded_ascii(name: str, value: str) -> str:
    """One line of ASCII folded exactly as `Header(value, "us-ascii", header_name=name)` folds
    it (its `_ValueFormatter._ascii_split`, `_append_chunk` and `newline`), for a third of its
    CPU: an order confirmation's subject (an order id is a UUID) is longer than a line, and the
    formatter's generic machinery was most of `build_message` (issue 19, s9 plan item 10).
    Each line is a list of (folding space, word); a line too long breaks after its last `;`,
    else its last `,`, else before its last space or tab, else goes on a line of its own."""
    lines: list[str] = []
    line: list[tuple[str, str]] = []
    taken = size = len(name) + 2  # the name's share of the first line; the line's length

    def newline() -> None:
        nonlocal taken, size
        if line and line[-1] == (" ", ""):
            line.pop()
        text = "".join(space + word for space, word in line)
        if taken + len(text) > 0:
            if taken == 0 and (not line or text.isspace()) and lines:
                lines[-1] += text
            else:
                lines.append(text)
        line.clear()
        taken = size = 0

    parts = _FOLDING_SPACE.split(value)
    if parts[0]:
        parts[:0] = [""]
    else:
        parts.pop(0)
    for space, word in zip(parts[0::2], parts[1::2], strict=True):
        line.append((space, word))
        size += len(space) + len(word)
        if size <= MAX_LINE:
            continue
        at = _break_point(line)
        if at is None:  # nowhere to break: the word goes on a line of its own
            space, word = line.pop()
            if taken > 0:
                newline()
                space = space or " "
            line.append((space, word))
            size = taken + sum(len(s) + len(w) for s, w in line)
            continue
        lines.append("".join(s + w for s, w in line[:at]))
        del line[:at]
        taken = 0
        size = sum(len(s) + len(w) for s, w in line)
    line.append((" ", ""))  # Header's closing transition
    newline()
    return f"{name}: " + "\r\n".join(lines)


def _break_point(line: list[tuple[str, str]]) -> int | None:
    """Where Header breaks a line too long: before the last word that follows a `;`, else a
    `,`, else before the last space, else tab (never before the first word)."""
    for character in ";, \t":
        for index in range(len(line) - 1, 0, -1):
            if character in " \t" and line[index][0][:1] == character:
                return index
            previous = line[index - 1][1]
            if previous and previous[-1] == character:
                return index
    return None


def _line_room(taken: int) -> Iterator[int]:
    """The room `Header` gives encoded words: 78 columns less the name on the first line, less
    the folding space on the others."""
    yield MAX_LINE - taken
    while True:
        yield MAX_LINE - 1


class _Utf8Words(Charset):
    """UTF-8 as `Header` encodes it, with the same RFC 2047 encoded words, found in one pass.

    `Charset.header_encode_lines` fits characters on a line by encoding the whole line again
    for each character it adds (quadratic: 0.6 ms for a 60-character French subject); the
    length of a line's encoded word only grows by each character's own share — 3 or 1 per
    byte in Q, a quarter more per third of a byte in B — so it is counted as it grows.
    """

    def __init__(self) -> None:
        super().__init__("utf-8")

    def header_encode_lines(self, string: str, maxlengths: Iterator[int]) -> list[str | None]:
        codec = str(self.output_codec)
        module = self._get_encoder(string.encode(codec))  # type: ignore[attr-defined]
        quoted = module is quoprimime
        extra = len(str(self.get_output_charset())) + RFC2047_CHROME_LEN
        lines: list[str | None] = []
        start = octets = q_length = 0  # the line so far: string[start:index]
        maxlen = next(maxlengths) - extra
        for index, character in enumerate(string):
            encoded = character.encode(codec)
            q_share = quoprimime.header_length(encoded) if quoted else 0
            length = q_length + q_share if quoted else -(-(octets + len(encoded)) // 3) * 4
            if length > maxlen:  # this character goes on the next line
                if not lines and index == start:  # nothing fits on the first line
                    lines.append(None)
                else:
                    lines.append(module.header_encode(string[start:index].encode(codec), codec))
                start, octets, q_length = index, len(encoded), q_share
                maxlen = next(maxlengths) - extra
            else:
                octets += len(encoded)
                q_length += q_share
        lines.append(module.header_encode(string[start:].encode(codec), codec))
        return lines


UTF8_WORDS = _Utf8Words()
