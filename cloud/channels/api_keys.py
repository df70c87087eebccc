"""A partner's API keys and the check of every signed request (docs/partner-api.md).

- A key belongs to one partner and one of its channels (the partner's sales through the API
  are that channel's), with scopes (cloud/channels/tables.py ``API_SCOPES``) and a limit of
  requests per minute. Its public id travels with every request; its secret is shown once,
  when the key is made, and kept sealed (cloud/core/seal.py): the hub must read it back to
  check a signature, so a hash would not do.
- Rotating a key makes a new one with the same channel, scopes and limit; the old one stays
  good for :data:`OVERLAP` so that a client can switch without a gap. Revoking ends a key at
  once.
- :func:`authenticate` refuses, in this order: headers missing or malformed, an unknown key, a
  revoked or expired key, a suspended partner, a stale timestamp, a wrong signature, a nonce
  already used, a key over its limit (429 with the seconds to wait). The nonce is inserted
  under the table's primary key, so two copies of one request racing each other are one
  accepted and one refused by the database itself.
- Few writes per request: the nonce and the limit's counter in the check's transaction (a
  key's old nonces tidied and its ``last_used_at`` set once per minute, when its counter
  starts a window), and one access-log row per request afterwards.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from datetime import datetime, timedelta
from math import ceil
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from cloud.channels import signing
from cloud.channels.errors import ChannelError
from cloud.channels.tables import API_SCOPES, api_access_log, api_keys, api_nonces, channels
from cloud.core import rate_limits
from cloud.core.audit import record
from cloud.core.db import one_statement
from cloud.core.errors import Code, HubError
from cloud.core.seal import context, keyring_for
from cloud.ledger.tables import partners

OVERLAP = timedelta(hours=24)
MAX_PER_MINUTE = 100_000
DEFAULT_PER_MINUTE = 600
WINDOW = timedelta(minutes=1)
_NAME = re.compile(r"[^\x00-\x1f\x7f]{1,80}")


class ApiKeyError(HubError):
    """A request to the partner API refused before it reaches a rule, or a key that cannot be
    made or changed."""

    codes = {
        "api_request_unsigned": Code(401, "the request lacks the %(header)s header, or it is "
                                          "not in its form"),
        "api_key_unknown": Code(401, "no API key %(key_id)s"),
        "api_key_revoked": Code(401, "API key %(key_id)s was revoked"),
        "api_key_expired": Code(401, "API key %(key_id)s has expired (it was rotated)"),
        "api_request_stale": Code(401, "the request's timestamp is more than %(window)s "
                                       "seconds from the hub's clock"),
        "api_signature_wrong": Code(401, "the request's signature does not match it"),
        "api_request_replayed": Code(401, "this nonce was already used with this key"),
        "api_scope_missing": Code(403, "this key does not have the scope %(scope)s"),
        "api_key_rate_limited": Code(429, "this key made more than %(per_minute)s requests "
                                          "this minute: retry after %(retry_after)s seconds"),
        "bad_api_key_field": Code(400, "%(field)s is not valid for an API key"),
        "no_such_api_key": Code(404, "no API key %(key_id)s of this partner"),
        "api_key_inactive": Code(409, "API key %(key_id)s is revoked or expired already"),
        "api_channel_not_partners": Code(409, "channel %(channel)s is not a channel of this "
                                              "partner"),
    }


def _new_key_id() -> str:
    return "wk_" + secrets.token_hex(10)


def _new_secret() -> str:
    return secrets.token_urlsafe(32)


# -- keys ---------------------------------------------------------------------------------------

def partner_channels(conn: sa.Connection, partner_id: int) -> list[sa.Row]:
    """The partner's channels a key may sell through, by code."""
    return list(conn.execute(
        sa.select(channels.c.id, channels.c.code, channels.c.name, channels.c.kind)
        .where(channels.c.partner_id == partner_id).order_by(channels.c.code)))


