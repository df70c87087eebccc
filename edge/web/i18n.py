"""Languages of the local pages: English and Simplified Chinese.

The language is the staff member's own choice (stored with the account), else the one picked
on the login page, else the browser's ``Accept-Language``. Catalogues are the ``.po`` files in
``edge/web/translations/``, compiled in memory at start (:mod:`sync.i18n`).
"""

from __future__ import annotations

from pathlib import Path

from babel.support import NullTranslations, Translations
from flask import Flask, g, request, session
from flask_babel import Babel, Domain, get_locale

from sync.i18n import translations_from_po

TRANSLATIONS = Path(__file__).resolve().parent / "translations"
LANGUAGES = ("en", "zh")
LANGUAGE_NAMES = {"en": "English", "zh": "中文"}
# Babel's locale for each of our language codes
LOCALES = {"en": "en", "zh": "zh_Hans_CN"}


class PoDomain(Domain):
    """A Flask-Babel domain whose catalogues come from .po files compiled in memory."""

    def __init__(self, catalogues: dict[str, Translations]):
        super().__init__()
        self._catalogues = catalogues

    def get_translations(self):
        locale = get_locale()
        if locale is None:
            return NullTranslations()
        return self._catalogues.get(locale.language, NullTranslations())


def current_language() -> str:
    user = g.get("user")
    if user is not None and user.lang in LANGUAGES:
        return user.lang
    chosen = session.get("lang")
    if chosen in LANGUAGES:
        return chosen
    return request.accept_languages.best_match(LANGUAGES, default="en") or "en"


def init_app(app: Flask) -> None:
    catalogues = {lang: translations_from_po(TRANSLATIONS / f"{lang}.po")
                  for lang in LANGUAGES if lang != "en"}
    babel = Babel(app, locale_selector=lambda: LOCALES[current_language()])
    babel.domain_instance = PoDomain(catalogues)
    app.jinja_env.globals.update(current_language=current_language,
                                 LANGUAGE_NAMES=LANGUAGE_NAMES)
