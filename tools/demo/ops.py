"""The demo hub's operations set-up, as an ops user makes it on the Alerts and Wall display
pages: the refused-scan alert set above what the demo's own script refuses, and a
wall-display link."""

from __future__ import annotations

import hashlib
import secrets

import sqlalchemy as sa

# The refused-scan ratio at which the demo's hub raises an alert: its own script refuses
# about a third of the scans at Gate 1 (a repeat, a forgery, the refund, an RFID re-tap), which
# must not keep an alert red; a gate refusing most of its scans still raises one
DEMO_REFUSED_RATIO = 50.0


def ops_setup(engine: sa.Engine) -> str:
    """Set the alert rule and make the wall-display link; the link's token (shown in the
    banner only: the hub keeps its hash)."""
    from cloud.core.audit import record
    from cloud.ops import alerts
    from cloud.ops.tables import display_links
    from sync.timeutil import utcnow

    token = secrets.token_urlsafe(32)
    with engine.begin() as conn:
        rule = alerts.get_rules(conn)["refused_ratio"]
        alerts.set_rule(conn, "refused_ratio", DEMO_REFUSED_RATIO, rule.window_min, True,
                        actor="demo")
        link_id = conn.execute(sa.insert(display_links).values(
            name="Demo wall", token_hash=hashlib.sha256(token.encode()).hexdigest(),
            created_by="demo", created_at=utcnow())).inserted_primary_key[0]
        record(conn, "demo", "display_link.create", f"display_link:{link_id}", None,
               {"name": "Demo wall"})
    return token