def _checked(conn: sa.Connection, partner_id: int, channel_id: object, name: object,
             scopes: object, per_minute: object) -> tuple[str, list[str], int]:
    if not isinstance(name, str) or not _NAME.fullmatch(name.strip()):
        raise ApiKeyError("bad_api_key_field", field="name")
    if not isinstance(scopes, (list, tuple)) or not scopes \
            or any(s not in API_SCOPES for s in scopes):
        raise ApiKeyError("bad_api_key_field", field="scopes")
    if isinstance(per_minute, bool) or not isinstance(per_minute, int) \
            or not 1 <= per_minute <= MAX_PER_MINUTE:
        raise ApiKeyError("bad_api_key_field", field="per_minute")
    if isinstance(channel_id, bool) or not isinstance(channel_id, int):
        raise ApiKeyError("bad_api_key_field", field="channel_id")
    owner = conn.execute(sa.select(channels.c.partner_id)
                         .where(channels.c.id == channel_id)).first()
    if owner is None or owner.partner_id != partner_id:
        raise ApiKeyError("api_channel_not_partners", channel=channel_id)
    return name.strip(), [s for s in API_SCOPES if s in scopes], per_minute


def create_key(conn: sa.Connection, partner_id: int, channel_id: int, name: str,
               scopes: list[str], per_minute: int, actor: str,
               now: datetime) -> tuple[str, str]:
    """A new key of the partner for one of its channels: its public id and its secret, which
    is shown now and never again."""
    name, scopes, per_minute = _checked(conn, partner_id, channel_id, name, scopes,
                                        per_minute)
    return _insert(conn, partner_id, channel_id, name, scopes, per_minute, actor, now)


def _insert(conn: sa.Connection, partner_id: int, channel_id: int, name: str,
            scopes: list[str], per_minute: int, actor: str,
            now: datetime) -> tuple[str, str]:
    key_id, secret = _new_key_id(), _new_secret()
    row_id = conn.execute(sa.insert(api_keys).values(
        partner_id=partner_id, channel_id=channel_id, key_id=key_id, name=name,
        sealed_secret="", scopes=scopes, per_minute=per_minute, state="active",
        created_by=actor, created_at=now).returning(api_keys.c.id)).scalar_one()
    sealed = keyring_for(conn).seal(secret, context("api_keys", row_id, "sealed_secret"))
    conn.execute(sa.update(api_keys).where(api_keys.c.id == row_id)
                 .values(sealed_secret=sealed))
    record(conn, actor, "api_key.create", f"api_key:{key_id}", None,
           {"partner_id": partner_id, "channel_id": channel_id, "name": name,
            "scopes": scopes, "per_minute": per_minute})
    return key_id, secret


def _own_key(conn: sa.Connection, partner_id: int, key_id: object) -> sa.Row:
    row = None
    if isinstance(key_id, str) and len(key_id) <= 40:
        row = conn.execute(sa.select(api_keys).where(api_keys.c.key_id == key_id)).first()
    if row is None or row.partner_id != partner_id:
        raise ApiKeyError("no_such_api_key", key_id=str(key_id)[:40])
    return row


def _live(row: sa.Row, now: datetime) -> bool:
    return row.state == "active" and (row.expires_at is None or row.expires_at > now)


def rotate_key(conn: sa.Connection, partner_id: int, key_id: str, actor: str, now: datetime,
               overlap: timedelta = OVERLAP) -> tuple[str, str]:
    """A new key in place of ``key_id`` (same channel, name, scopes and limit): its id and its
    secret, shown once. The old key stays good until ``now + overlap``."""
    old = _own_key(conn, partner_id, key_id)
    if not _live(old, now):
        raise ApiKeyError("api_key_inactive", key_id=key_id)
    made = _insert(conn, partner_id, old.channel_id, old.name, list(old.scopes),
                   old.per_minute, actor, now)
    ends = now + overlap
    if old.expires_at is None or old.expires_at > ends:
        conn.execute(sa.update(api_keys).where(api_keys.c.id == old.id)
                     .values(expires_at=ends))
        record(conn, actor, "api_key.rotate", f"api_key:{key_id}",
               {"expires_at": old.expires_at.isoformat() if old.expires_at else None},
               {"expires_at": ends.isoformat(), "replaced_by": made[0]})
    return made


