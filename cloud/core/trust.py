"""The hub's signing keys and the change that tells a venue about one."""

from __future__ import annotations

import sqlalchemy as sa

from cloud.core.db import UtcDateTime, metadata

# Hub signing keys. A new key is 'published' (sent to every venue) before it becomes 'active'
# and signs anything, so no appliance meets a code signed with a key it does not know.
signing_keys = sa.Table(
    "signing_keys", metadata,
    sa.Column("key_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("public_key", sa.String(64), nullable=False),
    sa.Column("private_pem", sa.Text, nullable=False),
    sa.Column("state", sa.String(12), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("retired_at", UtcDateTime()),
    sa.CheckConstraint("key_id BETWEEN 1 AND 255", name="key_id_range"),
    sa.CheckConstraint("state IN ('published', 'active', 'retired')", name="state_known"),
)
