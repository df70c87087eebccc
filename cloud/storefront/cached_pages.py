"""Rendered public pages kept for a moment, in front of the application: on an on-sale
minute thousands ask for the same session page, and the answer rendered a second ago is as
good as a new one (what is left comes from the availability cache, itself at most a second
old, and a hold is decided by its own conditional UPDATE anyway).

:class:`PageCache` is WSGI middleware around the hub. A view whose page is the same for
everyone who asks (no CSRF token, no buyer's name: the storefront's browsing pages, through
``pages.cached``) marks its answer with the ``X-Wicket-Keep`` header, naming for how many
seconds it may be kept. The middleware keeps such an answer (never one that sets a cookie) by its address (path and query;
the language is in the path) and, while it is fresh, answers a GET for that address itself,
without Flask, the database or the rate limiter: its status, headers and body as they were,
or ``304`` to a client that sends its ETag back. A request carrying a buyer's cookie is
answered the same, which is right because nothing in a kept page is theirs. Only addresses
under ``/shop/`` are looked at; anything unmarked passes through untouched.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from werkzeug.http import parse_etags

KEEP_HEADER = "X-Wicket-Keep"
PREFIX = "/shop/"
MAX_ENTRIES = 2048


@dataclass(frozen=True)
class Kept:
    status: str
    headers: list[tuple[str, str]]
    body: bytes
    etag: str | None
    until: float


def _key(environ: dict[str, Any]) -> str:
    return environ.get("PATH_INFO", "") + "?" + environ.get("QUERY_STRING", "")


class PageCache:
    def __init__(self, app: Callable, clock: Callable[[], float] = time.monotonic):
        self.app, self.clock = app, clock
        self._kept: dict[str, Kept] = {}
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD") or \
                not environ.get("PATH_INFO", "").startswith(PREFIX):
            return self.app(environ, start_response)
        key = _key(environ)
        kept = self._kept.get(key)
        if kept is not None and self.clock() < kept.until:
            return self._serve(kept, environ, start_response)
        return self._pass(key, environ, start_response)

    def _serve(self, kept: Kept, environ: dict[str, Any],
               start_response: Callable) -> Iterable[bytes]:
        asked = environ.get("HTTP_IF_NONE_MATCH")
        if asked and kept.etag and parse_etags(asked).contains_weak(kept.etag):
            start_response("304 NOT MODIFIED", [
                (k, v) for k, v in kept.headers
                if k.lower() in ("etag", "cache-control", "content-language", "vary")])
            return []
        start_response(kept.status, kept.headers)
        return [] if environ.get("REQUEST_METHOD") == "HEAD" else [kept.body]

    def _pass(self, key: str, environ: dict[str, Any],
              start_response: Callable) -> Iterable[bytes]:
        answered: dict[str, Any] = {}

        def capture(status, headers, exc_info=None):
            answered.update(status=status, headers=headers)
            return lambda _data: None

        chunks = self.app(environ, capture)
        try:
            body = b"".join(chunks)
        finally:
            if hasattr(chunks, "close"):
                chunks.close()
        keep = [v for k, v in answered["headers"] if k.lower() == KEEP_HEADER.lower()]
        headers = [(k, v) for k, v in answered["headers"] if k.lower() != KEEP_HEADER.lower()]
        start_response(answered["status"], headers)
        personal = any(k.lower() == "set-cookie" for k, _ in headers)
        if keep and not personal and environ.get("REQUEST_METHOD") == "GET" and \
                answered["status"][:3] in ("200", "404"):
            self._store(key, Kept(answered["status"], headers, body, _etag(headers),
                                  self.clock() + float(keep[0])))
        return [] if environ.get("REQUEST_METHOD") == "HEAD" else [body]

    def _store(self, key: str, kept: Kept) -> None:
        with self._lock:
            if len(self._kept) >= MAX_ENTRIES:
                self._kept.clear()
            self._kept[key] = kept


def _etag(headers: list[tuple[str, str]]) -> str | None:
    for k, v in headers:
        if k.lower() == "etag":
            return parse_etags(v).as_set(include_weak=True).pop() if v else None
    return None
