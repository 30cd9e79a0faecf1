"""Order-confirmation emails (MAN-3) in the buyer's language, dates in the buyer's locale."""

from __future__ import annotations

from typing import Any

import pytest
from jinja2 import UndefinedError

from services.notification.samples import SAMPLES
from services.notification.templates import (
    SIGNATURES,
    EmailRenderer,
    RenderedEmail,
    kinds,
    language_of,
)


def order_context(**changes: Any) -> dict[str, Any]:
    context: dict[str, Any] = {
        "order_id": "ORD-42",
        "items": [
            {
                "subscription_id": "sub-1",
                "product_name": "AutoCAD LT",
                "term": "annual",
                "seats": 3,
                "renewal_date": "2026-03-01",
            },
            {
                "subscription_id": "sub-2",
                "product_name": "AutoCAD LT",
                "term": "three_year",
                "seats": 1,
                "renewal_date": "2028-12-24",
            },
        ],
    }
    context.update(changes)
    return context


def test_the_order_confirmation_in_english() -> None:
    email = EmailRenderer().render("order_confirmation", "en-US", order_context())

    # One product named once in the subject, however many subscriptions of it the order renewed.
    assert email.subject == "Your renewal is confirmed: AutoCAD LT (order ORD-42)"
    assert "your order ORD-42 is confirmed" in email.text
    assert "- AutoCAD LT (sub-1): 3 seat(s), annual, next renewal on March 1, 2026" in email.text
    assert (
        "- AutoCAD LT (sub-2): 1 seat(s), 3-year, next renewal on December 24, 2028" in email.text
    )


def test_the_order_confirmation_in_french() -> None:
    email = EmailRenderer().render("order_confirmation", "fr-FR", order_context())

    assert email.subject == "Votre renouvellement est confirmé : AutoCAD LT (commande ORD-42)"
    assert "votre commande ORD-42 est confirmée" in email.text
    assert (
        "- AutoCAD LT (sub-1) : 3 poste(s), annuel, prochain renouvellement le 1 mars 2026"
        in email.text
    )
    assert "3 ans, prochain renouvellement le 24 décembre 2028" in email.text


@pytest.mark.parametrize(
    ("locale", "date_text"),
    [("en-GB", "1 March 2026"), ("en_US", "March 1, 2026"), ("fr-CA", "1 mars 2026")],
)
def test_dates_follow_the_region_of_the_locale(locale: str, date_text: str) -> None:
    email = EmailRenderer().render("order_confirmation", locale, order_context())

    assert f"renewal on {date_text}" in email.text or f"renouvellement le {date_text}" in email.text


def test_a_language_without_templates_gets_english_with_its_own_date_format() -> None:
    email = EmailRenderer().render("order_confirmation", "de-DE", order_context())

    assert email.subject.startswith("Your renewal is confirmed")
    assert "next renewal on 1. März 2026" in email.text


def test_a_missing_variable_is_an_error_not_a_blank() -> None:
    context = order_context()
    del context["order_id"]

    with pytest.raises(UndefinedError, match="order_id"):
        EmailRenderer().render("order_confirmation", "en-US", context)


def test_a_missing_item_field_is_an_error_not_a_blank() -> None:
    context = order_context()
    del context["items"][0]["seats"]

    with pytest.raises(UndefinedError, match="seats"):
        EmailRenderer().render("order_confirmation", "fr-FR", context)


@pytest.mark.parametrize(
    ("locale", "language"),
    [
        ("en", "en"),
        ("en-US", "en"),
        ("fr", "fr"),
        ("fr-FR", "fr"),
        ("fr_CA", "fr"),
        ("FR-fr", "fr"),
        ("de-DE", "en"),
        ("ja", "en"),
        ("zz", "en"),
    ],
)
def test_language_of_falls_back_to_english(locale: str, language: str) -> None:
    assert language_of(locale) == language


@pytest.mark.parametrize("locale", ["-US", "_FR", ".."])
def test_language_of_falls_back_to_english_for_a_malformed_locale(locale: str) -> None:
    # The contract's locale is any 2 to 16 characters: a malformed one must not break the email.
    assert language_of(locale) == "en"
    email = EmailRenderer().render("order_confirmation", locale, order_context())
    assert email.subject.startswith("Your renewal is confirmed")


@pytest.mark.parametrize("kind", kinds())
@pytest.mark.parametrize("locale", ["en-US", "fr-FR", "fr-CA", "de-DE"])
def test_issue_19_every_email_renders_as_jinja_s_own_render_gives_it(
    kind: str, locale: str
) -> None:
    """s9 plan item 10: the renderer renders its three templates on one shared context, not
    through `Template.render` (two copies of the values each); every kind, in every language,
    comes out character for character as `Template.render` writes it."""
    renderer = EmailRenderer()
    context = SAMPLES[kind]
    language = language_of(locale, renderer.languages)
    subject_template, text_template, html_template = renderer._compiled(language, kind)
    values = {**context, **renderer._helpers(locale, language)}
    if "items" in context:
        values["products"] = ", ".join(dict.fromkeys(i["product_name"] for i in context["items"]))
    subject = " ".join(subject_template.render(values).split())
    text = text_template.render(values)
    values.update(subject=subject, language=language, signature=SIGNATURES[language])
    assert renderer.render(kind, locale, context) == RenderedEmail(
        subject=subject, text=text, html=html_template.render(values)
    )
