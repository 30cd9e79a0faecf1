"""Every email kind renders in every language with its sample data: no missing variable, a
subject that names the product, money and dates in the recipient's locale (NOTE-1, NOTE-2)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from jinja2 import UndefinedError

from services.notification.samples import SAMPLES
from services.notification.templates import EmailRenderer, kinds, languages

RENDERER = EmailRenderer()


def test_every_kind_has_sample_data_and_every_language_has_every_kind() -> None:
    assert set(kinds()) == set(SAMPLES)
    templates = Path("services/notification/templates")
    for language in languages():
        for kind in kinds():
            for suffix in (".subject.txt", ".txt", ".html"):
                assert (templates / language / f"{kind}{suffix}").is_file(), (
                    language,
                    kind,
                    suffix,
                )


@pytest.mark.parametrize("language", languages())
@pytest.mark.parametrize("kind", kinds())
def test_note_2_every_template_renders_in_every_language(kind: str, language: str) -> None:
    rendered = RENDERER.render(kind, language, SAMPLES[kind])
    assert rendered.subject and "\n" not in rendered.subject
    assert "AutoCAD LT" in rendered.subject  # the subject names the product
    assert rendered.text.strip() and rendered.html.startswith("<!doctype html>")
    assert f'lang="{language}"' in rendered.html


@pytest.mark.parametrize("kind", kinds())
def test_a_missing_variable_fails_instead_of_leaving_a_blank(kind: str) -> None:
    context = dict(SAMPLES[kind])
    context.pop(next(iter(context)))
    with pytest.raises(UndefinedError):
        RENDERER.render(kind, "en", context)


def test_money_and_dates_follow_the_locale() -> None:
    sample = {**SAMPLES["renewal_reminder"], "amount": "1179.00", "currency": "USD"}
    english = RENDERER.render("renewal_reminder", "en-US", sample)
    french = RENDERER.render("renewal_reminder", "fr-FR", sample)
    assert "$1,179.00" in english.text and "March 31, 2027" in english.text
    assert "1\u202f179,00\u00a0$US" in french.text and "31 mars 2027" in french.text


def test_an_unknown_language_falls_back_to_english() -> None:
    rendered = RENDERER.render("lapsed", "de-DE", SAMPLES["lapsed"])
    assert rendered.subject == "Your AutoCAD LT subscription has lapsed"
    assert "31. März 2027" in rendered.text  # the language falls back; the locale's formats stay


def test_the_html_part_escapes_what_it_is_given() -> None:
    sample = {**SAMPLES["lapsed"], "product_name": "<script>x</script>"}
    assert "<script>x" not in RENDERER.render("lapsed", "en", sample).html


def test_the_preview_command_renders_a_kind_to_an_eml_file(tmp_path: Path) -> None:
    out = tmp_path / "mail.eml"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "services.notification.preview",
            "expired",
            "--locale",
            "fr-FR",
            "--out",
            str(out),
        ],
        check=True,
    )
    content = out.read_text()
    assert "multipart/alternative" in content and "Subject:" in content


def test_the_email_catalog_in_docs_is_what_the_templates_render() -> None:
    from services.notification.preview import catalog

    assert Path("docs/emails.md").read_text() == catalog(), (
        "docs/emails.md is stale: python -m services.notification.preview --catalog docs/emails.md"
    )