def revoke_key(conn: sa.Connection, partner_id: int, key_id: str, actor: str,
               now: datetime) -> None:
    """End a key at once: every request signed with it is refused from now on."""
    row = _own_key(conn, partner_id, key_id)
    if row.state == "revoked":
        raise ApiKeyError("api_key_inactive", key_id=key_id)
    conn.execute(sa.update(api_keys).where(api_keys.c.id == row.id)
                 .values(state="revoked", revoked_at=now))
    record(conn, actor, "api_key.revoke", f"api_key:{key_id}", {"state": row.state},
           {"state": "revoked"})


def shown_state(row: Any, now: datetime) -> str:
    """``active``, ``expiring`` (rotated, good until its ``expires_at``), ``expired`` or
    ``revoked``."""
    if row.state == "revoked":
        return "revoked"
    if row.expires_at is None:
        return "active"
    return "expiring" if row.expires_at > now else "expired"


def list_keys(conn: sa.Connection, partner_id: int, now: datetime) -> list[dict[str, Any]]:
    """The partner's keys, newest first, without their secrets."""
    k = api_keys
    rows = conn.execute(
        sa.select(k.c.key_id, k.c.name, k.c.scopes, k.c.per_minute, k.c.state,
                  k.c.created_by, k.c.created_at, k.c.expires_at, k.c.revoked_at,
                  k.c.last_used_at, channels.c.code.label("channel_code"),
                  channels.c.name.label("channel_name"))
        .join(channels, channels.c.id == k.c.channel_id)
        .where(k.c.partner_id == partner_id).order_by(k.c.id.desc()))
    return [{**r._asdict(), "shown_state": shown_state(r, now)} for r in rows]


def access_log(conn: sa.Connection, partner_id: int, key_id: str,
               limit: int = 100) -> list[sa.Row]:
    """A key's latest requests, newest first."""
    row = _own_key(conn, partner_id, key_id)
    t = api_access_log
    return list(conn.execute(
        sa.select(t.c.at, t.c.method, t.c.path, t.c.status, t.c.ms, t.c.code)
        .where(t.c.api_key_id == row.id).order_by(t.c.id.desc()).limit(limit)))


# -- a request ----------------------------------------------------------------------------------

_FIND = sa.select(
    api_keys.c.id, api_keys.c.key_id, api_keys.c.partner_id, api_keys.c.channel_id,
    api_keys.c.sealed_secret, api_keys.c.scopes, api_keys.c.per_minute, api_keys.c.state,
    api_keys.c.expires_at, partners.c.state.label("partner_state")
).join(partners, partners.c.id == api_keys.c.partner_id).where(
    api_keys.c.key_id == sa.bindparam("key_id"))
_NONCE = sqlite.insert(api_nonces).on_conflict_do_nothing().returning(api_nonces.c.nonce)
# PostgreSQL: the nonce's row, and its transaction told not to wait for the disk, in one
# round trip (cloud/core/rate_limits.py)
_NONCE_NO_WAIT = sa.text(
    "INSERT INTO api_nonces (api_key_id, nonce, seen_at) "
    f"SELECT :api_key_id, :nonce, :seen_at FROM {rate_limits.WITHOUT_WAITING} "
    "ON CONFLICT DO NOTHING RETURNING nonce"
).bindparams(sa.bindparam("seen_at", type_=api_nonces.c.seen_at.type))
_LOG = sa.insert(api_access_log)
# the same, for the statement's own transaction (autocommit)
_LOG_NO_WAIT = sa.text(
    "INSERT INTO api_access_log (api_key_id, at, method, path, status, ms, code) "
    "SELECT :api_key_id, :at, :method, :path, :status, :ms, :code "
    f"FROM {rate_limits.WITHOUT_WAITING}"
).bindparams(sa.bindparam("at", type_=api_access_log.c.at.type))


def find_key(conn: sa.Connection, headers: Mapping[str, str]) -> sa.Row:
    """The key a request names, if its headers are in their form and the key exists (known
    from here on: its refusals go to its access log)."""
    bad = signing.malformed_header(headers)
    if bad is not None:
        raise ApiKeyError("api_request_unsigned", header=bad)
    key_id = headers[signing.KEY_HEADER]
    row = conn.execute(_FIND, {"key_id": key_id}).first()
    if row is None:
        raise ApiKeyError("api_key_unknown", key_id=key_id)
    return row


