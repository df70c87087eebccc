"""The appliance's HTTP client for the hub's sync API (``/api/sync/v1``).

Every failure is one of four kinds, because the agent reacts to each differently:

* :class:`HubUnavailable` — temporary: no connection, a timeout, a 5xx or 429, a body cut off
  or not the JSON expected. Try again later; nothing is lost.
* :class:`Unauthorized` — 401: the hub no longer knows this appliance (revoked). Stop.
* :class:`CursorExpired` — 410: the cursor is older than the hub's compaction horizon; only a
  snapshot from cursor 0 can catch up.
* :class:`Refused` — any other 4xx: the hub will give the same answer to the same request.

The credential travels only in the ``Authorization: Appliance <credential>`` header and never
appears in a message or a log line.
"""

from __future__ import annotations

import gzip
import json
import logging
import zlib
from dataclasses import dataclass
from typing import Any

import requests
import urllib3

from sync.credentials import check_credential

log = logging.getLogger(__name__)
API = "/api/sync/v1"


class HubError(Exception):
    """Base of the client's errors; ``code`` is the hub's error code where it gave one."""

    def __init__(self, message: str, code: str = "", status: int | None = None):
        super().__init__(message)
        self.code = code
        self.status = status


class HubUnavailable(HubError):
    """Temporary: the hub could not be reached or did not answer properly."""


class Unauthorized(HubError):
    """The hub refused the credential (or the enrollment token)."""


class CursorExpired(HubError):
    """The cursor is older than the hub's horizon; ``horizon`` is the oldest cursor it serves."""

    def __init__(self, message: str, horizon: int):
        super().__init__(message, "cursor_expired", 410)
        self.horizon = horizon


class Refused(HubError):
    """A 4xx other than 401 and 410: the request itself is wrong."""


@dataclass
class Traffic:
    """Bytes on the wire (response bodies as sent, i.e. compressed when gzip was used)."""

    requests: int = 0
    bytes_in: int = 0
    bytes_out: int = 0


