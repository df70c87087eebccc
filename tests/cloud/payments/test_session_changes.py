"""A session changed after it went on sale, through its pages, on both databases: its sale
rules edited (a field that does not read is named, nothing changes), postponed (the tickets
stay valid and are refundable in full until the new start, whatever the policy says), and
cancelled by a supervisor after a confirmation (the worker's bulk refund is queued, the page
shows how far it is)."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import sqlalchemy as sa

from cloud.catalog.tables import sessions, venues
from cloud.core.audit import audit_log
from cloud.core.jobs import jobs
from cloud.inventory.sessions import REFUND_CANCELLED_JOB
from cloud.sales.refunds import policy, set_policy
from cloud.staff import staff as staff_module
from cloud.staff.staff import create_staff
from cloud.staff.tables import staff
from cloud.web.web import form_local
from tests.cloud.pagekit import PASSWORD, _hashed, build_hub, post, sign_in, text


def _session(hub):
    with hub.engine.connect() as conn:
        return conn.execute(sa.select(sessions).where(sessions.c.id == hub.session)).one()


def staff_ids(hub) -> list[int]:
    with hub.engine.connect() as conn:
        return [conn.execute(sa.select(staff.c.id).where(staff.c.username == name)).scalar_one()
                for name in ("sales-user", "ticketing-user")]


def test_a_session_is_edited_postponed_and_cancelled_from_its_pages(hub_url):
    hub = build_hub(hub_url)
    page = f"/sessions/{hub.session}/change"
    with hub.engine.begin() as conn:
        with mock.patch.object(staff_module, "hash_password", _hashed):
            create_staff(conn, "ticketing-user", PASSWORD, "ticketing", actor="test")
        set_policy(conn, hub.session, None, "percent", 10, actor="test")
    clerk = hub.app.test_client()
    sign_in(clerk, "sales-user")
    shown = text(clerk.get(page))
    assert 'id="edit-form"' in shown and 'id="cancel-session"' not in shown

    for data, words in (({"name": "Final", "buyer_limit": "0"}, "Tickets per buyer:"),
                        ({"name": "Final", "sale_opens_at": "soon"}, "Sale opens:"),
                        ({"name": "Final", "payment_minutes": "999999"}, "at most 43200")):
        r = post(clerk, f"/sessions/{hub.session}/edit", data, page=page)
        assert r.status_code == 422 and words in text(r), data
    assert _session(hub).buyer_limit is None
    r = post(clerk, f"/sessions/{hub.session}/edit",
             {"name": "Final (evening)", "buyer_limit": "4", "payment_minutes": "20"}, page=page)
    assert r.status_code == 303
    s = _session(hub)
    assert (s.name, s.buyer_limit, s.holder_limit, s.payment_minutes) == (
        "Final (evening)", 4, None, 20)

    later = (s.starts_at + timedelta(days=7)).replace(second=0, microsecond=0)
    with hub.engine.connect() as conn:
        tz = conn.execute(sa.select(venues.c.timezone).where(venues.c.id == hub.venue)).scalar()
    local = form_local(later, tz)  # the form is on the venue's clock
    refused = post(clerk, f"/sessions/{hub.session}/postpone", {"ends_at": local}, page=page)
    assert refused.status_code == 422 and "Starts: required." in text(refused)
    assert _session(hub).state == "scheduled"
    end = form_local(later + timedelta(hours=3), tz)
    assert post(clerk, f"/sessions/{hub.session}/postpone",
                {"starts_at": local, "ends_at": end}, page=page).status_code == 303
    s = _session(hub)
    assert s.state == "postponed" and s.starts_at == later
    with hub.engine.connect() as conn:
        now, set_ = policy(conn, hub.session), policy(conn, hub.session, effective=False)
    assert (now.postponed, now.fee_kind, now.refundable_until) == (True, "none", s.starts_at)
    assert (set_.postponed, set_.fee_kind, set_.fee_value) == (False, "percent", 10)

    assert clerk.get(f"/sessions/{hub.session}/cancel").status_code == 403
    supervisor = hub.app.test_client()
    sign_in(supervisor, "ticketing-user")
    ask = text(supervisor.get(f"/sessions/{hub.session}/cancel"))
    assert "Yes, cancel the session" in ask and "0 paid orders" in ask
    assert _session(hub).state == "postponed"  # asking changes nothing
    assert post(supervisor, f"/sessions/{hub.session}/cancel",
                page=f"/sessions/{hub.session}/cancel").status_code == 303
    with hub.engine.connect() as conn:
        queued = conn.execute(sa.select(jobs.c.payload).where(
            jobs.c.kind == REFUND_CANCELLED_JOB)).scalars().all()
        actions = conn.execute(sa.select(audit_log.c.action, audit_log.c.actor).where(
            audit_log.c.action.in_(("session.edit", "session.postpone", "session.cancel")))
            .order_by(audit_log.c.id)).all()
    assert queued == [{"session_id": hub.session}]
    clerk_id, supervisor_id = (f"staff:{i}" for i in staff_ids(hub))
    assert [tuple(a) for a in actions] == [
        ("session.edit", clerk_id), ("session.postpone", clerk_id),
        ("session.cancel", supervisor_id)]
    after = text(supervisor.get(page))
    assert 'data-state="cancelled"' in after and 'id="bulk-left"' in after
    assert 'id="edit-form"' not in after
    hub.engine.dispose()
