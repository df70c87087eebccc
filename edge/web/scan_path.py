"""``POST /api/v1/scan``, answered in front of Flask.

A handheld's scan is the appliance web's steady traffic, one request per ticket at every
hand-held lane. Through Flask, building the request and response objects, dispatching to the
blueprint and running its hooks cost the server more than deciding the scan. This WSGI layer
answers that one route itself, with the same functions as the Flask view (:mod:`edge.handhelds`
and the helpers of :mod:`edge.web.handheld`) and so the same answers: the verdict as JSON in the
language of ``Accept-Language``, every refusal as ``{"error": code, "message": words}`` with its
status, the same security headers, no cookie. Every other request, and every other method on
this path, goes on to Flask unchanged.

The Flask view ``handheld_api.scan`` stays: it documents the route in the URL map, and it
answers when the application is served without this layer.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from flask import Flask, g
from werkzeug.datastructures import LanguageAccept
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.http import parse_accept_header

from edge import handhelds
from edge.handhelds import HandheldError
from edge.web import handheld as api
from edge.web.context import API_PREFIX, SECURITY_HEADERS

log = logging.getLogger(__name__)


class ScanPath:
    """The WSGI application: ``POST {API_PREFIX}scan`` here, everything else to ``inner``."""

    def __init__(self, app: Flask, inner):
        self.app = app
        self.inner = inner
        self.path = API_PREFIX + "scan"
        self.web = app.extensions["wicket"]
        self.group = app.extensions["handheld_group"]
        self.max_bytes = app.config.get("MAX_CONTENT_LENGTH")
        self.headers = [*SECURITY_HEADERS, ("Cache-Control", "no-store")]

    def __call__(self, environ: dict, start_response):
        if environ.get("PATH_INFO") != self.path or environ.get("REQUEST_METHOD") != "POST":
            return self.inner(environ, start_response)
        try:
            status, answer = 200, self._scan(environ)
        except HandheldError as e:
            status, answer = api.refusal(e)
        except RequestEntityTooLarge as e:
            status, answer = api.http_refusal(e)
        except Exception:  # noqa: BLE001 - answered as the Flask API answers an internal error
            log.exception("handheld API: internal error on POST %s", self.path)
            status, answer = 500, {"error": "internal_error", "message": api.INTERNAL_ERROR}
        body = (self.app.json.dumps(answer) + "\n").encode("utf-8")  # as jsonify writes it
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                   *self.headers]
        if status == 401:
            headers.append(api.CHALLENGE)
        start_response(f"{status} {HTTPStatus(status).phrase.upper()}", headers)
        return [body]

    def _scan(self, environ: dict) -> dict[str, Any]:
        handheld = handhelds.authenticate(
            self.web.conn(), api.bearer_token(environ.get("HTTP_AUTHORIZATION", "")))
        req = handhelds.parse_scan(api.json_object(self._json(environ)))
        lang = api.pick_lang(parse_accept_header(environ.get("HTTP_ACCEPT_LANGUAGE"),
                                                 LanguageAccept))
        verdict = handhelds.scan(self.web.engine(), handheld, req, lang, group=self.group)
        if not verdict["detail"]:  # most admissions: no words to look up
            verdict["detail_words"] = ""
            return verdict
        with self.app.app_context():
            g.handheld = handheld
            return api.with_detail_words([verdict], lang)[0]

    def _json(self, environ: dict) -> Any:
        """The request's JSON as Flask's ``get_json(silent=True)`` reads it: a JSON content
        type and at most MAX_CONTENT_LENGTH bytes; None where there is none to read."""
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if self.max_bytes is not None and length > self.max_bytes:
            raise RequestEntityTooLarge()
        mimetype = environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower()
        if mimetype != "application/json" and not (mimetype.startswith("application/")
                                                   and mimetype.endswith("+json")):
            return None
        try:
            return self.app.json.loads(environ["wsgi.input"].read(length) if length > 0
                                       else b"")
        except ValueError:
            return None