def usable(row: sa.Row, now: datetime) -> None:
    """Refuse a revoked or expired key, and the key of a suspended partner."""
    key_id = row.key_id
    if row.state == "revoked":
        raise ApiKeyError("api_key_revoked", key_id=key_id)
    if row.expires_at is not None and row.expires_at <= now:
        raise ApiKeyError("api_key_expired", key_id=key_id)
    if row.partner_state != "active":
        raise ChannelError("partner_suspended", partner_id=row.partner_id)


def check_request(conn: sa.Connection, key: sa.Row, method: str, path: str,
                  headers: Mapping[str, str], body: bytes, now: datetime) -> None:
    """The request's moment, signature and nonce checked, and counted against the key's limit
    (in the caller's transaction: a refusal rolls the nonce and the count back)."""
    stamp, nonce = headers[signing.TIMESTAMP_HEADER], headers[signing.NONCE_HEADER]
    if not signing.fresh(stamp, now):
        raise ApiKeyError("api_request_stale", window=signing.WINDOW_S)
    secret = keyring_for(conn).open(key.sealed_secret,
                                    context("api_keys", key.id, "sealed_secret"))
    if not signing.signature_matches(secret, method, path, stamp, nonce, body,
                                     headers[signing.SIGNATURE_HEADER]):
        raise ApiKeyError("api_signature_wrong")
    # the work that follows commits to disk: this transaction need not wait for it
    fresh_nonce = conn.execute(
        _NONCE_NO_WAIT if conn.dialect.name == "postgresql" else _NONCE,
        {"api_key_id": key.id, "nonce": nonce, "seen_at": now}).first()
    if fresh_nonce is None:
        raise ApiKeyError("api_request_replayed")
    hits, until = rate_limits.hit_until(conn, f"api_key:{key.id}", WINDOW, now)
    if hits > key.per_minute:
        wait = max(1, ceil((until - now).total_seconds()))
        raise ApiKeyError("api_key_rate_limited", per_minute=key.per_minute,
                          retry_after=wait)
    if hits == 1:  # the key's minute begins: its stale nonces go, its use is noted
        conn.execute(sa.delete(api_nonces).where(
            api_nonces.c.api_key_id == key.id,
            api_nonces.c.seen_at < now - timedelta(seconds=signing.KEEP_NONCES_S)))
        conn.execute(sa.update(api_keys).where(api_keys.c.id == key.id)
                     .values(last_used_at=now))


def authenticate(conn: sa.Connection, method: str, path: str, headers: Mapping[str, str],
                 body: bytes, now: datetime) -> sa.Row:
    """The key that signed this request, or the first refusal (see the module)."""
    key = find_key(conn, headers)
    usable(key, now)
    check_request(conn, key, method, path, headers, body, now)
    return key


def require_scope(key: Any, scope: str) -> None:
    if scope not in API_SCOPES:
        raise ValueError(f"unknown scope {scope!r}: name it in cloud/channels/tables.py")
    if scope not in (key.scopes or ()):
        raise ApiKeyError("api_scope_missing", scope=scope)


def log_access(engine: sa.Engine, api_key_id: int, method: str, path: str, status: int,
               ms: int, code: str | None, now: datetime) -> None:
    """One row of the key's access log, in a transaction of its own whose commit does not
    wait for the disk (a log row is not a record anyone relies on). On PostgreSQL that
    transaction is the statement's own, which turns the waiting off itself: one round trip
    where a transaction of its own with ``SET LOCAL`` took four, on every call of the API."""
    values = {"api_key_id": api_key_id, "at": now, "method": method[:8], "path": path[:200],
              "status": status, "ms": max(0, min(ms, 2**31 - 1)),
              "code": code[:40] if code else None}
    with one_statement(engine) as conn:
        conn.execute(_LOG_NO_WAIT if conn.dialect.name == "postgresql" else _LOG, values)


def tidy_nonces(conn: sa.Connection, now: datetime) -> int:
    """Every key's nonces past keeping (each key's are also tidied as it is used); how many
    went."""
    return conn.execute(sa.delete(api_nonces).where(
        api_nonces.c.seen_at < now - timedelta(seconds=signing.KEEP_NONCES_S))).rowcount
