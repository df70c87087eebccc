"""The hub's signing keys: created and published to every venue, activated (the one that signs
codes) once every active appliance has it, retired when no longer trusted."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization

from cloud.catalog.tables import venues
from cloud.core.audit import SYSTEM, record
from cloud.core.changes import record_change
from cloud.core.errors import Code, HubError
from cloud.core.trust import key_change, signing_keys
from cloud.fleet.appliances import lacking_key
from sync.keys import SigningKey, generate_signing_key
from sync.timeutil import utcnow


class SigningKeyError(HubError):
    codes = {
        "no_free_key_id": Code(409, "all 255 key ids are in use"),
        "unknown_key": Code(404, "no key %(key_id)s"),
        "key_not_published": Code(
            409, "key %(key_id)s is %(state)s; only a published key can sign"),
        "key_not_reported": Code(
            409, "key %(key_id)s: %(count)s active appliance(s) have not yet reported having it "
                 "(appliance %(first)s first); activate it after they have synced"),
        "key_is_active": Code(409, "key %(key_id)s is the active key; activate another one "
                                   "first"),
        "no_active_key": Code(409, "no active signing key: create one and activate it"),
    }


def _all_venues(conn: sa.Connection) -> list[int]:
    return [r[0] for r in conn.execute(sa.select(venues.c.id))]


def create_key(conn: sa.Connection, now: datetime | None = None, actor: str = SYSTEM) -> int:
    """A new key, published to every venue; it signs nothing until activated."""
    used = {r[0] for r in conn.execute(sa.select(signing_keys.c.key_id))}
    free = [k for k in range(1, 256) if k not in used]
    if not free:
        raise SigningKeyError("no_free_key_id")
    key = generate_signing_key(free[0])
    pem = key.private_key.private_bytes(serialization.Encoding.PEM,
                                        serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()).decode("ascii")
    conn.execute(sa.insert(signing_keys).values(
        key_id=key.key_id, public_key=key.public_key_b64(), private_pem=pem, state="published",
        created_at=now or utcnow()))
    row = conn.execute(sa.select(signing_keys).where(signing_keys.c.key_id == key.key_id)).one()
    for venue_id in _all_venues(conn):
        record_change(conn, venue_id, key_change(row))
    record(conn, actor, "key.create", f"key:{key.key_id}", None, {"state": "published"})
    return key.key_id


def activate_key(conn: sa.Connection, key_id: int, actor: str = SYSTEM,
                 force: bool = False) -> None:
    """Make a published key the one that signs; the previous one stays trusted.

    Refused while an active appliance has not yet reported the key in a heartbeat (unless
    ``force``): an offline venue must be able to check every code sold."""
    state = conn.execute(sa.select(signing_keys.c.state)
                         .where(signing_keys.c.key_id == key_id)).scalar()
    if state != "published":
        raise SigningKeyError("key_not_published", key_id=key_id, state=state or "unknown")
    lacking = [] if force else lacking_key(conn, key_id)
    if lacking:
        raise SigningKeyError("key_not_reported", key_id=key_id, count=len(lacking),
                              first=lacking[0])
    conn.execute(sa.update(signing_keys).where(signing_keys.c.state == "active")
                 .values(state="published"))
    conn.execute(sa.update(signing_keys).where(signing_keys.c.key_id == key_id)
                 .values(state="active"))
    record(conn, actor, "key.activate", f"key:{key_id}", {"state": "published"},
           {"state": "active"})


def retire_key(conn: sa.Connection, key_id: int, now: datetime | None = None,
               actor: str = SYSTEM) -> None:
    """Stop trusting a key: appliances refuse codes signed with it that their allowlist does not
    list. The active key cannot be retired; activate its successor first."""
    state = conn.execute(sa.select(signing_keys.c.state)
                         .where(signing_keys.c.key_id == key_id)).scalar()
    if state is None:
        raise SigningKeyError("unknown_key", key_id=key_id)
    if state == "active":
        raise SigningKeyError("key_is_active", key_id=key_id)
    conn.execute(sa.update(signing_keys).where(signing_keys.c.key_id == key_id)
                 .values(state="retired", retired_at=now or utcnow()))
    row = conn.execute(sa.select(signing_keys).where(signing_keys.c.key_id == key_id)).one()
    for venue_id in _all_venues(conn):
        record_change(conn, venue_id, key_change(row))
    record(conn, actor, "key.retire", f"key:{key_id}", {"state": state}, {"state": "retired"})


def active_key(conn: sa.Connection) -> SigningKey:
    row = conn.execute(sa.select(signing_keys.c.key_id, signing_keys.c.private_pem)
                       .where(signing_keys.c.state == "active")).first()
    if row is None:
        raise SigningKeyError("no_active_key")
    private = serialization.load_pem_private_key(row.private_pem.encode("ascii"), password=None)
    return SigningKey(row.key_id, private)
