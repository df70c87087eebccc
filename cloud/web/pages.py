"""The hub's server-rendered staff pages: one blueprint per area, in English and Simplified
Chinese. See docs/hub-pages.md for the pages, the roles and the session and CSRF rules."""

from __future__ import annotations

from pathlib import Path

from babel.support import NullTranslations
from flask import Blueprint, Flask, g, request, session
from flask_babel import Babel, Domain, get_locale
from werkzeug.exceptions import HTTPException

from cloud.staff.sessions import ABSOLUTE_LIFETIME
from cloud.web import web, words
from sync.i18n import translations_from_po
from sync.identity import DOC_TYPES, mask_document, mask_name

TRANSLATIONS = Path(__file__).resolve().parents[1] / "translations"
LANGUAGES = {"en": "English", "zh": "简体中文"}
LANG_COOKIE = "wicket_lang"


class PoDomain(Domain):
    """Flask-Babel's domain, with catalogs compiled from the .po files at start."""

    def __init__(self, catalogs: dict):
        super().__init__()
        self.catalogs = catalogs

    def get_translations(self):
        locale = get_locale()
        return self.catalogs.get(locale.language if locale else "", NullTranslations())


def chosen_language() -> str:
    """The page's language: the one its address names (the public site's pages), else the
    one the reader chose (a cookie), else the browser's."""
    named = g.get("language")
    if named in LANGUAGES:
        return named
    lang = request.cookies.get(LANG_COOKIE)
    if lang in LANGUAGES:
        return lang
    return request.accept_languages.best_match(list(LANGUAGES)) or "en"


def _locale() -> str:
    return "zh_Hans_CN" if chosen_language() == "zh" else "en"


def init_pages(app: Flask, blueprints: list[Blueprint]) -> None:
    """The page shell (sessions, CSRF, languages, error pages) around the areas' page
    blueprints, which the app factory hands over."""
    # the cookie holds the session token and the CSRF token: not for scripts, not sent along
    # with another site's cross-site POST
    app.config.update(SESSION_COOKIE_NAME="wicket_hub_session", SESSION_COOKIE_HTTPONLY=True,
                      SESSION_COOKIE_SAMESITE="Lax", PERMANENT_SESSION_LIFETIME=ABSOLUTE_LIFETIME)
    babel = Babel(app, locale_selector=_locale)
    babel.domain_instance = PoDomain({"zh": translations_from_po(
        TRANSLATIONS / "zh" / "LC_MESSAGES" / "messages.po")})
    app.extensions[web.PAGES] = {bp.name for bp in blueprints}
    for bp in blueprints:
        app.register_blueprint(bp)
    app.before_request(web.before_page)
    app.after_request(web.after_page)
    app.jinja_env.globals.update(
        csrf_field=web.csrf_field, can=web.can, role_title=web.role_title,
        role_titles=web.role_titles, LANGUAGES=LANGUAGES, DOC_TYPES=DOC_TYPES,
        current_language=chosen_language, doc_words=web.doc_words,
        state_words=web.state_words)
    app.jinja_env.globals.update(words.TEMPLATE_GLOBALS)
    app.jinja_env.filters.update(
        localtime=web.localtime, age=web.age, money=web.money, mask_name=mask_name,
        mask_document=mask_document)

    @app.errorhandler(web.CsrfRefused)
    def _csrf(_e):
        from flask_babel import gettext as _
        return web.refusal(400, _("This form cannot be accepted"),
                           _("The form was sent without its security token, or with an old "
                             "one (for example after signing in again, or from another site). "
                             "Nothing was changed. Go back, reload the page and try again."))

    @app.errorhandler(HTTPException)
    def _http(e: HTTPException):
        if request.blueprint not in app.extensions[web.PAGES] and request.path.startswith(
                ("/api/", "/static/")):
            return e
        from flask_babel import gettext as _
        titles = {400: _("Bad request"), 403: _("Not allowed"), 404: _("Not found"),
                  405: _("Not allowed"), 413: _("File too large")}
        messages = {403: _("Your role may not open this page or do this. Nothing was changed."),
                    404: _("There is no such page or record."),
                    413: _("The file is larger than the hub accepts (16 MB).")}
        return web.refusal(e.code or 500, titles.get(e.code, e.name),
                           messages.get(e.code, e.description or ""))

    @app.context_processor
    def _lang():
        return {"html_lang": "zh-Hans" if chosen_language() == "zh" else "en",
                "signed_in": "sid" in session}
