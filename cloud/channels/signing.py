"""How a partner signs a request to the partner API, and how the hub checks it: pure
functions, no database (docs/partner-api.md).

A request carries four headers: ``X-Wicket-Key`` (the key's public id), ``X-Wicket-Timestamp``
(whole seconds since 1970 UTC), ``X-Wicket-Nonce`` (16 to 64 letters, digits, ``-`` or
``_``, never used twice with the key) and ``X-Wicket-Signature``: the lowercase hex
HMAC-SHA256, under the key's secret, of the canonical string::

    WICKET-HMAC-SHA256
    <METHOD>
    <path, with ?query exactly as sent, if any>
    <timestamp>
    <nonce>
    <lowercase hex SHA-256 of the body bytes (of nothing for a request without one)>

joined by ``\\n``, with no newline at the end. The method, the path and query, the moment and
the body are all signed: none can be changed in flight. A request more than
:data:`WINDOW_S` seconds away from the hub's clock is stale; within that window the nonce
makes each request good once (the caller keeps the nonces for :data:`KEEP_NONCES_S`).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import datetime

SCHEME = "WICKET-HMAC-SHA256"
WINDOW_S = 300
# a nonce may be replayed only while its timestamp is fresh: accepted at most WINDOW_S after
# the timestamp, which was at most WINDOW_S ahead of the moment it was first seen
KEEP_NONCES_S = 2 * WINDOW_S
KEY_HEADER = "X-Wicket-Key"
TIMESTAMP_HEADER = "X-Wicket-Timestamp"
NONCE_HEADER = "X-Wicket-Nonce"
SIGNATURE_HEADER = "X-Wicket-Signature"
HEADERS = (KEY_HEADER, TIMESTAMP_HEADER, NONCE_HEADER, SIGNATURE_HEADER)

_NONCE = re.compile(r"[A-Za-z0-9_-]{16,64}")
_KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,40}")
_SIGNATURE = re.compile(r"[0-9a-f]{64}")
_TIMESTAMP = re.compile(r"[0-9]{1,12}")


def body_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def canonical(method: str, path: str, timestamp: str, nonce: str, body: bytes) -> str:
    """The string a request's signature is made over."""
    return "\n".join((SCHEME, method.upper(), path, timestamp, nonce, body_digest(body)))


def sign(secret: str, method: str, path: str, timestamp: str, nonce: str,
         body: bytes) -> str:
    """The lowercase hex signature of a request under ``secret``."""
    return hmac.new(secret.encode("utf-8"), canonical(method, path, timestamp, nonce,
                                                      body).encode("utf-8"),
                    hashlib.sha256).hexdigest()


def signature_matches(secret: str, method: str, path: str, timestamp: str, nonce: str,
                      body: bytes, signature: str) -> bool:
    """Whether ``signature`` is the request's, compared in constant time."""
    expected = sign(secret, method, path, timestamp, nonce, body)
    return hmac.compare_digest(expected.encode("ascii"), signature.encode("ascii", "replace"))


def fresh(timestamp: str, now: datetime, window_s: int = WINDOW_S) -> bool:
    """Whether the request's moment is within ``window_s`` of the hub's clock, either way."""
    return abs(int(timestamp) - now.timestamp()) <= window_s


def malformed_header(headers) -> str | None:
    """The first of the four headers missing or not in its form (None when all are well
    formed); ``headers`` is any mapping with ``get``."""
    forms = {KEY_HEADER: _KEY_ID, TIMESTAMP_HEADER: _TIMESTAMP, NONCE_HEADER: _NONCE,
             SIGNATURE_HEADER: _SIGNATURE}
    for name in HEADERS:
        value = headers.get(name)
        if not isinstance(value, str) or not forms[name].fullmatch(value):
            return name
    return None


def signed_headers(key_id: str, secret: str, method: str, path: str, body: bytes,
                   timestamp: int, nonce: str) -> dict[str, str]:
    """The four headers a client sends (for the hub's own tests, the benchmark and the
    documentation's example)."""
    stamp = str(int(timestamp))
    return {KEY_HEADER: key_id, TIMESTAMP_HEADER: stamp, NONCE_HEADER: nonce,
            SIGNATURE_HEADER: sign(secret, method, path, stamp, nonce, body)}
