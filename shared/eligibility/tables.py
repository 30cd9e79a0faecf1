"""A decision as readable tables, for `eligibility explain --format table`."""

from __future__ import annotations

from datetime import date

from rich import box
from rich.console import Console
from rich.table import Table

from shared.eligibility.outcomes import Decision


def _date(value: date | None) -> str:
    return value.isoformat() if value is not None else "-"


def print_tables(decision: Decision, console: Console) -> None:
    """The decision for a person: a verdict line, then subscriptions, groups and preview."""
    verdict = "ALLOWED" if decision.allowed else "REFUSED"
    console.print(f"{decision.action.value}: {verdict}")
    if decision.reasons:
        console.print("request reasons: " + ", ".join(r.value for r in decision.reasons))
    if decision.subscriptions:
        console.print("Subscriptions")
        console.print(_subscriptions_table(decision))
        for outcome in decision.subscriptions:
            for advisory in outcome.advisories:
                console.print(f"advisory for {outcome.subscription_id}: {advisory.value}")
    if decision.groups:
        console.print("Groups")
        console.print(_groups_table(decision))
    if decision.preview is not None and decision.preview.lines:
        console.print("Preview")
        console.print(_preview_table(decision))
        if decision.preview.expires_on is not None:
            console.print(f"quote expires on {decision.preview.expires_on.isoformat()}")


def _table(*columns: str) -> Table:
    table = Table(box=box.ASCII)
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


def _subscriptions_table(decision: Decision) -> Table:
    table = _table(
        "subscription",
        "allowed",
        "reasons",
        "state",
        "window opens",
        "grace ends",
        "next renewal",
        "unit price",
        "total",
    )
    for o in decision.subscriptions:
        table.add_row(
            o.subscription_id,
            "yes" if o.allowed else "no",
            "\n".join(r.value for r in o.reasons) or "-",
            o.state.value if o.state is not None else "-",
            _date(o.window_opens),
            _date(o.grace_ends),
            _date(o.next_renewal_date),
            str(o.unit_price) if o.unit_price is not None else "-",
            str(o.total) if o.total is not None else "-",
        )
    return table


def _groups_table(decision: Decision) -> Table:
    table = _table("csn", "currency", "purchase method", "subscriptions", "total")
    for g in decision.groups:
        table.add_row(
            g.csn,
            g.currency,
            g.purchase_method,
            "\n".join(g.subscription_ids),
            str(g.total) if g.total is not None else "-",
        )
    return table


def _preview_table(decision: Decision) -> Table:
    assert decision.preview is not None
    table = _table(
        "subscription",
        "term",
        "seats",
        "basis",
        "unit price",
        "days",
        "promotion",
        "subtotal",
        "discount",
        "amount",
        "from",
        "to",
    )
    for line in decision.preview.lines:
        days = f"{line.prorated_days}/{line.term_days}" if line.prorated_days is not None else "-"
        promotion = (
            f"{line.promotion_code} -{line.percent_off}%"
            if line.promotion_code is not None
            else "-"
        )
        table.add_row(
            line.subscription_id,
            line.term,
            str(line.seats),
            line.basis.value,
            str(line.unit_price),
            days,
            promotion,
            str(line.subtotal),
            str(line.discount),
            f"{line.amount} {line.currency}",
            line.starts_on.isoformat(),
            line.ends_on.isoformat(),
        )
    for totals in decision.preview.totals:
        table.add_row(
            "total",
            "",
            "",
            "",
            "",
            "",
            "",
            str(totals.subtotal),
            str(totals.discount),
            f"{totals.total} {totals.currency}",
            "",
            "",
        )
    return table
