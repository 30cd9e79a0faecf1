"""Email templates: plain files a non-developer can edit, under `templates/<language>/`:
`<kind>.subject.txt`, `<kind>.txt` (the plain-text part) and `<kind>.html` (extends
`base.html`). English is the fallback language; a missing variable is an error, never a blank.

Templates format values for the recipient's locale with Babel through three helpers:
`money(amount, currency)` (`1 179,00 $US` in French, `$1,179.00` in English), `day(iso_date)`
(a long date), `term(term_code)` (`annual`, `3 ans`…) and `method(payment_method)`.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.dates import format_date
from babel.numbers import format_currency
from jinja2 import (
    Environment,
    FileSystemLoader,
    StrictUndefined,
    Template,
    TemplateError,
    select_autoescape,
)

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


def language_of(locale: str, available: Collection[str] | None = None) -> str:
    """The template language for `locale`: its language when it has templates (`available`,
    else the folders under `templates/`), else English."""
    language = locale.replace("-", "_").split("_")[0].lower()
    if not language.isalpha():
        return FALLBACK_LANGUAGE
    if available is None:
        return language if (TEMPLATES / language).is_dir() else FALLBACK_LANGUAGE
    return language if language in available else FALLBACK_LANGUAGE


def kinds(folder: Path = TEMPLATES) -> list[str]:
    """Every email kind that has templates (in the fallback language)."""
    return sorted(
        p.name.removesuffix(".subject.txt")
        for p in (folder / FALLBACK_LANGUAGE).glob("*.subject.txt")
    )


def languages(folder: Path = TEMPLATES) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_dir())


class EmailRenderer:
    """Renders an email kind for a locale. One per process: each template is compiled once (no
    file system check per email), and each locale's formatters are made once and remember what
    they formatted (issue 19 item 5: Jinja and Babel cost a quarter of notification's CPU)."""

    def __init__(self, folder: Path = TEMPLATES) -> None:
        self.environment = Environment(
            loader=FileSystemLoader(folder),
            undefined=StrictUndefined,
            keep_trailing_newline=True,
            autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
            # Templates do not change under a running process: never stat them again.
            auto_reload=False,
            cache_size=-1,
        )
        self.languages = frozenset(languages(folder))
        self._templates: dict[tuple[str, str], tuple[Template, Template, Template]] = {}
        self._formatters: dict[str, dict[str, Any]] = {}
        for language in self.languages:  # compiled up front, not while the first emails wait
            for kind in kinds(folder):
                with contextlib.suppress(TemplateError):  # it fails its own emails, not the rest
                    self._compiled(language, kind)

    def render(self, kind: str, locale: str, context: dict[str, Any]) -> RenderedEmail:
        language = language_of(locale, self.languages)
        subject_template, text_template, html_template = self._compiled(language, kind)
        # The environment's globals first, as `Template.render` puts them, once for the three.
        values = {**self.environment.globals, **context, **self._helpers(locale, language)}
        if "items" in context:
            values["products"] = ", ".join(
                dict.fromkeys(i["product_name"] for i in context["items"])
            )
        subject = " ".join(self._render(subject_template, values).split())
        text = self._render(text_template, values)
        values.update(subject=subject, language=language, signature=SIGNATURES[language])
        return RenderedEmail(subject=subject, text=text, html=self._render(html_template, values))

    def _render(self, template: Template, values: dict[str, Any]) -> str:
        """`template.render(values)` without its two copies of `values` (one per template, each
        merged with the globals): a shared context reads them as they are (issue 19, s9 plan
        item 10: a quarter of the render's CPU). No template writes to it: `set` writes to the
        template's own context."""
        try:
            return self.environment.concat(
                template.root_render_func(template.new_context(values, shared=True))
            )
        except Exception:
            self.environment.handle_exception()  # raises it again, with the template's lines

    def _compiled(self, language: str, kind: str) -> tuple[Template, Template, Template]:
        compiled = self._templates.get((language, kind))
        if compiled is None:  # a template that does not compile is not kept: it fails each time
            compiled = (
                self.environment.get_template(f"{language}/{kind}.subject.txt"),
                self.environment.get_template(f"{language}/{kind}.txt"),
                self.environment.get_template(f"{language}/{kind}.html"),
            )
            self._templates[(language, kind)] = compiled
        return compiled

    def _helpers(self, locale: str, language: str) -> dict[str, Any]:
        helpers = self._formatters.get(locale)
        if helpers is None:
            if len(self._formatters) >= MAX_LOCALES:  # locales come from data: keep it bounded
                self._formatters.clear()
            helpers = _helpers(_babel_locale(locale, language), language)
            self._formatters[locale] = helpers
        return helpers


# Distinct locales kept formatters for; the product sees a few dozen.
MAX_LOCALES = 256
# Amounts and dates remembered per locale: emails repeat prices and renewal dates, and each is
# shown twice in an email (text and HTML).
REMEMBERED = 4096


def _helpers(locale: Locale, language: str) -> dict[str, Any]:
    @functools.lru_cache(maxsize=REMEMBERED)
    def formatted_money(amount: str, currency: str) -> str:
        return format_currency(Decimal(amount), currency, locale=locale)

    def money(amount: Any, currency: str) -> str:
        return formatted_money(str(amount), currency)

    @functools.lru_cache(maxsize=REMEMBERED)
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
