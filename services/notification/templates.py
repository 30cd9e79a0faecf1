"""Email templates: plain files a non-developer can edit, under `templates/<language>/`:
`<kind>.subject.txt`, `<kind>.txt` (the plain-text part) and `<kind>.html` (extends
`base.html`). English is the fallback language; a missing variable is an error, never a blank.

Templates format values for the recipient's locale with Babel through three helpers:
`money(amount, currency)` (`1 179,00 $US` in French, `$1,179.00` in English), `day(iso_date)`
(a long date), `term(term_code)` (`annual`, `3 ans`…) and `method(payment_method)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.dates import format_date
from babel.numbers import format_currency
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

TEMPLATES = Path(__file__).resolve().parent / "templates"
FALLBACK_LANGUAGE = "en"
TERM_LABELS = {
    "en": {"monthly": "monthly", "annual": "annual", "three_year": "3-year"},
    "fr": {"monthly": "mensuel", "annual": "annuel", "three_year": "3 ans"},
}
METHOD_LABELS = {
    "en": {
        "card": "card",
        "paypal": "PayPal",
        "direct_debit": "direct debit",
        "bank_transfer": "bank transfer",
        "alipay": "Alipay",
        "convenience_store": "convenience store (Konbini)",
        "atm_transfer": "ATM transfer",
        "invoice": "invoice",
    },
    "fr": {
        "card": "carte",
        "paypal": "PayPal",
        "direct_debit": "prélèvement",
        "bank_transfer": "virement bancaire",
        "alipay": "Alipay",
        "convenience_store": "paiement en supérette (Konbini)",
        "atm_transfer": "virement par DAB",
        "invoice": "facture",
    },
}
SIGNATURES = {"en": "The renewals team", "fr": "L'équipe des renouvellements"}


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str = ""


def language_of(locale: str) -> str:
    language = locale.replace("-", "_").split("_")[0].lower()
    return language if language.isalpha() and (TEMPLATES / language).is_dir() else FALLBACK_LANGUAGE


def kinds(folder: Path = TEMPLATES) -> list[str]:
    """Every email kind that has templates (in the fallback language)."""
    return sorted(
        p.name.removesuffix(".subject.txt")
        for p in (folder / FALLBACK_LANGUAGE).glob("*.subject.txt")
    )


def languages(folder: Path = TEMPLATES) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_dir())


class EmailRenderer:
    def __init__(self, folder: Path = TEMPLATES) -> None:
        self.environment = Environment(
            loader=FileSystemLoader(folder),
            undefined=StrictUndefined,
            keep_trailing_newline=True,
            autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        )

    def render(self, kind: str, locale: str, context: dict[str, Any]) -> RenderedEmail:
        language = language_of(locale)
        values = {**context, **_helpers(_babel_locale(locale, language), language)}
        if "items" in context:
            values["products"] = ", ".join(
                dict.fromkeys(i["product_name"] for i in context["items"])
            )
        subject = self.environment.get_template(f"{language}/{kind}.subject.txt").render(values)
        subject = " ".join(subject.split())
        text = self.environment.get_template(f"{language}/{kind}.txt").render(values)
        html = self.environment.get_template(f"{language}/{kind}.html").render(
            {**values, "subject": subject, "language": language, "signature": SIGNATURES[language]}
        )
        return RenderedEmail(subject=subject, text=text, html=html)


def _helpers(locale: Locale, language: str) -> dict[str, Any]:
    def money(amount: Any, currency: str) -> str:
        return format_currency(Decimal(str(amount)), currency, locale=locale)

    def day(value: Any) -> str:
        return format_date(
            value if isinstance(value, date) else date.fromisoformat(value), "long", locale=locale
        )

    def term(code: str) -> str:
        return TERM_LABELS[language].get(code, code)

    def method(code: str) -> str:
        return METHOD_LABELS[language].get(code, code)

    return {"money": money, "day": day, "term": term, "method": method}


def _babel_locale(locale: str, language: str) -> Locale:
    try:
        return Locale.parse(locale.replace("-", "_"))
    except (ValueError, UnknownLocaleError):
        return Locale.parse(language)
