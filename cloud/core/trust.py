"""The hub's signing keys and the change that tells a venue about one."""

from __future__ import annotations

import sqlalchemy as sa

from cloud.core.changes import record_change
from cloud.core.db import UtcDateTime, metadata
from sync.timeutil import to_iso

# Hub signing keys. A new key is 'published' (sent to every venue) before it becomes 'active'
# and signs anything, so no appliance meets a code signed with a key it does not know.
# The private key is never here in clear: ``store`` says where it is (cloud/fleet/signers.py),
# 'token' (a PKCS#11 token; ``token_object`` is its CKA_ID there) or 'wrapped' (encrypted under
# a key-encryption key kept outside the database). A retired key's private half is destroyed.
signing_keys = sa.Table(
    "signing_keys", metadata,
    sa.Column("key_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("public_key", sa.String(64), nullable=False),
    sa.Column("state", sa.String(12), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("retired_at", UtcDateTime()),
    sa.Column("store", sa.String(8), nullable=False),
    sa.Column("token_object", sa.String(64)),
    sa.Column("wrapped_private", sa.LargeBinary),
    sa.CheckConstraint("key_id BETWEEN 1 AND 255", name="key_id_range"),
    sa.CheckConstraint("state IN ('published', 'active', 'retired')", name="state_known"),
    sa.CheckConstraint("store IN ('token', 'wrapped')", name="store_known"),
    sa.CheckConstraint("state = 'retired' OR (store = 'token' AND token_object IS NOT NULL) "
                       "OR (store = 'wrapped' AND wrapped_private IS NOT NULL)",
                       name="private_kept"),
)


def key_change(row) -> dict:
    """The change that tells a venue's appliances about a key (and, once retired, since when
    it is no longer trusted)."""
    change = {"type": "key", "op": "upsert", "key_id": row.key_id, "public_key": row.public_key}
    if row.retired_at is not None:
        change["retired_at"] = to_iso(row.retired_at)
    return change


def publish_keys(conn: sa.Connection, venue_id: int) -> None:
    """Send a new venue every key that is not retired, in the caller's transaction."""
    public = sa.select(signing_keys.c.key_id, signing_keys.c.public_key,
                       signing_keys.c.retired_at)
    for row in conn.execute(public.where(signing_keys.c.state != "retired")):
        record_change(conn, venue_id, key_change(row))
