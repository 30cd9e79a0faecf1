"""An SMTP client on the event loop: one session reused across emails, its commands pipelined
when the server offers PIPELINING (RFC 2920): an email's content goes in one write with the
MAIL, RCPT and DATA of the email that follows it (announced by the caller), so that each email
costs one round trip instead of smtplib's four, and no thread hop. An announced email that is
not sent next (its lease was lost) has its session closed: the server drops the unfinished
transaction, none of whose content went out.

An email is accepted only when the server answers 250 to its content. Any failure closes the
session (the next email opens a new one), so no half-done transaction lingers; a session the
server closed while idle is reopened at once for the email that found it closed, since nothing
of that email had gone out.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
from typing import NamedTuple

from services.notification.message import OutgoingEmail


class TemporarySmtpError(Exception):
    """Worth another try: a 4xx answer, or the connection failed."""


class PermanentSmtpError(Exception):
    """Refused for good: a 5xx answer."""


class Reply(NamedTuple):
    code: int
    lines: list[str]

    def error(self, what: str) -> Exception:
        text = f"{what}: {self.code} {' '.join(self.lines)!r}"
        return TemporarySmtpError(text) if 400 <= self.code < 500 else PermanentSmtpError(text)


class _Unsent(Exception):
    """The connection failed before any of this email's content was written."""


@functools.cache
def _fully_qualified_name() -> str:
    return socket.getfqdn()  # may ask DNS: once per process, off the event loop


class SmtpSession:
    """One SMTP session, opened at the first email and reused; reopened after any failure."""

    def __init__(self, host: str, port: int, *, timeout: float = 10.0) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.extensions: set[str] = set()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        # The email whose MAIL, RCPT and DATA went out with the last content, answers unread.
        self._announced: OutgoingEmail | None = None

    async def send(self, message: OutgoingEmail, following: OutgoingEmail | None = None) -> None:
        """Returns once the server accepted `message`; raises TemporarySmtpError (try again)
        or PermanentSmtpError (refused). `following`: the email the caller means to send next,
        whose envelope then goes out with this one's content."""
        if self._announced is not None and self._announced is not message:
            self.close()  # the announced email is not coming: its transaction goes with it
        try:
            async with asyncio.timeout(self.timeout):
                await self._deliver(message, following)
        except (TemporarySmtpError, PermanentSmtpError):
            self.close()
            raise
        except UnicodeEncodeError as error:  # an address SMTP cannot carry without SMTPUTF8
            self.close()
            raise PermanentSmtpError(repr(error)) from None
        except (_Unsent, OSError, EOFError, TimeoutError, ValueError) as error:
            self.close()
            raise TemporarySmtpError(repr(error.__cause__ or error)) from None

    async def _deliver(self, message: OutgoingEmail, following: OutgoingEmail | None) -> None:
        if self._writer is None:
            await self._open()
            await self._envelope(message)
        else:
            try:
                await self._envelope(message, written=self._announced is message)
            except _Unsent:
                # The server closed the session while it was idle (a timeout of its own), or
                # after it accepted the last email: nothing of this email went out, so it goes
                # on a new session, not to a retry.
                self.close()
                await self._open()
                await self._envelope(message)
        self._announced = None
        await self._content(message, following)

    async def _open(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        greeting = await self._reply()
        if greeting.code != 220:
            raise greeting.error("greeting")
        # As smtplib introduces itself: by its fully qualified name, else its address.
        name = await asyncio.to_thread(_fully_qualified_name)
        if "." not in name:
            name = f"[{self._writer.get_extra_info('sockname')[0]}]"
        hello = await self._command(f"EHLO {name}")
        if hello.code == 250:
            self.extensions = {line.split(" ", 1)[0].upper() for line in hello.lines[1:]}
            return
        self.extensions = set()
        hello = await self._command(f"HELO {name}")
        if hello.code != 250:
            raise hello.error("HELO")

    def _commands(self, message: OutgoingEmail) -> list[str]:
        """MAIL, RCPT for each recipient, DATA."""
        options = ""
        if "8BITMIME" in self.extensions and not message.data.isascii():
            options += " BODY=8BITMIME"
        if "SIZE" in self.extensions:
            options += f" SIZE={len(message.data)}"
        return [
            f"MAIL FROM:<{message.sender}>{options}",
            *(f"RCPT TO:<{recipient}>" for recipient in message.recipients),
            "DATA",
        ]

    async def _envelope(self, message: OutgoingEmail, written: bool = False) -> None:
        """The envelope's commands and their answers, pipelined when the server allows it
        (`written`: they went out with the last email's content)."""
        commands = self._commands(message)
        try:
            if "PIPELINING" in self.extensions:
                if not written:
                    self._write("".join(f"{command}\r\n" for command in commands).encode("ascii"))
                mail, *recipients, data = [await self._reply() for _ in commands]
            else:
                mail = await self._command(commands[0])
                if mail.code != 250:
                    raise mail.error("MAIL")
                recipients = [await self._command(command) for command in commands[1:-1]]
                if not any(reply.code in (250, 251) for reply in recipients):
                    raise _refused(recipients)
                data = await self._command("DATA")
        except (OSError, EOFError) as error:
            raise _Unsent from error
        if mail.code != 250:
            raise mail.error("MAIL")
        if not any(reply.code in (250, 251) for reply in recipients):
            raise _refused(recipients)
        if data.code != 354:
            raise data.error("DATA")

    async def _content(self, message: OutgoingEmail, following: OutgoingEmail | None) -> None:
        data = message.data.replace(b"\r\n.", b"\r\n..")  # a line's leading dot, doubled
        if data.startswith(b"."):
            data = b"." + data
        if not data.endswith(b"\r\n"):
            data += b"\r\n"
        data += b".\r\n"
        if following is not None and "PIPELINING" in self.extensions:
            # An address that cannot go out fails that email on its own turn, not this one.
            with contextlib.suppress(UnicodeEncodeError):
                data += "".join(f"{c}\r\n" for c in self._commands(following)).encode("ascii")
                self._announced = following
        self._write(data)
        assert self._writer is not None
        await self._writer.drain()
        accepted = await self._reply()
        if accepted.code != 250:
            raise accepted.error("message")

    async def _command(self, line: str) -> Reply:
        self._write(f"{line}\r\n".encode("ascii"))
        return await self._reply()

    def _write(self, data: bytes) -> None:
        assert self._writer is not None
        self._writer.write(data)

    async def _reply(self) -> Reply:
        """One reply, however many lines (`250-…` goes on, `250 …` ends it)."""
        assert self._reader is not None
        lines = []
        while True:
            line = await self._reader.readline()
            if not line.endswith(b"\n"):
                raise EOFError("the SMTP server closed the connection")
            lines.append(line[4:].decode("utf-8", "replace").rstrip("\r\n"))
            if line[3:4] != b"-":
                return Reply(int(line[:3]), lines)

    def close(self) -> None:
        if self._writer is not None:
            with contextlib.suppress(Exception):
                self._writer.close()
        self._reader = self._writer = None
        self._announced = None


def _refused(recipients: list[Reply]) -> Exception:
    """Every recipient refused: temporary only if each refusal was."""
    codes = [reply.code for reply in recipients]
    text = f"recipients refused: {codes}"
    if codes and all(400 <= code < 500 for code in codes):
        return TemporarySmtpError(text)
    return PermanentSmtpError(text)
