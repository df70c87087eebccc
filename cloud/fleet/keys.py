"""The hub's signing keys: created and published to every venue, activated (the one that signs
codes) once every active appliance has it, retired when no longer trusted.

Each key's private half lives in a key store (``cloud/fleet/signers.py``): made inside the
PKCS#11 token when the hub has one, else wrapped under the key-encryption key; the same calls
here work on both, and a retired key's private half is destroyed."""

from __future__ import annotations

import base64
from datetime import datetime

import sqlalchemy as sa
from cryptography.exceptions import InvalidSignature

from cloud.catalog.tables import venues
from cloud.core.audit import SYSTEM, record
from cloud.core.changes import record_changes
from cloud.core.trust import key_change, signing_keys
from cloud.fleet.appliances import lacking_key
from cloud.fleet.signers import WRAPPED, SigningKeyError, default_store, store_for
from sync.keys import SigningKey
from sync.timeutil import utcnow


def _all_venues(conn: sa.Connection) -> list[int]:
    return [r[0] for r in conn.execute(sa.select(venues.c.id).order_by(venues.c.id))]


def create_key(conn: sa.Connection, now: datetime | None = None, actor: str = SYSTEM) -> int:
    """A new key, published to every venue; it signs nothing until activated."""
    used = {r[0] for r in conn.execute(sa.select(signing_keys.c.key_id))}
    free = [k for k in range(1, 256) if k not in used]
    if not free:
        raise SigningKeyError("no_free_key_id")
    key_id, store = free[0], default_store(conn)
    if store.name == WRAPPED:
        # a lost key-encryption key is never silently replaced while keys are wrapped under it
        wrapped = conn.execute(sa.select(sa.func.count()).where(
            signing_keys.c.wrapped_private.is_not(None))).scalar()
        new = store.generate(key_id, may_create_kek=not wrapped)
    else:
        new = store.generate(key_id)
    conn.execute(sa.insert(signing_keys).values(
        key_id=key_id, public_key=base64.b64encode(new.public_raw).decode("ascii"),
        state="published", created_at=now or utcnow(), store=store.name,
        token_object=new.token_object, wrapped_private=new.wrapped_private))
    row = conn.execute(sa.select(signing_keys).where(signing_keys.c.key_id == key_id)).one()
    record_changes(conn, [(venue_id, key_change(row)) for venue_id in _all_venues(conn)])
    record(conn, actor, "key.create", f"key:{key_id}", None,
           {"state": "published", "store": store.name})
    return key_id


def activate_key(conn: sa.Connection, key_id: int, actor: str = SYSTEM,
                 force: bool = False) -> None:
    """Make a published key the one that signs; the previous one stays trusted.

    Refused while an active appliance has not yet reported the key in a heartbeat (unless
    ``force``): an offline venue must be able to check every code sold. The key must sign
    (its store opens it, and the signature checks against its public key) before it is the one
    every sale depends on."""
    row = conn.execute(sa.select(signing_keys).where(signing_keys.c.key_id == key_id)).first()
    if row is None or row.state != "published":
        raise SigningKeyError("key_not_published", key_id=key_id,
                              state=row.state if row is not None else "unknown")
    lacking = [] if force else lacking_key(conn, key_id)
    if lacking:
        raise SigningKeyError("key_not_reported", key_id=key_id, count=len(lacking),
                              first=lacking[0])
    probe = b"wicket-hub key check"
    signer = store_for(conn, row).signer(row)
    try:
        signer.public_key().verify(signer.sign(probe), probe)
    except InvalidSignature:
        raise SigningKeyError("key_does_not_sign", key_id=key_id) from None
    conn.execute(sa.update(signing_keys).where(signing_keys.c.state == "active")
                 .values(state="published"))
    conn.execute(sa.update(signing_keys).where(signing_keys.c.key_id == key_id)
                 .values(state="active"))
    record(conn, actor, "key.activate", f"key:{key_id}", {"state": "published"},
           {"state": "active"})


def retire_key(conn: sa.Connection, key_id: int, now: datetime | None = None,
               actor: str = SYSTEM) -> None:
    """Stop trusting a key: appliances refuse codes signed with it that their allowlist does not
    list. The active key cannot be retired; activate its successor first. A retired key never
    signs again, so its private half is destroyed: in the token, or its wrapped copy."""
    before = conn.execute(sa.select(signing_keys)
                          .where(signing_keys.c.key_id == key_id)).first()
    if before is None:
        raise SigningKeyError("unknown_key", key_id=key_id)
    state = before.state
    if state == "active":
        raise SigningKeyError("key_is_active", key_id=key_id)
    conn.execute(sa.update(signing_keys).where(signing_keys.c.key_id == key_id)
                 .values(state="retired", retired_at=now or utcnow(), wrapped_private=None))
    row = conn.execute(sa.select(signing_keys).where(signing_keys.c.key_id == key_id)).one()
    record_changes(conn, [(venue_id, key_change(row)) for venue_id in _all_venues(conn)])
    record(conn, actor, "key.retire", f"key:{key_id}", {"state": state}, {"state": "retired"})
    if state != "retired":
        store_for(conn, before).destroy(before)  # last: the row and its audit are written


_ACTIVE = sa.select(signing_keys).where(signing_keys.c.state == "active")


def active_key(conn: sa.Connection) -> SigningKey:
    """The key that signs codes now, as a signer from its store (the private key stays in the
    token, or is unwrapped in memory only)."""
    row = conn.execute(_ACTIVE).first()
    if row is None:
        raise SigningKeyError("no_active_key")
    return SigningKey(row.key_id, store_for(conn, row).signer(row))
