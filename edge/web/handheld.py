"""The handheld API (``/api/v1/``, JSON, bearer device tokens) and the handheld page.

The views only translate HTTP to :mod:`edge.handhelds` and back. Every refusal is a 4xx/5xx
answer ``{"error": code, "message": words}``; verdicts carry the engine's reasons with their
words in the language the request asks for (``Accept-Language``, English or Chinese) and the
holder masked. Documented in ``docs/edge-openapi.json``; see ``docs/handheld.md``.

The page (``/handheld/``) is static: everything it does goes through the same API with the
token it keeps in the browser's localStorage, so it needs no staff session.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

from flask import Blueprint, Response, abort, current_app, g, jsonify, request
from flask_babel import force_locale
from werkzeug.exceptions import HTTPException

from edge import handhelds
from edge.handhelds import HandheldError
from edge.web import detail_words
from edge.web.auth import own_auth
from edge.web.context import API_PREFIX, web
from edge.web.i18n import LOCALES

log = logging.getLogger(__name__)

PAGE_DIR = Path(__file__).resolve().parent / "handheld"
MAX_BATCH_BYTES = 1024 * 1024
_STATUS = {
    "unauthorized": 401,
    "device_disabled": 403,
    "lane_not_allowed": 403,
    "unknown_lane": 404,
    "lane_disabled": 409,
    "bad_code": 400,
    "code_used": 410,
    "code_expired": 410,
    "client_scan_id_reused": 409,
    "batch_too_large": 413,
    "too_many_attempts": 429,
}

api = Blueprint("handheld_api", __name__, url_prefix=API_PREFIX.rstrip("/"))
page = Blueprint("handheld_page", __name__, url_prefix="/handheld")
PUBLIC_ENDPOINTS = {"handheld_api.pair"}


def _group() -> handhelds.GroupCommit:
    return current_app.extensions["handheld_group"]


INTERNAL_ERROR = "the appliance could not handle this request; it is in the appliance log"
CHALLENGE = ("WWW-Authenticate", 'Bearer realm="wicket-handheld"')  # with every 401


def pick_lang(accept) -> str:
    """The first of English and Chinese in an Accept-Language (werkzeug's LanguageAccept), by
    quality."""
    for value, _quality in accept:  # best first
        primary = value.split("-")[0].split("_")[0].lower()
        if primary in ("en", "zh"):
            return primary
    return "en"


def bearer_token(header: str) -> str:
    """The token of an ``Authorization: Bearer`` header; empty for any other."""
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def refusal(e: HandheldError) -> tuple[int, dict]:
    """A refused request's status and body."""
    body = {"error": e.code, "message": e.message}
    if e.items is not None:
        body["items"] = e.items
    return _STATUS.get(e.code, 400), body


def _lang() -> str:
    return pick_lang(request.accept_languages)


def _error(status: int, body: dict):
    response = jsonify(body)
    response.status_code = status
    if status == 401:
        response.headers[CHALLENGE[0]] = CHALLENGE[1]
    return response


def json_object(body) -> dict:
    """``body`` (parsed JSON, or None where it was none) if it is an object; else ``bad_json``."""
    if not isinstance(body, dict):
        raise HandheldError("bad_json", "the request body must be a JSON object")
    return body


def _body():
    return json_object(request.get_json(silent=True))


@api.errorhandler(HandheldError)
def _handheld_error(e: HandheldError):
    response = _error(*refusal(e))
    if isinstance(e, handhelds.TooManyAttempts):
        response.headers["Retry-After"] = str(e.retry_after)
    return response


def http_refusal(e: HTTPException) -> tuple[int, dict]:
    """An HTTP error's status and body, in the API's shape."""
    code = (e.name or "error").lower().replace(" ", "_")
    return e.code or 500, {"error": code, "message": e.description or e.name}


def _http_error(e: HTTPException):
    return _error(*http_refusal(e))


@api.errorhandler(Exception)
def _internal_error(e: Exception):
    if isinstance(e, HTTPException):
        return _http_error(e)
    log.exception("handheld API: internal error on %s %s", request.method, request.path)
    return _error(500, {"error": "internal_error", "message": INTERNAL_ERROR})


@api.before_request
def _authenticate():
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    g.handheld = handhelds.authenticate(web().conn(),
                                        bearer_token(request.headers.get("Authorization", "")))
    return None


@api.post("/pair")
def pair():
    body = _body()
    code = body.get("code")
    if not isinstance(code, str):
        raise HandheldError("bad_code", "code must be the pairing code the admin page shows")
    version = body.get("app_version", "")
    paired = handhelds.pair(web().conn(), code, app_version=version if isinstance(
        version, str) else "", client=request.remote_addr or "")
    return jsonify(device_id=paired.device_id, token=paired.token, name=paired.name,
                   lanes=handhelds.lanes_for(web().conn(), handhelds.Handheld(
                       paired.device_id, paired.name, paired.lanes)),
                   verdict_fade_s=current_app.config["VERDICT_FADE_S"]), 201


@api.get("/lanes")
def lanes():
    h = g.handheld
    return jsonify(device_id=h.device_id, name=h.name,
                   lanes=handhelds.lanes_for(web().conn(), h),
                   verdict_fade_s=current_app.config["VERDICT_FADE_S"])


def with_detail_words(verdicts: list[dict], lang: str) -> list[dict]:
    """The engine's detail line (kept in English with the entry) in the verdict's language,
    by its code (a verdict kept before details had codes is worded in English).
    Needs an application context whose ``g`` holds something (flask_babel forces a locale
    only then)."""
    for v in verdicts:
        v["detail_words"] = ""
    worded = [v for v in verdicts if v["detail"]]  # most admissions have none
    if worded:
        with force_locale(LOCALES[lang]):
            for v in worded:
                v["detail_words"] = detail_words.translate(
                    v.get("detail_code"), v.get("detail_params"), v["detail"])
    return verdicts


@api.post("/scan")
def scan():
    req = handhelds.parse_scan(_body())
    lang = _lang()
    verdict = handhelds.scan(web().engine(), g.handheld, req, lang, group=_group())
    return jsonify(with_detail_words([verdict], lang)[0])


@api.post("/scans")
def scans():
    if (request.content_length or 0) > MAX_BATCH_BYTES:
        raise HandheldError("batch_too_large", f"a batch is at most {MAX_BATCH_BYTES} bytes: "
                            "send the queue in parts, oldest first")
    lang = _lang()
    minutes = current_app.config.get("HANDHELD_OFFLINE_MAX_AGE_MIN") or 0
    results = handhelds.upload(web().engine(), g.handheld, _body(), lang, group=_group(),
                               max_age=timedelta(minutes=minutes) if minutes else None)
    return jsonify(results=with_detail_words(results, lang))


@api.post("/heartbeat")
def heartbeat():
    return jsonify(handhelds.heartbeat(web().conn(), g.handheld, _body()))


# -- the page --------------------------------------------------------------------------------


ASSETS = {"index.html": "text/html; charset=utf-8",
          "app.js": "text/javascript; charset=utf-8",
          "app.css": "text/css; charset=utf-8",
          "manifest.json": "application/manifest+json"}


def _asset(name: str) -> Response:
    # read whole (a few kilobytes each): no file stays open behind a response nobody closed
    response = Response((PAGE_DIR / name).read_bytes(), mimetype=ASSETS[name])
    response.headers["Cache-Control"] = "no-cache"
    return response


@page.get("/")
def index():
    response = _asset("index.html")
    response.headers["Cache-Control"] = "no-store"
    return response


@page.get("/<name>")
def asset(name: str):
    if name not in ASSETS or name == "index.html":
        abort(404)
    return _asset(name)


def register(app) -> None:
    """Add the API and the page to ``app``; both check their own tokens, never a staff
    session (the page is static and goes through the API). The scans of all request threads
    of the process share commits (GroupCommit)."""
    own_auth(app, api)
    own_auth(app, page)
    shared = web(app)
    app.extensions["handheld_group"] = handhelds.GroupCommit(
        lambda: shared.engine(), lock_path=f"{shared.database}-handheld.lock")
    app.register_blueprint(api)
    app.register_blueprint(page)
