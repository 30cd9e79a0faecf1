"""An SMTP server in the test's event loop that breaks its connections where a test says, and
keeps only what it answered 250 to (an email it dropped before answering is not delivered)."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field

from bench.smtp_sink import notification_key


@dataclass
class FlakySmtp:
    """`async with FlakySmtp(...) as server:` — listening on `server.port`.

    pipelining:         offer PIPELINING in the EHLO answer
    defer_replies:      answer MAIL, RCPT and DATA only once DATA arrived (RFC 2920 allows a
                        server to hold its answers: a client that waits for each answer before
                        its next command then waits for ever)
    drop_before_answer: close the connection when the Nth message's content has arrived,
                        without answering (1-based, counting every message received)
    drop_after_accept:  close the connection right after answering 250 to the Nth message
    drop_on_mail:       close the connection when the Nth MAIL command arrives
    """

    pipelining: bool = True
    defer_replies: bool = False
    drop_before_answer: set[int] = field(default_factory=set)
    drop_after_accept: set[int] = field(default_factory=set)
    drop_on_mail: set[int] = field(default_factory=set)
    accepted: Counter[str] = field(default_factory=Counter)
    connections: int = 0
    received: int = 0
    mails: int = 0
    # MAIL commands already there when the message before them had arrived: sent in the same
    # write as that message's content (one round trip per email)
    envelopes_with_content: int = 0
    port: int = 0
    _server: asyncio.Server | None = None

    async def __aenter__(self) -> FlakySmtp:
        self._server = await asyncio.start_server(self._session, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self._converse(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _converse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 flaky ESMTP\r\n")
        held: list[bytes] = []
        while line := await reader.readline():
            verb = line[:4].upper()
            if verb == b"EHLO":
                offered = b"250-PIPELINING\r\n" if self.pipelining else b""
                writer.write(b"250-flaky\r\n" + offered + b"250 8BITMIME\r\n")
            elif verb == b"MAIL":
                self.mails += 1
                if self.mails in self.drop_on_mail:
                    return
                held.append(b"250 OK\r\n")
            elif verb == b"RCPT":
                held.append(b"250 OK\r\n")
            elif verb == b"DATA":
                held.append(b"354 go ahead\r\n")
                writer.write(b"".join(held))
                held = []
                content = await reader.readuntil(b"\r\n.\r\n")
                # What the client wrote along with the content is in the reader's buffer now.
                self.envelopes_with_content += bytes(reader._buffer[:4]).upper() == b"MAIL"
                self.received += 1
                if self.received in self.drop_before_answer:
                    return
                key = notification_key(content)
                assert key is not None
                self.accepted[key] += 1
                writer.write(b"250 accepted\r\n")
                if self.received in self.drop_after_accept:
                    await writer.drain()
                    return
            elif verb == b"QUIT":
                writer.write(b"221 bye\r\n")
                return
            else:
                writer.write(b"250 OK\r\n")
            if held and not self.defer_replies:
                writer.write(b"".join(held))
                held = []
