"""Handheld pairing from the Devices page (a code shown once, as text and QR; the list; revoke)
and the rate limit on pairing attempts, counted in the database with an injected clock."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from edge import handhelds
from edge.web import devices
from sync.timeutil import utcnow

NOW = utcnow().replace(microsecond=0)


def test_an_admin_makes_a_pairing_code_on_the_devices_page_and_the_handheld_pairs_with_it(
        as_role, app, appliance):
    b = as_role("admin")
    page = b.get("/devices/").data.decode()
    assert 'id="pair-handheld"' in page and "/handheld/" in page
    r = b.post("/devices/handhelds/pair", {"name": "Gate 1 PDA", "lane": ["N1", "N2"]})
    assert r.status_code == 200
    html = r.data.decode()
    code = re.search(r'id="pairing-code">([A-Z2-9]{4}-[A-Z2-9]{4})<', html).group(1)
    # the QR code opens the handheld page with the code in the fragment
    assert str(devices.qr_svg(f"http://localhost/handheld/#code={code}")) in html
    assert r.headers["Cache-Control"] == "no-store"

    paired = app.test_client().post("/api/v1/pair", json={"code": code})
    assert paired.status_code == 201
    device_id = paired.get_json()["device_id"]
    token = paired.get_json()["token"]
    assert [lane["code"] for lane in paired.get_json()["lanes"]] == ["N1", "N2"]
    listed = b.get("/devices/").data.decode()
    row = re.search(rf'<tr data-device="{device_id}">(.*?)</tr>', listed, re.S).group(1)
    assert "Gate 1 PDA" in row and "N1, N2" in row and "paired" in row

    r = b.post(f"/devices/handhelds/{device_id}/revoke")
    assert r.status_code == 303
    api = app.test_client().get("/api/v1/lanes", headers={"Authorization": f"Bearer {token}"})
    assert api.status_code == 401
    assert "revoked" in b.get("/devices/").data.decode()
    actions = [a for (a,) in appliance["conn"].execute(
        "SELECT action FROM audit_log WHERE action LIKE 'handheld.%' ORDER BY id")]
    assert actions == ["handheld.pairing_create", "handheld.pair", "handheld.revoke"]
    assert b.post("/devices/handhelds/hh-nobody/revoke").status_code == 404


def test_a_bad_pairing_form_is_refused_naming_what_is_wrong_and_makes_no_code(as_role, appliance):
    b = as_role("admin")
    for form, words in (({"name": "", "lane": ["N1"]}, "needs a name"),
                        ({"name": "x" * 65}, "needs a name"),
                        ({"name": "PDA", "lane": ["Z9"]}, "No such lane")):
        r = b.post("/devices/handhelds/pair", form)
        assert r.status_code == 400 and words in r.data.decode(), form
    assert appliance["conn"].execute("SELECT count(*) FROM handheld_pairings").fetchone() == (0,)


def test_only_admins_pair_and_revoke(as_role):
    for role in ("gate", "supervisor"):
        b = as_role(role)
        assert b.post("/devices/handhelds/pair", {"name": "PDA"}).status_code == 403
        assert b.post("/devices/handhelds/hh-x/revoke").status_code == 403


def wrong_code(conn, now, client, n=1):
    for _ in range(n):
        with pytest.raises(handhelds.HandheldError) as e:
            handhelds.pair(conn, "ZZZZ-ZZZZ", now=now, client=client)
        assert e.value.code == "bad_code"


def test_pairing_attempts_are_limited_per_address_and_overall(appliance):
    conn = appliance["conn"]
    good = handhelds.create_pairing(conn, "PDA", [], actor="admin", now=NOW).code
    wrong_code(conn, NOW, "10.0.0.7", handhelds.PAIR_FAILURES_PER_CLIENT)
    # the sixth within the minute is refused before the code is even looked at, a right one too
    with pytest.raises(handhelds.TooManyAttempts) as e:
        handhelds.pair(conn, good, now=NOW + timedelta(seconds=20), client="10.0.0.7")
    assert e.value.retry_after == 40
    # another address is not held back by this one
    wrong_code(conn, NOW + timedelta(seconds=20), "10.0.0.8")
    # a minute after the first failures they no longer count
    paired = handhelds.pair(conn, good, now=NOW + timedelta(seconds=61), client="10.0.0.7")
    assert paired.device_id.startswith("hh-")
    # a success does not count; failures from many addresses add up to the overall limit
    later = NOW + timedelta(minutes=5)
    for i in range(handhelds.PAIR_FAILURES_OVERALL):
        wrong_code(conn, later, f"10.1.0.{i}")
    with pytest.raises(handhelds.TooManyAttempts) as e:
        handhelds.pair(conn, "ZZZZ-ZZZZ", now=later + timedelta(seconds=1), client="10.2.0.1")
    assert e.value.retry_after == 59


def test_the_pairing_api_answers_429_with_retry_after_and_the_limit_holds_across_workers(
        appliance, monkeypatch):
    """Two app instances, as two web workers, each with its own connection to the one database:
    the failures counted by one hold back the other."""
    from tests.edge.web.conftest import app_for

    monkeypatch.setattr(handhelds, "utcnow", lambda: NOW)
    first, second = app_for(appliance).test_client(), app_for(appliance).test_client()
    for i in range(handhelds.PAIR_FAILURES_PER_CLIENT):
        r = (first if i % 2 else second).post("/api/v1/pair", json={"code": "ZZZZ-ZZZZ"})
        assert r.status_code == 400 and r.get_json()["error"] == "bad_code"
    r = first.post("/api/v1/pair", json={"code": "ZZZZ-ZZZZ"})
    assert r.status_code == 429
    assert r.get_json()["error"] == "too_many_attempts" and r.headers["Retry-After"] == "60"
    assert second.post("/api/v1/pair", json={"code": "ZZZZ-ZZZZ"}).status_code == 429
