"""Messaging: the templates staff edited, the send tasks, and the ticket links sent to buyers
(the outbox itself is 0024); the permission ``messages.manage`` given to the system and content
administrators.

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None

WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "message_templates",
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.Column("updated_by", sa.String(80), nullable=False),
        sa.PrimaryKeyConstraint("kind", "language", name="pk_message_templates"),
    )
    op.create_table(
        "send_tasks",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("channel", sa.String(10), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("recipients", sa.Integer, nullable=False),
        sa.Column("created_by", sa.String(80), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_send_tasks"),
    )
    op.create_table(
        "ticket_links",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("ticket_id", sa.BigInteger, nullable=False),
        sa.Column("order_id", sa.Integer, nullable=False),
        sa.Column("message_id", sa.Integer),
        sa.Column("created_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ticket_links"),
        sa.UniqueConstraint("token_hash", name="uq_ticket_links_token_hash"),
    )
    op.create_index("ix_ticket_links_ticket_id", "ticket_links", ["ticket_id"])
    op.create_index("ix_ticket_links_order_id", "ticket_links", ["order_id"])
    # the new permission, for the system administrator and the content administrator (roles
    # that exist: a hub may have removed one)
    for role in ("admin", "content"):
        op.execute(sa.text(
            "INSERT INTO role_permissions (role, permission) SELECT name, 'messages.manage' "
            "FROM roles WHERE name = :role").bindparams(role=role))


def downgrade() -> None:
    op.execute("DELETE FROM role_permissions WHERE permission = 'messages.manage'")
    op.drop_table("ticket_links")
    op.drop_table("send_tasks")
    op.drop_table("message_templates")
