"""The start page: what the hub holds, counted across the areas. Like ``app.py`` it sits above
the areas and reads them; no area imports it."""

from __future__ import annotations

import sqlalchemy as sa
from flask import render_template

from cloud.catalog.tables import sessions, venues
from cloud.fleet.tables import appliances
from cloud.ops.tables import conflicts
from cloud.web.web import engine, page_blueprint, signed_in

bp = page_blueprint("home")


@bp.get("/")
@signed_in
def home():
    with engine().connect() as conn:
        counts = {
            "venues": conn.execute(sa.select(sa.func.count()).select_from(venues)).scalar(),
            "sessions": conn.execute(sa.select(sa.func.count()).select_from(sessions)).scalar(),
            "appliances": conn.execute(sa.select(sa.func.count()).select_from(appliances)
                                       .where(appliances.c.state == "active")).scalar(),
            "conflicts": conn.execute(sa.select(sa.func.count()).select_from(conflicts)
                                      .where(conflicts.c.reviewed_at.is_(None))).scalar(),
        }
    return render_template("home.html", counts=counts)
