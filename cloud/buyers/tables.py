"""The buyers area's tables: who buys, who they are, and whom they buy for."""

from __future__ import annotations

import sqlalchemy as sa

from cloud.core.db import UtcDateTime, metadata

# -- accounts -----------------------------------------------------------------------------------

BUYER_STATES = ("active", "disabled")
CODE_PURPOSES = ("register", "sign_in", "password_reset")

# A buyer's account. The mobile number (and the e-mail, when given) is sealed under the data key
# and found by its keyed hash (cloud/core/seal.py); the password, once set, is a scrypt hash as
# the staff's. live_companions counts the companions not removed, so that the limit on them is
# one conditional UPDATE of this row (cloud/buyers/companions.py). identity_id is the buyer's
# own verified identity (no foreign key: identities are linked after verification).
buyers = sa.Table(
    "buyers", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("mobile_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("sealed_mobile", sa.Text, nullable=False),
    sa.Column("email_hash", sa.String(64), index=True),
    sa.Column("sealed_email", sa.Text),
    sa.Column("password_hash", sa.String(200)),
    sa.Column("password_changed_at", UtcDateTime()),
    sa.Column("language", sa.String(8), nullable=False, server_default="zh"),
    sa.Column("state", sa.String(10), nullable=False, server_default="active"),
    sa.Column("failed_sign_ins", sa.Integer, nullable=False, server_default="0"),
    sa.Column("locked_until", UtcDateTime()),
    sa.Column("live_companions", sa.Integer, nullable=False, server_default="0"),
    sa.Column("identity_id", sa.Integer),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.CheckConstraint("language IN ('zh', 'en')", name="language_known"),
    sa.CheckConstraint("state IN ('active', 'disabled')", name="state_known"),
    sa.CheckConstraint("failed_sign_ins >= 0", name="failures_not_negative"),
    sa.CheckConstraint("live_companions >= 0", name="companions_not_negative"),
)

# A signed-in buyer's session: the client holds a bearer token, the hub its SHA-256. It ends
# when the buyer ends it, at its expiry, or when the password is reset. The client's address is
# kept masked (its network, not the machine) and the user agent cut short, so that the buyer can
# tell their sessions apart.
buyer_sessions = sa.Table(
    "buyer_sessions", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("buyer_id", sa.Integer, sa.ForeignKey("buyers.id"), nullable=False, index=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("last_seen_at", UtcDateTime(), nullable=False),
    sa.Column("expires_at", UtcDateTime(), nullable=False),
    sa.Column("ended_at", UtcDateTime()),
    sa.Column("user_agent", sa.String(200)),
    sa.Column("address_masked", sa.String(64)),
)

# A one-time code sent by SMS for a purpose, to a number (by its keyed hash: a code to register
# is sent before there is a buyer). Only the code's keyed hash is kept; wrong tries are counted
# on the row, and a code is used once.
buyer_codes = sa.Table(
    "buyer_codes", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("mobile_hash", sa.String(64), nullable=False),
    sa.Column("purpose", sa.String(20), nullable=False),
    sa.Column("code_hash", sa.String(64), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("expires_at", UtcDateTime(), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("used_at", UtcDateTime()),
    sa.CheckConstraint("purpose IN ('register', 'sign_in', 'password_reset')",
                       name="purpose_known"),
    sa.CheckConstraint("attempts >= 0", name="attempts_not_negative"),
    sa.Index("ix_buyer_codes_mobile_purpose", "mobile_hash", "purpose"),
)

# A person a buyer buys tickets for (关联订票人): name and document number sealed, found by the
# keyed hash of the number, as holders are. Removing one only marks it removed: the tickets
# already bought for them stay theirs. identity_id is the companion's verified identity (no
# foreign key: linked after verification).
companions = sa.Table(
    "companions", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("buyer_id", sa.Integer, sa.ForeignKey("buyers.id"), nullable=False, index=True),
    sa.Column("sealed_name", sa.Text, nullable=False),
    sa.Column("doc_type", sa.String(20), nullable=False),
    sa.Column("sealed_doc_number", sa.Text, nullable=False),
    sa.Column("doc_hash", sa.String(64), nullable=False, index=True),
    sa.Column("identity_id", sa.Integer),
    sa.Column("added_at", UtcDateTime(), nullable=False),
    sa.Column("removed_at", UtcDateTime()),
    sa.Index("ix_companions_one_live_per_document", "buyer_id", "doc_hash", unique=True,
             sqlite_where=sa.text("removed_at IS NULL"),
             postgresql_where=sa.text("removed_at IS NULL")),
)

# -- identity: one row per person, verified once and reused by every order ------------------

IDENTITY_STATES = ("pending", "verified", "refused", "unavailable", "review")

# A person is their document: its type and the keyed hash of its normalised number (the data
# key's index subkey, cloud/core/seal.py), unique; the name and the number are sealed for the
# row. ``state``: ``pending`` (a verification job asks the service), ``verified``,
# ``refused`` (``refusal`` says by whom: the service's ``no_match`` or a reviewer's
# ``review``, with ``decision_note``), ``unavailable`` (the service did not answer within its
# attempts; asking again retries) or ``review`` (a document no service checks: a person decides
# from a photo). ``answer_ref`` and ``answer`` keep the service's signed answer as evidence
# (no personal data in it); ``names_asked`` counts the names asked for this document.
identities = sa.Table(
    "identities", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("doc_type", sa.String(20), nullable=False),
    sa.Column("doc_hash", sa.String(64), nullable=False),
    sa.Column("sealed_name", sa.Text, nullable=False),
    sa.Column("sealed_doc_number", sa.Text, nullable=False),
    sa.Column("state", sa.String(12), nullable=False),
    sa.Column("refusal", sa.String(20)),
    sa.Column("provider", sa.String(40)),
    sa.Column("answer_ref", sa.String(120)),
    sa.Column("answer", sa.Text),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("names_asked", sa.Integer, nullable=False, server_default="1"),
    sa.Column("decided_by", sa.String(80)),
    sa.Column("decision_note", sa.Text),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.Column("checked_at", UtcDateTime()),
    sa.Column("verified_at", UtcDateTime()),
    sa.CheckConstraint("state IN ('pending', 'verified', 'refused', 'unavailable', 'review')",
                       name="state_known"),
    sa.CheckConstraint("attempts >= 0 AND names_asked >= 1", name="counts_range"),
    sa.UniqueConstraint("doc_type", "doc_hash", name="uq_identities_document"),
)

# The photo of a document sent for manual review: sealed bytes (the row's id as associated
# data), its checked media type and size; ``decided_at`` starts the retention period after
# which the worker deletes the row.
identity_photos = sa.Table(
    "identity_photos", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("identity_id", sa.Integer, sa.ForeignKey("identities.id"), nullable=False,
              unique=True),
    sa.Column("sealed_photo", sa.Text, nullable=False),
    sa.Column("media_type", sa.String(20), nullable=False),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("uploaded_at", UtcDateTime(), nullable=False),
    sa.Column("decided_at", UtcDateTime(), index=True),
)
