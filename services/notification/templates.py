"""Email templates: plain files per language under `templates/<lang>/`, English as fallback.

Dates are formatted for the recipient's locale with Babel; a missing variable is an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.dates import format_date
from jinja2 import Environment, FileSystemLoader, StrictUndefined

TEMPLATES = Path(__file__).resolve().parent / "templates"
FALLBACK_LANGUAGE = "en"
TERM_LABELS = {
    "en": {"monthly": "monthly", "annual": "annual", "three_year": "3-year"},
    "fr": {"monthly": "mensuel", "annual": "annuel", "three_year": "3 ans"},
}


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str


def language_of(locale: str) -> str:
    language = locale.replace("-", "_").split("_")[0].lower()
    return language if language.isalpha() and (TEMPLATES / language).is_dir() else FALLBACK_LANGUAGE


class EmailRenderer:
    def __init__(self, folder: Path = TEMPLATES) -> None:
        self.environment = Environment(
            loader=FileSystemLoader(folder), undefined=StrictUndefined, keep_trailing_newline=True
        )

    def render(self, kind: str, locale: str, context: dict[str, Any]) -> RenderedEmail:
        language = language_of(locale)
        babel_locale = _babel_locale(locale, language)
        values = _localise(context, babel_locale, language)
        subject = self.environment.get_template(f"{language}/{kind}.subject.txt").render(values)
        text = self.environment.get_template(f"{language}/{kind}.txt").render(values)
        return RenderedEmail(subject=" ".join(subject.split()), text=text)


def _babel_locale(locale: str, language: str) -> Locale:
    try:
        return Locale.parse(locale.replace("-", "_"))
    except (ValueError, UnknownLocaleError):
        return Locale.parse(language)


def _localise(context: dict[str, Any], locale: Locale, language: str) -> dict[str, Any]:
    items = []
    for item in context.get("items", []):
        items.append(
            {
                **item,
                "renewal_date": format_date(
                    date.fromisoformat(item["renewal_date"]), "long", locale=locale
                ),
                "term_label": TERM_LABELS[language].get(item["term"], item["term"]),
            }
        )
    products = ", ".join(dict.fromkeys(item["product_name"] for item in items))
    return {**context, "items": items, "products": products}
