"""``POST /api/v1/scan``, answered in front of Flask.

A handheld's scan is the appliance web's steady traffic, one request per ticket at every
hand-held lane. Through Flask, building the request and response objects, dispatching to the
blueprint and running its hooks cost the server more than deciding the scan. This WSGI layer
answers that one route itself, with the same functions as the Flask view (:mod:`edge.handhelds`)
and the same answers: the verdict as JSON in the language of ``Accept-Language``, every refusal
as ``{"error": code, "message": words}`` with its status, the same security headers, no cookie.
Every other request, and every other method on this path, goes on to Flask unchanged.

The Flask view ``handheld_api.scan`` stays: it documents the route in the URL map, and it
answers when the application is served without this layer.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, g
from flask_babel import force_locale
from werkzeug.datastructures import LanguageAccept
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.http import parse_accept_header

from edge import handhelds
from edge.handhelds import HandheldError
from edge.web.details import translate
from edge.web.i18n import LOCALES

log = logging.getLogger(__name__)

_REASONS = {200: "200 OK", 400: "400 BAD REQUEST", 401: "401 UNAUTHORIZED",
            403: "403 FORBIDDEN", 404: "404 NOT FOUND", 409: "409 CONFLICT", 410: "410 GONE",
            413: "413 REQUEST ENTITY TOO LARGE", 500: "500 INTERNAL SERVER ERROR"}


class ScanPath:
    """The WSGI application: ``POST {API_PREFIX}scan`` here, everything else to ``inner``."""

    def __init__(self, app: Flask, inner):
        from edge.web.app import SECURITY_HEADERS
        from edge.web.handheld import _STATUS, API_PREFIX

        self.app = app
        self.inner = inner
        self.path = API_PREFIX + "scan"
        self.web = app.extensions["wicket"]
        self.group = app.extensions["handheld_group"]
        self.max_bytes = app.config.get("MAX_CONTENT_LENGTH")
        self.dumps = app.json.dumps  # what jsonify writes: same keys order, same escaping
        self.status = _STATUS
        self.headers = [*SECURITY_HEADERS, ("Cache-Control", "no-store")]

    def __call__(self, environ: dict, start_response):
        if environ.get("PATH_INFO") != self.path or environ.get("REQUEST_METHOD") != "POST":
            return self.inner(environ, start_response)
        extra: list[tuple[str, str]] = []
        try:
            status, answer = 200, self._scan(environ)
        except HandheldError as e:
            status = self.status.get(e.code, 400)
            answer = {"error": e.code, "message": e.message}
            if e.items is not None:
                answer["items"] = e.items
        except RequestEntityTooLarge as e:
            status = 413
            answer = {"error": "request_entity_too_large", "message": e.description}
        except Exception:  # noqa: BLE001 - answered as the Flask API answers an internal error
            log.exception("handheld API: internal error on POST %s", self.path)
            status = 500
            answer = {"error": "internal_error", "message": "the appliance could not handle "
                      "this request; it is in the appliance log"}
        if status == 401:
            extra.append(("WWW-Authenticate", 'Bearer realm="wicket-handheld"'))
        body = (self.dumps(answer) + "\n").encode("utf-8")
        start_response(_REASONS.get(status, f"{status} ERROR"), [
            ("Content-Type", "application/json"), ("Content-Length", str(len(body))),
            *extra, *self.headers])
        return [body]

    def _scan(self, environ: dict) -> dict[str, Any]:
        scheme, _, token = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
        if scheme.lower() != "bearer":
            token = ""
        web = self.web
        handheld = handhelds.authenticate(web.conn(), token.strip())
        req = handhelds.parse_scan(self._body(environ))
        lang = _lang(environ.get("HTTP_ACCEPT_LANGUAGE", ""))
        verdict = handhelds.scan(web.engine(), handheld, req, lang, group=self.group)
        verdict["detail_words"] = ""
        if verdict["detail"]:  # most admissions have none
            with self.app.app_context():
                g.handheld = handheld  # flask_babel forces a locale only where g holds something
                with force_locale(LOCALES[lang]):
                    verdict["detail_words"] = translate(verdict["detail"])
        return verdict

    def _body(self, environ: dict) -> dict:
        """The JSON object the request carries, as Flask's ``get_json(silent=True)`` reads it:
        a JSON content type, at most MAX_CONTENT_LENGTH bytes, else ``bad_json``."""
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if self.max_bytes is not None and length > self.max_bytes:
            raise RequestEntityTooLarge()
        mimetype = environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower()
        body = None
        if mimetype == "application/json" or (mimetype.startswith("application/")
                                              and mimetype.endswith("+json")):
            data = environ["wsgi.input"].read(length) if length > 0 else b""
            try:
                body = self.app.json.loads(data)
            except ValueError:
                body = None
        if not isinstance(body, dict):
            raise HandheldError("bad_json", "the request body must be a JSON object")
        return body


def _lang(header: str) -> str:
    """The first of English and Chinese in Accept-Language, by quality (as the Flask API)."""
    for value, _quality in parse_accept_header(header, LanguageAccept):  # best first
        primary = value.split("-")[0].split("_")[0].lower()
        if primary in ("en", "zh"):
            return primary
    return "en"