class HubClient:
    def __init__(self, hub_url: str, credential: str | None = None, timeout: float = 30.0,
                 session: requests.Session | None = None):
        self.base = hub_url.rstrip("/") + API
        self.credential = credential
        self.timeout = timeout
        self.session = session or requests.Session()
        self.session.headers["Accept-Encoding"] = "gzip"
        self.traffic = Traffic()

    def close(self) -> None:
        self.session.close()

    # -- the calls ---------------------------------------------------------------------------

    def enroll(self, token: str) -> dict[str, Any]:
        body = self._call("POST", "/enroll", json_body={"token": token}, auth=False,
                          expect=("appliance_id", "venue_id", "credential", "keys"))
        return body

    def allowlist(self, since: int, limit: int, progress: bool = False,
                  full: int | None = None) -> dict[str, Any]:
        """``full``: the horizon a sync from cursor 0 started under, sent while it pages
        through the compacted part of the log."""
        params: dict[str, Any] = {"since": since, "limit": limit}
        if full is not None:
            params["full"] = full
        if progress:
            params["progress"] = 1
        return self._call("GET", "/allowlist", params=params,
                          expect=("changes", "cursor", "more"))

    def revocations(self, since: int, full: int | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {"since": since}
        if full is not None:
            params["full"] = full
        return self._call("GET", "/revocations", params=params,
                          expect=("changes", "cursor", "more"))

    def push_entries(self, entries: list[dict[str, Any]]) -> dict[str, Any]:
        return self._call("POST", "/entries", json_body={"entries": entries},
                          expect=("stored", "duplicate", "conflict", "refused"))

    def heartbeat(self, state: dict[str, Any], clock: str, done: list[int] | None = None
                  ) -> dict[str, Any]:
        """``done``: ids of the hub's commands carried out since the hub last heard of it."""
        return self._call("POST", "/heartbeat",
                          json_body={"state": state, "clock": clock, "done": done or []},
                          expect=("server_time", "commands"))

    def roll(self, credential: str | None = None) -> str:
        """A new credential; ``credential`` is one the appliance chose (and kept) itself, and
        must pass :func:`sync.credentials.check_credential` (else ``WeakSecret``, unsent)."""
        if credential:
            check_credential(credential)
        body = {"credential": credential} if credential else {}
        return self._call("POST", "/roll", json_body=body, expect=("credential",))["credential"]

    # -- one request, every failure mapped ---------------------------------------------------

    def _call(self, method: str, path: str, *, params: dict | None = None,
              json_body: dict | None = None, auth: bool = True,
              expect: tuple[str, ...] = ()) -> dict[str, Any]:
        headers = {}
        if auth:
            if not self.credential:
                raise Unauthorized("this appliance has no hub credential; enroll it first",
                                   "unauthorized")
            headers["Authorization"] = f"Appliance {self.credential}"
        data = None
        if json_body is not None:
            data = json.dumps(json_body, separators=(",", ":")).encode("utf-8")
            headers["Content-Type"] = "application/json"
        url = self.base + path
        try:
            r = self.session.request(method, url, params=params, data=data, headers=headers,
                                     timeout=self.timeout, stream=True)
            try:
                raw = r.raw.read(decode_content=False)
                wire = len(raw)
                content = _decode(raw, r.headers.get("Content-Encoding", ""))
                length = r.headers.get("Content-Length")
                if length is not None and int(length) != wire:
                    raise HubUnavailable(f"{method} {path}: the answer was cut off "
                                         f"({wire} of {length} bytes)")
            finally:
                r.close()
        except requests.Timeout:
            raise HubUnavailable(f"{method} {path}: the hub did not answer in time") from None
        except requests.RequestException as e:
            raise HubUnavailable(f"{method} {path}: cannot reach the hub "
                                 f"({type(e).__name__})") from None
        except (OSError, ValueError, EOFError, zlib.error, urllib3.exceptions.HTTPError) as e:
            # a connection reset, a chunk or gzip stream broken off mid-body
            raise HubUnavailable(f"{method} {path}: the answer was broken off "
                                 f"({type(e).__name__})") from None
        self.traffic.requests += 1
        self.traffic.bytes_in += wire
        self.traffic.bytes_out += len(data or b"")
        status = r.status_code
        body = _json(content)
        code = body.get("error", "") if isinstance(body, dict) else ""
        message = body.get("message", "") if isinstance(body, dict) else ""
        if status >= 500 or status == 429:
            raise HubUnavailable(f"{method} {path}: the hub answered {status}", code, status)
        if status == 401:
            raise Unauthorized(f"{method} {path}: the hub refused this appliance "
                               f"({code or 'unauthorized'}: {message})", code, status)
        if status == 410:
            horizon = body.get("horizon", 0) if isinstance(body, dict) else 0
            raise CursorExpired(f"{method} {path}: the cursor is older than the hub keeps "
                                f"(horizon {horizon})", int(horizon or 0))
        if 400 <= status < 500:
            if auth is False and code.startswith("token_"):
                raise Unauthorized(f"enrollment refused: {message or code}", code, status)
            raise Refused(f"{method} {path}: refused ({status} {code}: {message})", code,
                          status)
        if not 200 <= status < 300:
            raise HubUnavailable(f"{method} {path}: unexpected answer {status}", code, status)
        if not isinstance(body, dict) or any(k not in body for k in expect):
            raise HubUnavailable(f"{method} {path}: the answer is not the JSON expected")
        return body


def _decode(raw: bytes, encoding: str) -> bytes:
    if encoding.strip().lower() == "gzip":
        return gzip.decompress(raw)
    return raw


def _json(content: bytes) -> Any:
    try:
        return json.loads(content)
    except (ValueError, UnicodeDecodeError):
        return None
