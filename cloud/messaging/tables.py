"""The messaging area's tables: the templates staff edited (the built-in ones live in code,
``cloud/messaging/rendering.py``), the send tasks, and the ticket links sent to buyers.

The messages themselves are core's ``outbox`` (``cloud/core/outbox.py``), so that any area can
write one; this area sends them and changes their state through core's functions.
"""

from __future__ import annotations

import sqlalchemy as sa

from cloud.core.db import UtcDateTime, metadata

TASK_STATES = ("sending", "done")

# A template staff changed, per message kind and language; a kind without a row here uses
# its built-in words. ``subject`` is the e-mail's subject and the WeChat card's title.
message_templates = sa.Table(
    "message_templates", metadata,
    sa.Column("kind", sa.String(40), primary_key=True),
    sa.Column("language", sa.String(8), primary_key=True),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.Column("updated_by", sa.String(80), nullable=False),
)

# A message staff wrote to a list of recipients; its messages carry its id (outbox.task_id),
# and its counts are read from them.
send_tasks = sa.Table(
    "send_tasks", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("channel", sa.String(10), nullable=False),
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("recipients", sa.Integer, nullable=False),
    sa.Column("created_by", sa.String(80), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
)

# A link to one ticket, sent to whoever bought it: the token itself is only in the message
# (sealed in the outbox) and the buyer's hands; the hub keeps its SHA-256, so a copy of the
# database opens no ticket.
ticket_links = sa.Table(
    "ticket_links", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("ticket_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("order_id", sa.Integer, nullable=False, index=True),
    sa.Column("message_id", sa.Integer),
    sa.Column("created_at", UtcDateTime(), nullable=False),
)
