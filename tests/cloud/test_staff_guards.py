"""What guards a staff account besides its sign-in page, on both databases: wrong passwords
and codes counted once each even when they race, a guessed current password counted like a
wrong sign-in, new recovery codes only with a code, and the staff API under the API's rate
limit."""

from __future__ import annotations

import threading

import pyotp
import sqlalchemy as sa

from cloud.core.audit import audit_log
from cloud.staff import totp
from cloud.staff.staff import MAX_FAILURES, count_failure
from cloud.staff.tables import staff
from cloud.staff.tokens import create_token
from sync.timeutil import utcnow
from tests.cloud.pagekit import build_hub, post, text


def _failures(hub, staff_id: int) -> int:
    with hub.engine.connect() as conn:
        return conn.execute(sa.select(staff.c.failed_logins)
                            .where(staff.c.id == staff_id)).scalar_one()


def test_failures_racing_each_count(hub_url):
    hub = build_hub(hub_url)
    who = hub.staff["ops"]
    racers = MAX_FAILURES - 1
    start = threading.Barrier(racers)
    errors = []

    def fail_once():
        try:
            start.wait(30)
            with hub.engine.begin() as conn:
                count_failure(conn, who, utcnow())
        except Exception as e:  # noqa: BLE001 - reported by the assertion below
            errors.append(repr(e))

    threads = [threading.Thread(target=fail_once) for _ in range(racers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == [] and _failures(hub, who) == racers
    with hub.engine.begin() as conn:  # the next one locks the account, and the count restarts
        assert count_failure(conn, who, utcnow())
        row = conn.execute(sa.select(staff).where(staff.c.id == who)).one()
    assert row.failed_logins == 0 and row.locked_until is not None
    hub.engine.dispose()


def test_a_guessed_current_password_counts_towards_the_lockout(hub_url):
    hub = build_hub(hub_url)
    c = hub.client("sales")
    r = post(c, "/staff/me/password", {"current": "not the password",
                                       "password": "Quiet-harbour-lamp-77",
                                       "password_again": "Quiet-harbour-lamp-77"},
             page="/staff/me/password")
    assert r.status_code == 422 and _failures(hub, hub.staff["sales"]) == 1
    hub.engine.dispose()


def test_new_recovery_codes_need_a_code_and_are_audited(hub_url):
    hub = build_hub(hub_url)
    sid = hub.staff["sales"]
    c = hub.client("sales")  # a session, signed in before the second step was set up
    with hub.engine.begin() as conn:
        secret = totp.start_enrolment(conn, sid)
        totp.confirm_enrolment(conn, sid, pyotp.TOTP(secret).now(), actor="test")
    page = "/account/two-step"
    r = post(c, "/account/two-step/recovery-codes", {"code": "000000"}, page=page)
    assert r.status_code == 422 and 'id="recovery-codes"' not in text(r)
    # the enrolment used this step's code: the next step's is good (one step either side)
    code = pyotp.TOTP(secret).at(utcnow().timestamp() + 30)
    r = post(c, "/account/two-step/recovery-codes", {"code": code}, page=page)
    assert r.status_code == 200 and 'id="recovery-codes"' in text(r)
    with hub.engine.connect() as conn:
        actions = conn.execute(sa.select(audit_log.c.action)).scalars().all()
    assert "staff.recovery_codes" in actions
    hub.engine.dispose()


def test_the_staff_api_is_under_the_api_rate_limit(hub_url):
    hub = build_hub(hub_url)
    hub.app.config["API_LIMIT"] = "2 per hour"
    with hub.engine.begin() as conn:
        _, token = create_token(conn, hub.staff["admin"], "tool", actor="test")
    c = hub.app.test_client()
    got = [c.get("/api/v1/staff", headers={"Authorization": f"Bearer {token}"}).status_code
           for _ in range(3)]
    assert got == [200, 200, 429]
    hub.engine.dispose()
