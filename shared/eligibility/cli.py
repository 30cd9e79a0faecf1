"""`eligibility explain`: the support tool for "why can't this customer renew?".

Reads a JSON request from a file or stdin, prints the decision as JSON or as tables. Bad input
is one line on stderr and exit status 2; an explained decision, allowed or refused, exits 0.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from shared.eligibility.explain import explain
from shared.eligibility.outcomes import Decision
from shared.eligibility.parsing import InvalidRequestError, parse_explain_request
from shared.eligibility.rendering import decision_to_dict

TABLE_WIDTH = 160
EXIT_BAD_INPUT = 2
OutputFormat = Literal["json", "table"]
OUTPUT_FORMATS: tuple[OutputFormat, ...] = ("json", "table")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="eligibility", description="Explain the renewal rules' decisions."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    explain_command = commands.add_parser(
        "explain",
        help="print the decision for a JSON request (see shared/eligibility/README.md)",
        description="Print the decision for a JSON request read from FILE, or stdin.",
    )
    explain_command.add_argument(
        "file", nargs="?", default="-", metavar="FILE", help="the request; - or none for stdin"
    )
    explain_command.add_argument("--format", choices=OUTPUT_FORMATS, default="json")
    args = parser.parse_args(argv)

    try:
        request = parse_explain_request(json.loads(_read(args.file)))
    except InvalidRequestError as error:
        return _bad_input(f"invalid request: {error}")
    except json.JSONDecodeError as error:
        return _bad_input(f"not valid JSON: {error}")
    except (OSError, UnicodeDecodeError) as error:
        return _bad_input(f"can't read {args.file}: {error}")

    print_decision(explain(request), args.format)
    return 0


def print_decision(decision: Decision, output_format: OutputFormat) -> None:
    """The decision on stdout, as JSON or as tables: `eligibility explain`'s output, which
    `renewals explain` (the same question on the live state) prints too."""
    if output_format == "table":
        # rich is imported only for tables: it is a third of the start-up time of the command.
        from rich.console import Console

        from shared.eligibility.tables import print_tables

        console = Console(width=TABLE_WIDTH, color_system=None, highlight=False, soft_wrap=False)
        print_tables(decision, console)
    else:
        print(json.dumps(decision_to_dict(decision), indent=2))


def _read(file: str) -> str:
    if file == "-":
        return sys.stdin.read()
    return Path(file).read_text(encoding="utf-8")


def _bad_input(message: str) -> int:
    print(f"eligibility: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
