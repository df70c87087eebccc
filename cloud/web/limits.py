"""Rate limits on the hub's doors: signing in, the staff API's tokens, and appliance
enrollment (Flask-Limiter), counted in the hub's own database so that every gunicorn worker
and every hub machine shares one count.

The limits library keeps its counters in memory, memcached, Redis, MongoDB or etcd, none of
which the hub otherwise runs; an in-memory count would give each worker the whole allowance.
:class:`HubStorage` is a small storage on the database every worker already shares
(``cloud/core/rate_limits.py``: one conditional UPDATE per hit, fixed windows), so there is no
new service to install, secure and back up for a few writes per sign-in. A busy limit (the
API's, hundreds a minute) is taken from the database a block of hits at a time
(:data:`BLOCK_SHARE`), so that counting does not cost every call a write.

A view or blueprint asks for a limit by naming its setting (:func:`limited`); the limits are
settings (``SIGN_IN_LIMIT``, ``API_LIMIT``, ``ENROLL_LIMIT``, in Flask-Limiter's notation,
``;`` between several) counted per client address (behind a proxy, the one TRUSTED_PROXIES
believes). A request over a limit is answered 429 with ``Retry-After``: the JSON shape on the
APIs, a page in the page's language elsewhere; ``RATELIMIT_ENABLED`` False turns them off.
No other answer carries a limit's headers: a sign-in's answer must not differ by what came
before it (tests/cloud/test_pages_auth.py).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from flask import Flask, current_app, jsonify, request
from flask_limiter import Limiter
from flask_limiter.errors import RateLimitExceeded
from flask_limiter.util import get_remote_address
from limits.storage import Storage

from cloud.core import rate_limits

LIMITS = {
    # a person signing in: the password, the code, the enrolment (the lockout guards each
    # account; this keeps one address from trying many accounts)
    "SIGN_IN_LIMIT": "20 per minute;200 per hour",
    # every call of the staff tools' JSON API, each carrying a bearer token
    "API_LIMIT": "600 per minute",
    # trading a one-time token for an appliance credential
    "ENROLL_LIMIT": "20 per hour",
    # a buyer's orders placed on the public site, per client address
    "ORDER_LIMIT": "30 per minute;300 per hour",
    # waiting room (issue 17 §2): entering a session's queue (each entry without a token is a
    # new, later number; the limit keeps one address from taking many), generous for the
    # many phones behind one carrier's address
    "WAITING_ROOM_ENTER_LIMIT": "60 per minute",
}


# A process takes a busy limit's hits from the database a block at a time and counts inside
# its block in memory: one write per block instead of one per call. A limit of 600 a minute
# is taken 12 hits at a time (BLOCK_SHARE of it); limits under 2 * BLOCK_SHARE hits (a
# sign-in's 20 a minute) are counted hit by hit. The cost is exactness in one direction only:
# hits a process has taken but not used count against the address, so with P processes an
# address may be refused up to (block - 1) * P calls early; it is never let through late.
BLOCK_SHARE = 50


def block_size(key: str) -> int:
    """How many hits of the limit named in a limits key (``…/<amount>/<multiples>/<unit>``)
    a process takes at once; 1 (hit by hit) when the key says no amount."""
    parts = key.rsplit("/", 3)
    if len(parts) != 4 or not parts[1].isdigit():
        return 1
    return max(1, int(parts[1]) // BLOCK_SHARE)


@dataclass
class _Lease:
    count: int  # the key's count in the database when the block was taken
    left: int  # hits of the block not yet used
    until: datetime  # the end of the window the block was taken in


class Leases:
    """The blocks of hits this process holds, by key (callers hold the storage's lock)."""

    PRUNE_AT = 10_000

    def __init__(self):
        self._by_key: dict[str, _Lease] = {}

    def take(self, key: str, amount: int, now: datetime) -> int | None:
        """Use ``amount`` hits of the key's block: the count to judge by, or None (no block
        or not enough left in it: take a new one)."""
        held = self._by_key.get(key)
        if held is None or held.until <= now or held.left < amount:
            return None
        held.left -= amount
        return held.count - held.left

    def lease(self, key: str, count: int, left: int, until: datetime, now: datetime) -> int:
        """Keep a block just taken; the count to judge the hit that took it by."""
        if len(self._by_key) >= self.PRUNE_AT:  # forget the blocks of windows that ended
            self._by_key = {k: v for k, v in self._by_key.items() if v.until > now}
        self._by_key[key] = _Lease(count, left, until)
        return count - left


class HubStorage(Storage):
    """Flask-Limiter's counters in the hub's database (fixed windows only)."""

    STORAGE_SCHEME = ["wicket-hub"]

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False,
                 engine: sa.Engine | None = None,
                 clock: Callable[[], datetime] | None = None, **options):
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        if engine is None:
            raise ValueError("the hub's rate-limit storage needs the hub's engine")
        self.engine = engine
        self.clock = clock or (lambda: datetime.now(UTC))
        self._lock = threading.Lock()
        self._leases = Leases()

    @property
    def base_exceptions(self):
        return sa.exc.SQLAlchemyError

    def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        size = block_size(key)
        now = self.clock()
        if size > 1:
            with self._lock:
                counted = self._leases.take(key, amount, now)
            if counted is not None:
                return counted
        with self.engine.begin() as conn:
            rate_limits.without_waiting_for_disk(conn)
            count, until = rate_limits.hit_until(conn, key, timedelta(seconds=expiry), now,
                                                 max(size, amount))
        if size <= 1:
            return count
        with self._lock:
            return self._leases.lease(key, count, max(size, amount) - amount, until, now)

    def get(self, key: str) -> int:
        with self.engine.connect() as conn:
            return rate_limits.count(conn, key, self.clock())[0]

    def get_expiry(self, key: str) -> float:
        with self.engine.connect() as conn:
            ends = rate_limits.count(conn, key, self.clock())[1]
        # as a moment on this machine's clock, which Flask-Limiter turns into Retry-After
        return time.time() + ((ends - self.clock()).total_seconds() if ends else 0.0)

    def check(self) -> bool:
        with self.engine.connect() as conn:
            conn.execute(sa.select(1))
        return True

    def reset(self) -> int | None:
        with self.engine.begin() as conn:
            rate_limits.clear(conn)
        return None

    def clear(self, key: str) -> None:
        with self.engine.begin() as conn:
            rate_limits.clear(conn, key)


