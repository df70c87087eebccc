"""The buyers area's tables: who buys, who they are, and whom they buy for."""

from __future__ import annotations

import sqlalchemy as sa

from cloud.core.db import UtcDateTime, metadata

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
