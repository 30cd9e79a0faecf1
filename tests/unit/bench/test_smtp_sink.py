"""The bench's SMTP sink (issue 19 item 7): it counts what the product's sender sends, and tells
duplicates and confirmations without their total apart, without parsing MIME."""

from __future__ import annotations

import smtplib

from bench import smtp as mail
from bench.smtp_sink import notification_key
from services.notification.message import build_message

LONG_LINE = "- AutoCAD LT (BENCH-0123456789-SUB-1): 1 seat(s), annual, next renewal on 1 Jan 2027"


def _confirmation(key: str, with_total: bool) -> bytes:
    total = "Total (excluding tax): $420.00\n" if with_total else ""
    text = f"Hello,\n\n{LONG_LINE}\n\n{total}Your access continues.\n"
    html = f"<p>{LONG_LINE} {'<strong>Total (excluding tax): $420.00</strong>' if with_total else ''}</p>"
    return build_message("r@example.com", ["buyer@x.example.com"], "Renewed", key, text, html).data


def test_the_key_is_read_from_the_headers_even_when_folded() -> None:
    data = _confirmation("order_confirmation:abc", True)
    assert notification_key(data) == "order_confirmation:abc"
    folded = b"From: a\r\nX-Notification-Key: order_confirmation:\r\n abc\r\n\r\nbody"
    assert notification_key(folded) == "order_confirmation:abc"
    assert notification_key(b"From: a\r\n\r\nX-Notification-Key: in the body") is None


def test_the_sink_counts_duplicates_and_confirmations_without_total() -> None:
    with mail.SmtpSink({"buyer@x.example.com"}) as sink:
        with smtplib.SMTP("127.0.0.1", sink.port, timeout=10) as client:
            for key, with_total in [
                ("order_confirmation:1", True),
                ("order_confirmation:2", False),
                ("order_confirmation:1", True),  # the same notification twice
                ("renewal_reminder:S-1:2027-01-01:30", False),  # not a confirmation
            ]:
                client.sendmail(
                    "r@example.com", ["buyer@x.example.com"], _confirmation(key, with_total)
                )
            client.sendmail("r@example.com", ["other@y.example.com"], b"Subject: x\r\n\r\n.hi\r\n")
        assert sink.stats()["messages"] == 5
        assert sink.count == 4
        checked = mail.check(sink.received())
    assert checked.duplicates == 1
    assert checked.duplicate_keys == ["order_confirmation:1"]
    assert checked.confirmations == 3
    assert checked.without_total == 1
    assert checked.by_kind == {"order_confirmation": 3, "renewal_reminder": 1, "(no key)": 1}
    assert not checked.good


class _Transport:
    def __init__(self) -> None:
        self.written = b""

    def write(self, data: bytes) -> None:
        self.written += data

    def close(self) -> None:
        pass


def test_a_message_split_anywhere_across_packets_is_one_message() -> None:
    from bench.smtp_sink import SinkProtocol, Tally

    dialogue = (
        b"EHLO x\r\nMAIL FROM:<r@example.com>\r\nRCPT TO:<buyer@x.example.com>\r\nDATA\r\n"
        + _confirmation("order_confirmation:9", True)
        + b".\r\nQUIT\r\n"
    )
    for size in (1, 2, 3, 7, 64):
        tally = Tally({"buyer@x.example.com"})
        protocol = SinkProtocol(tally)
        protocol.transport = _Transport()  # type: ignore[assignment]
        for first in range(0, len(dialogue), size):
            protocol.data_received(dialogue[first : first + size])
        assert tally.messages == 1, size
        assert tally.records[0][1:] == ("order_confirmation:9", True, True)
