"""Conflicts found among the entries appliances report, for ops."""

from __future__ import annotations

import sqlalchemy as sa
from flask import render_template

from cloud.ops.tables import conflicts
from cloud.sales.tables import tickets
from cloud.web.web import engine, page_blueprint, permission

bp = page_blueprint("conflicts", "/conflicts")


@bp.get("")
@permission("conflicts.resolve")
def index():
    with engine().connect() as conn:
        rows = conn.execute(
            sa.select(conflicts, tickets.c.number)
            .outerjoin(tickets, tickets.c.id == conflicts.c.ticket_id)
            .order_by(conflicts.c.id.desc()).limit(500)).all()
    return render_template("ops/all_conflicts.html", conflicts=rows)
