"""Real-name verification: ``identities`` (one row per person: document type and keyed hash
of the number, unique; name and number sealed; the state of its verification and the
service's signed answer) and ``identity_photos`` (the sealed photo of a document sent for
manual review, deleted some days after the decision); the permission to review them, given to
the system administrator and customer service.

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None

WHEN = sa.DateTime(timezone=True)
PERMISSION = "buyers.review_identity"
ROLES = ("admin", "service")


def upgrade() -> None:
    op.create_table(
        "identities",
        sa.Column("id", sa.Integer, nullable=False),
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
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.Column("checked_at", WHEN),
        sa.Column("verified_at", WHEN),
        sa.CheckConstraint(
            "state IN ('pending', 'verified', 'refused', 'unavailable', 'review')",
            name="ck_identities_state_known"),
        sa.CheckConstraint("attempts >= 0 AND names_asked >= 1",
                           name="ck_identities_counts_range"),
        sa.PrimaryKeyConstraint("id", name="pk_identities"),
        sa.UniqueConstraint("doc_type", "doc_hash", name="uq_identities_document"),
    )
    op.create_table(
        "identity_photos",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("identity_id", sa.Integer, nullable=False),
        sa.Column("sealed_photo", sa.Text, nullable=False),
        sa.Column("media_type", sa.String(20), nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("uploaded_at", WHEN, nullable=False),
        sa.Column("decided_at", WHEN),
        sa.ForeignKeyConstraint(["identity_id"], ["identities.id"],
                                name="fk_identity_photos_identity_id_identities"),
        sa.PrimaryKeyConstraint("id", name="pk_identity_photos"),
        sa.UniqueConstraint("identity_id", name="uq_identity_photos_identity_id"),
    )
    op.create_index("ix_identity_photos_decided_at", "identity_photos", ["decided_at"])
    grants = sa.table("role_permissions", sa.column("role"), sa.column("permission"))
    op.bulk_insert(grants, [{"role": r, "permission": PERMISSION} for r in ROLES])


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM role_permissions WHERE permission = :p")
               .bindparams(p=PERMISSION))
    op.drop_table("identity_photos")
    op.drop_table("identities")
