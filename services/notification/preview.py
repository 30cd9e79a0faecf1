"""Render any email kind for a locale, with sample data or your own, to the terminal or a file.

python -m services.notification.preview order_confirmation --locale fr-FR
python -m services.notification.preview payment_failed --data context.json --out mail.eml
python -m services.notification.preview --list
"""

from __future__ import annotations

import argparse
import json
import sys
from email.message import EmailMessage
from pathlib import Path

from services.notification.samples import SAMPLES
from services.notification.templates import EmailRenderer, kinds, languages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("kind", nargs="?", help="an email kind (see --list)")
    parser.add_argument("--locale", default="en-US", help="the recipient's locale (default en-US)")
    parser.add_argument(
        "--data", type=Path, help="a JSON file with the template's variables (default: sample data)"
    )
    parser.add_argument(
        "--out", type=Path, help="write to a .eml or .html file instead of the terminal"
    )
    parser.add_argument("--list", action="store_true", help="list the email kinds and languages")
    args = parser.parse_args(argv)
    if args.list or not args.kind:
        print("kinds:", ", ".join(kinds()))
        print("languages:", ", ".join(languages()))
        return 0
    if args.kind not in kinds():
        print(f"unknown email kind {args.kind!r}; one of: {', '.join(kinds())}", file=sys.stderr)
        return 2
    context = json.loads(args.data.read_text()) if args.data else SAMPLES[args.kind]
    rendered = EmailRenderer().render(args.kind, args.locale, context)
    if args.out is None:
        print(f"Subject: {rendered.subject}\n\n{rendered.text}")
    elif args.out.suffix == ".html":
        args.out.write_text(rendered.html)
    else:
        message = EmailMessage()
        message["Subject"] = rendered.subject
        message.set_content(rendered.text)
        message.add_alternative(rendered.html, subtype="html")
        args.out.write_bytes(bytes(message))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