def limited(setting: str, methods: tuple[str, ...] | None = ("POST",)):
    """Mark a view (or a blueprint) as limited by the setting ``setting`` (one of
    :data:`LIMITS`) for these methods (None: every method); :func:`init_limits` applies the
    marks."""
    if setting not in LIMITS:
        raise ValueError(f"no rate-limit setting {setting}")

    def mark(target):
        target.wicket_limit = (setting, methods)
        return target
    return mark


def _too_many(_e: RateLimitExceeded):
    from flask_babel import gettext as _

    from cloud.web.http import ApiError
    from cloud.web.web import refusal

    if request.path.startswith("/api/"):
        response = jsonify(ApiError("rate_limited").as_json()), 429
    else:
        response = refusal(429, _("Too many requests"),
                           _("Too many attempts from your address in a short time. Wait a "
                             "little and try again."))
    breached = current_app.extensions["wicket_limiter"].current_limit
    wait = int(breached.reset_at - time.time()) if breached is not None else 60
    return response[0], response[1], {"Retry-After": str(max(1, wait))}


def init_limits(app: Flask, clock: Callable[[], datetime] | None = None) -> Limiter:
    """One limiter per app, on the app's database; applies every :func:`limited` mark of the
    registered views and blueprints."""
    for name, default in LIMITS.items():  # $WICKET_HUB_SIGN_IN_LIMIT, … for `wicket-hub serve`
        app.config.setdefault(name, os.environ.get(f"WICKET_HUB_{name}") or default)
    app.config.setdefault("RATELIMIT_ENABLED", True)
    limiter = Limiter(get_remote_address, app=app, storage_uri="wicket-hub://",
                      storage_options={"engine": app.extensions["db"], "clock": clock},
                      strategy="fixed-window", headers_enabled=False)
    def limit(mark, shared: bool):
        setting, methods = mark
        methods = list(methods) if methods else None
        if shared:  # the views a setting marks share one count per address (a sign-in's steps)
            return limiter.shared_limit(lambda: app.config[setting], scope=setting,
                                        methods=methods)
        return limiter.limit(lambda: app.config[setting], methods=methods)

    for bp in app.blueprints.values():
        if getattr(bp, "wicket_limit", None):
            limit(bp.wicket_limit, shared=False)(bp)
    for endpoint, view in list(app.view_functions.items()):
        if getattr(view, "wicket_limit", None):
            app.view_functions[endpoint] = limit(view.wicket_limit, shared=True)(view)
    app.register_error_handler(RateLimitExceeded, _too_many)
    # the views' limits hold the limiter weakly: the app keeps it (also when turned off)
    app.extensions["wicket_limiter"] = limiter
    return limiter
