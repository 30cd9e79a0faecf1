"""Issue 19 item 5: the renderer compiles each template once per process and makes each
locale's Babel formatters once — no file system check, template lookup or locale parsing per
email — and what it renders stays what a fresh renderer renders."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from services.notification import templates
from services.notification.samples import SAMPLES
from services.notification.templates import TEMPLATES, EmailRenderer, kinds, languages


def test_a_template_is_compiled_once_then_never_read_again(tmp_path: Path) -> None:
    folder = tmp_path / "templates"
    shutil.copytree(TEMPLATES, folder)
    renderer = EmailRenderer(folder)
    first = renderer.render("lapsed", "en-US", SAMPLES["lapsed"])

    # Were the renderer to look at the files again per email, it would see these.
    (folder / "en" / "lapsed.subject.txt").write_text("changed {{ product_name }}")
    shutil.rmtree(folder / "fr")

    assert renderer.render("lapsed", "en-US", SAMPLES["lapsed"]) == first
    assert renderer.render("lapsed", "fr-FR", SAMPLES["lapsed"]).subject.startswith("Votre")


def test_a_locale_s_formatters_are_made_once(monkeypatch: pytest.MonkeyPatch) -> None:
    parsed: list[str] = []
    parse = templates._babel_locale

    def counting(locale: str, language: str) -> object:
        parsed.append(locale)
        return parse(locale, language)

    monkeypatch.setattr(templates, "_babel_locale", counting)
    renderer = EmailRenderer()
    for amount in ("10.00", "1179.00", "10.00"):
        for locale in ("fr-FR", "en-US"):
            sample = {**SAMPLES["renewal_reminder"], "amount": amount}
            renderer.render("renewal_reminder", locale, sample)
    assert parsed == ["fr-FR", "en-US"]


def test_remembered_amounts_and_dates_are_each_their_own() -> None:
    """The formatters remember what they formatted: another amount, date or currency is
    formatted anew, the same one gives the same text."""
    renderer = EmailRenderer()
    texts = [
        renderer.render(
            "renewal_reminder",
            "fr-FR",
            {**SAMPLES["renewal_reminder"], "amount": amount, "currency": currency},
        ).text
        for amount, currency in (("1179.00", "USD"), ("1179.5", "USD"), ("1179.00", "EUR"))
    ]
    assert "1\u202f179,00\u00a0$US" in texts[0]
    assert "1\u202f179,50\u00a0$US" in texts[1]
    assert "1\u202f179,00\u00a0€" in texts[2]


@pytest.mark.parametrize("language", languages())
@pytest.mark.parametrize("kind", kinds())
def test_a_long_lived_renderer_renders_what_a_fresh_one_renders(kind: str, language: str) -> None:
    shared = EmailRenderer()
    for other_kind in kinds():  # the cache already full of every other kind
        shared.render(other_kind, language, SAMPLES[other_kind])
    assert shared.render(kind, language, SAMPLES[kind]) == EmailRenderer().render(
        kind, language, SAMPLES[kind]
    )
