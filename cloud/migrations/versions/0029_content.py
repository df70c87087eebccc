"""The content back office: content items (announcements, news, FAQ, recommended events), every
saved revision of them, and their images; the permission ``content.publish`` (the second
person who makes a version public) for the system administrator and the content
administrator, who holds ``content.manage`` already.

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None

WHEN = sa.DateTime(timezone=True)
PERMISSION = "content.publish"
ROLES = ("admin", "content")


def upgrade() -> None:
    op.create_table(
        "content_items",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("state", sa.String(10), nullable=False, server_default="draft"),
        sa.Column("current_revision", sa.Integer, nullable=False),
        sa.Column("live_revision", sa.Integer),
        sa.Column("created_by", sa.String(80), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.Column("submitted_by", sa.String(80)),
        sa.Column("submitted_at", WHEN),
        sa.Column("reviewed_by", sa.String(80)),
        sa.Column("reviewed_at", WHEN),
        sa.Column("review_note", sa.String(200)),
        sa.CheckConstraint("kind IN ('announcement', 'news', 'faq', 'event')",
                           name="ck_content_items_kind_known"),
        sa.CheckConstraint("state IN ('draft', 'review', 'published', 'withdrawn', 'deleted')",
                           name="ck_content_items_state_known"),
        sa.CheckConstraint("reviewed_by IS NULL OR submitted_by IS NULL "
                           "OR reviewed_by != submitted_by",
                           name="ck_content_items_reviewer_not_submitter"),
        sa.CheckConstraint("live_revision IS NULL OR live_revision <= current_revision",
                           name="ck_content_items_live_not_ahead"),
        sa.PrimaryKeyConstraint("id", name="pk_content_items"),
    )
    op.create_index("ix_content_items_kind_state", "content_items", ["kind", "state"])
    op.create_table(
        "content_images",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("media_type", sa.String(40), nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("uploaded_by", sa.String(80), nullable=False),
        sa.Column("uploaded_at", WHEN, nullable=False),
        sa.CheckConstraint("media_type IN ('image/jpeg', 'image/png')",
                           name="ck_content_images_media_type_known"),
        sa.PrimaryKeyConstraint("id", name="pk_content_images"),
    )
    op.create_table(
        "content_revisions",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("item_id", sa.Integer, nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("title_zh", sa.String(200), nullable=False, server_default=""),
        sa.Column("title_en", sa.String(200), nullable=False, server_default=""),
        sa.Column("body_zh", sa.Text, nullable=False, server_default=""),
        sa.Column("body_en", sa.Text, nullable=False, server_default=""),
        sa.Column("image_id", sa.Integer),
        sa.Column("event_id", sa.Integer),
        sa.Column("position", sa.Integer, nullable=False, server_default="0"),
        sa.Column("publish_at", WHEN),
        sa.Column("unpublish_at", WHEN),
        sa.Column("author", sa.String(80), nullable=False),
        sa.Column("saved_at", WHEN, nullable=False),
        sa.Column("published_by", sa.String(80)),
        sa.Column("published_at", WHEN),
        sa.ForeignKeyConstraint(["item_id"], ["content_items.id"],
                                name="fk_content_revisions_item_id_content_items"),
        sa.ForeignKeyConstraint(["image_id"], ["content_images.id"],
                                name="fk_content_revisions_image_id_content_images"),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"],
                                name="fk_content_revisions_event_id_events"),
        sa.UniqueConstraint("item_id", "number", name="uq_content_revisions_item_number"),
        sa.CheckConstraint("number >= 1", name="ck_content_revisions_number_positive"),
        sa.CheckConstraint("title_zh != '' OR title_en != ''", name="ck_content_revisions_titled"),
        sa.CheckConstraint("unpublish_at IS NULL OR publish_at IS NULL "
                           "OR unpublish_at > publish_at",
                           name="ck_content_revisions_unpublish_after_publish"),
        sa.CheckConstraint("published_by IS NULL OR published_by != author",
                           name="ck_content_revisions_publisher_not_author"),
        sa.PrimaryKeyConstraint("id", name="pk_content_revisions"),
    )
    role_permissions = sa.table("role_permissions", sa.column("role", sa.String),
                                sa.column("permission", sa.String))
    roles = sa.table("roles", sa.column("name", sa.String))
    present = set(op.get_bind().execute(sa.select(roles.c.name)).scalars())
    rows = [{"role": role, "permission": PERMISSION} for role in ROLES if role in present]
    if rows:
        op.bulk_insert(role_permissions, rows)


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM role_permissions WHERE permission = :p")
               .bindparams(p=PERMISSION))
    op.drop_table("content_revisions")
    op.drop_table("content_images")
    op.drop_index("ix_content_items_kind_state", table_name="content_items")
    op.drop_table("content_items")
