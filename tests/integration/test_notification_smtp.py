"""The notification's SMTP client against servers in the test's event loop (issue 19 item 5):
commands pipelined when the server offers PIPELINING, one session for many emails, refusals
told apart (temporary or for good), the content's leading dots doubled."""

from __future__ import annotations

import pytest

from services.notification.message import OutgoingEmail, build_message
from services.notification.smtp import PermanentSmtpError, SmtpSession, TemporarySmtpError
from tests.support.flaky_smtp import FlakySmtp
from tests.support.smtp import SmtpServer


def emails(count: int) -> list[OutgoingEmail]:
    return [
        build_message(
            "renewals@example.com",
            [f"buyer{n}@example.com", "cc@example.com"],
            f"Votre commande ORD-{n} est confirmée",
            f"order_confirmation:ORD-{n}",
            f"Bonjour,\n.a line that starts with a dot\n\n.\n{'é' * 100}\n",
        )
        for n in range(count)
    ]


async def test_a_server_that_offers_pipelining_gets_each_email_s_commands_in_one_go() -> None:
    """The server holds its answers to MAIL and RCPT until DATA has come (RFC 2920 lets it):
    only a client that sends MAIL, RCPT and DATA without waiting gets its emails through; each
    email's envelope comes with the content of the one before (one round trip per email)."""
    sent = emails(20)
    async with FlakySmtp(pipelining=True, defer_replies=True) as server:
        smtp = SmtpSession("127.0.0.1", server.port, timeout=5)
        try:
            for index, message in enumerate(sent):
                await smtp.send(message, sent[index + 1] if index + 1 < len(sent) else None)
        finally:
            smtp.close()
    assert server.accepted == {f"order_confirmation:ORD-{n}": 1 for n in range(20)}
    assert server.connections == 1
    assert server.envelopes_with_content == 19


async def test_an_announced_email_that_is_not_sent_next_is_dropped_with_its_session() -> None:
    """The caller announced an email, then sends another (the announced one's lease was lost):
    the session that carries the announced envelope is closed — the server drops that
    transaction, whose content never went out — and the other goes on a new session."""
    first, skipped, other = emails(3)
    async with FlakySmtp(pipelining=True) as server:
        smtp = SmtpSession("127.0.0.1", server.port, timeout=5)
        try:
            await smtp.send(first, skipped)
            await smtp.send(other)
        finally:
            smtp.close()
    assert server.accepted == {"order_confirmation:ORD-0": 1, "order_confirmation:ORD-2": 1}
    assert server.connections == 2


async def test_a_server_without_pipelining_gets_one_command_at_a_time() -> None:
    """The project's dev server (aiosmtpd) does not offer PIPELINING: each command waits for its
    answer, the content (leading dots and all) arrives as written, on one session."""
    with SmtpServer() as server:
        smtp = SmtpSession("127.0.0.1", server.port, timeout=5)
        try:
            sent = emails(5)
            for message in sent:
                await smtp.send(message)
            assert "PIPELINING" not in smtp.extensions
        finally:
            smtp.close()
        received = server.mailbox.all()
    assert [m["X-Notification-Key"] for m in received] == [
        f"order_confirmation:ORD-{n}" for n in range(5)
    ]
    body = received[0].get_content()  # type: ignore[attr-defined]
    assert body == "Bonjour,\n.a line that starts with a dot\n\n.\n" + "é" * 100 + "\n"
    assert received[0]["Subject"] == "Votre commande ORD-0 est confirmée"


async def test_refusals_are_temporary_for_4xx_and_for_good_for_5xx() -> None:
    with SmtpServer() as server:
        smtp = SmtpSession("127.0.0.1", server.port, timeout=5)
        server.mailbox.refuse_next = 1  # 451
        [first, second] = emails(2)
        with pytest.raises(TemporarySmtpError, match="451"):
            await smtp.send(first)
        await smtp.send(first)  # a new session, accepted
        refused = build_message("renewals@example.com", ["<bad"], "s", "k:1", "text\n")
        with pytest.raises(PermanentSmtpError, match=r"refused: \[5\d\d\]"):
            await smtp.send(refused)
        await smtp.send(second)
        smtp.close()
        assert [m["X-Notification-Key"] for m in server.mailbox.all()] == [
            "order_confirmation:ORD-0",
            "order_confirmation:ORD-1",
        ]


async def test_a_server_that_is_gone_is_a_temporary_failure() -> None:
    async with FlakySmtp() as server:
        port = server.port
    smtp = SmtpSession("127.0.0.1", port, timeout=5)
    with pytest.raises(TemporarySmtpError):
        await smtp.send(emails(1)[0])
