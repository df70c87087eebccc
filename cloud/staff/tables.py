"""Staff accounts, their roles and what each role may do, their API tokens and their page
sessions."""

from __future__ import annotations

import sqlalchemy as sa

from cloud.core.db import UtcDateTime, metadata

# A role is data: its key (what accounts and tokens name), its title in the pages' two
# languages, whether its accounts must sign in with a second step, and whether the hub made it
# (migration 0019 seeds the roles of the seeds); position orders lists and token scopes.
roles = sa.Table(
    "roles", metadata,
    sa.Column("name", sa.String(10), primary_key=True),
    sa.Column("title_en", sa.String(80), nullable=False),
    sa.Column("title_zh", sa.String(80), nullable=False),
    sa.Column("totp_required", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("built_in", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("position", sa.Integer, nullable=False, server_default="0"),
)


# What each role may do: one row per permission named in cloud/staff/permissions.py.
role_permissions = sa.Table(
    "role_permissions", metadata,
    sa.Column("role", sa.String(10), sa.ForeignKey("roles.name"), primary_key=True),
    sa.Column("permission", sa.String(40), primary_key=True),
)


staff = sa.Table(
    "staff", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("username", sa.String(80), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(200), nullable=False),
    sa.Column("role", sa.String(10), sa.ForeignKey("roles.name"), nullable=False),
    sa.Column("failed_logins", sa.Integer, nullable=False, server_default="0"),
    sa.Column("locked_until", UtcDateTime()),
    sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("last_sign_in_at", UtcDateTime()),
    sa.Column("last_sign_in_from", sa.String(64)),
    # when its holder last chose the password (None: set by someone else, to be changed)
    sa.Column("password_changed_at", UtcDateTime()),
)


# API tokens act with their staff member's role, or with the roles they are scoped to (a
# comma-separated subset of what the owner's role admits); only their SHA-256 is kept.
api_tokens = sa.Table(
    "api_tokens", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("staff_id", sa.Integer, sa.ForeignKey("staff.id"), nullable=False),
    sa.Column("name", sa.String(80), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("revoked_at", UtcDateTime()),
    sa.Column("roles", sa.String(80)),
    sa.Column("expires_at", UtcDateTime()),
)


# A signed-in staff member's page session: the browser holds a random token, the hub its
# SHA-256. It ends on logout, after an idle spell or at its absolute lifetime.
staff_sessions = sa.Table(
    "staff_sessions", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("staff_id", sa.Integer, sa.ForeignKey("staff.id"), nullable=False, index=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("last_seen_at", UtcDateTime(), nullable=False),
    sa.Column("ended_at", UtcDateTime()),
)


# The last hashes of each account's passwords, newest first by id, for the policy's reuse
# limit (sync/passwords.py): only as many as the hub's setting keeps.
password_history = sa.Table(
    "password_history", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("staff_id", sa.Integer, sa.ForeignKey("staff.id"), nullable=False, index=True),
    sa.Column("password_hash", sa.String(200), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
)


# A staff member's TOTP (RFC 6238) secret: usable once confirmed with a first code. last_step
# is the newest time step a code was accepted for, so no code is accepted twice.
staff_totp = sa.Table(
    "staff_totp", metadata,
    sa.Column("staff_id", sa.Integer, sa.ForeignKey("staff.id"), primary_key=True,
              autoincrement=False),
    sa.Column("secret", sa.String(200), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("confirmed_at", UtcDateTime()),
    sa.Column("last_step", sa.BigInteger),
)


# One-time recovery codes for a lost authenticator: only their SHA-256, each usable once.
recovery_codes = sa.Table(
    "recovery_codes", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("staff_id", sa.Integer, sa.ForeignKey("staff.id"), nullable=False, index=True),
    sa.Column("code_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("used_at", UtcDateTime()),
)
