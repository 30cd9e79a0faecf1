"""A development SMTP server: accepts every message and keeps it as an .eml file.

Nothing is relayed anywhere. Each message lands in the mail folder as
`<UTC timestamp>-<uuid>.eml` (written under a temporary name, then renamed, so a reader never
sees half a file), with the SMTP envelope in `X-MailFrom` / `X-RcptTo` headers on top, and one
log line says who sent what to whom.

    uv run python deploy/local/devsmtp.py --host 127.0.0.1 --port 12525 --maildir .local/smtp/mail
"""

import argparse
import asyncio
import logging
import os
import signal
import sys
import uuid
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

log = logging.getLogger("devsmtp")


class MaildirHandler:
    def __init__(self, maildir: Path) -> None:
        self.maildir = maildir

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or envelope.content or b""
        if isinstance(content, str):
            content = content.encode("utf-8")
        envelope_headers = (
            f"X-MailFrom: {envelope.mail_from}\r\nX-RcptTo: {', '.join(envelope.rcpt_tos)}\r\n"
        ).encode()
        path = await asyncio.to_thread(self.store, envelope_headers + content)
        subject = BytesHeaderParser(policy=default_policy).parsebytes(content).get("Subject", "")
        log.info(
            "message from=%s to=%s subject=%r file=%s",
            envelope.mail_from,
            ",".join(envelope.rcpt_tos),
            str(subject),
            path.name,
        )
        return "250 Message accepted for delivery"

    def store(self, message: bytes) -> Path:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        path = self.maildir / f"{stamp}-{uuid.uuid4().hex}.eml"
        temporary = path.with_suffix(".eml.tmp")
        temporary.write_bytes(message)
        os.replace(temporary, path)
        return path


async def serve(host: str, port: int, maildir: Path) -> None:
    handler = MaildirHandler(maildir)
    loop = asyncio.get_running_loop()

    def factory() -> Any:
        return SMTP(handler, hostname="devsmtp.local", enable_SMTPUTF8=True)

    server = await loop.create_server(factory, host=host, port=port)
    log.info("listening on %s:%d, storing mail in %s", host, port, maildir)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    server.close()
    await server.wait_closed()
    log.info("stopped")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=12525)
    parser.add_argument("--maildir", type=Path, default=Path(".local/smtp/mail"))
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stdout,
    )
    # aiosmtpd logs every connection and command at INFO; one line per message is enough.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    maildir = args.maildir.resolve()
    maildir.mkdir(parents=True, exist_ok=True)
    asyncio.run(serve(args.host, args.port, maildir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
