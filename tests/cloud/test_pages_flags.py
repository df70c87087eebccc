"""The risk flag pages and JSON API, on both databases: staff with ``buyers.flag`` list, add
(a holder by document, a buyer) and lift flags after a confirmation, every change audited and
the holder only ever masked; a bad form names its field; the API does the same with
Idempotency-Key and answers a bad body with a 400 naming the field; the pages speak Chinese."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from cloud.core.audit import audit_log
from cloud.sales.tables import risk_flags
from cloud.staff.staff import create_staff
from cloud.staff.tokens import create_token
from sync.sample import resident_id
from tests.cloud.pagekit import PASSWORD, build_hub, csrf, post, text

ANNA = resident_id("11010119900307123")
MASKED = ANNA[:4] + "*" * 10 + ANNA[-4:]


@pytest.fixture
def hub(hub_url):
    h = build_hub(hub_url)
    with h.engine.begin() as conn:
        h.staff["ticketing"] = create_staff(conn, "ticketing-user", PASSWORD, "ticketing",
                                            actor="test")
    yield h
    h.engine.dispose()


def add(client, **form):
    return post(client, "/flags", {"target": "holder", "doc_type": "resident_id",
                                   "blocks": "entry", "reason": "banned for a fight", **form},
                page="/flags/new")


def test_staff_flag_a_holder_see_it_masked_and_lift_it_after_confirming(hub):
    staff = hub.client("ticketing")
    for role in ("sales", "ops"):
        assert hub.client(role).get("/flags").status_code == 403
        assert "/flags" not in text(hub.client(role).get("/"))
    assert 'href="/flags"' in text(staff.get("/"))
    made = add(staff, doc_number=ANNA)
    assert made.status_code == 303 and ANNA not in made.headers["Location"]
    flag_page = text(staff.get(made.headers["Location"]))
    assert MASKED in flag_page and ANNA not in flag_page
    listed = text(staff.get("/flags"))
    assert MASKED in listed and ANNA not in listed and "banned for a fight" in listed
    fid = int(made.headers["Location"].rsplit("/", 1)[1])
    confirm = text(staff.get(f"/flags/{fid}/lift"))
    assert 'id="confirm-lift"' in confirm
    with hub.engine.connect() as conn:  # nothing happens before the confirmation is sent
        assert conn.execute(sa.select(risk_flags.c.lifted_at)).scalar() is None
    lifted = post(staff, f"/flags/{fid}/lift", {"reason": "appeal granted"},
                  page=f"/flags/{fid}/lift")
    assert lifted.status_code == 303
    assert 'id="flag-state">lifted' in text(staff.get(f"/flags/{fid}"))
    assert MASKED not in text(staff.get("/flags"))  # live flags only, by default
    assert MASKED in text(staff.get("/flags?state=all&blocks=entry&target=holder"))
    again = post(staff, f"/flags/{fid}/lift", {"reason": "again"}, page=f"/flags/{fid}")
    assert "is lifted already" in text(staff.get(again.headers["Location"]))
    with hub.engine.connect() as conn:
        rows = conn.execute(sa.select(audit_log.c.action, audit_log.c.actor, audit_log.c.after)
                            .where(audit_log.c.subject == f"risk_flag:{fid}")
                            .order_by(audit_log.c.id)).all()
    who = f"staff:{hub.staff['ticketing']}"
    assert [(r.action, r.actor) for r in rows] == [("flag.add", who), ("flag.lift", who)]
    assert rows[0].after["doc"] == MASKED
    assert hub.client("ticketing").get("/flags/999").status_code == 404
    assert staff.get("/flags?state=sleeping").status_code == 400


def test_a_bad_form_is_refused_naming_its_field_and_keeping_nothing(hub):
    staff = hub.client("admin")
    cases = [({"doc_number": ANNA[:-1] + "0"}, "check digit"),
             ({"target": "buyer", "buyer": "someone", "blocks": "buy"}, "buyer:&lt;id&gt;"),
             ({"target": "buyer", "buyer": "7"}, "entry flag names a holder"),
             ({"doc_number": ANNA, "reason": " "}, "say why"),
             ({"doc_number": ANNA, "expires_at": "tomorrow"}, "Give a date and time"),
             ({"doc_number": ANNA, "expires_at": "2001-01-01T00:00"}, "expiry must be ahead")]
    for form, words in cases:
        r = add(staff, **form)
        assert r.status_code == 422 and words in text(r), form
        assert 'class="field-error"' in text(r) and ANNA not in text(r)
    made = add(staff, target="buyer", buyer="7", blocks="buy")  # the id alone will do
    assert made.status_code == 303
    with hub.engine.connect() as conn:
        assert conn.execute(sa.select(risk_flags.c.buyer)).scalars().all() == ["buyer:7"]


def test_the_pages_speak_chinese(hub):
    staff = hub.client("admin")
    staff.post("/lang", data={"lang": "zh", "next": "/", "csrf_token": csrf(staff, "/flags")})
    assert "风险标记" in text(staff.get("/flags"))
    assert "新建标记" in text(staff.get("/flags/new"))
    r = add(staff, doc_number=ANNA, reason="")
    assert "请说明原因" in text(r)


def _token(hub, role):
    with hub.engine.begin() as conn:
        return {"Authorization": f"Bearer {create_token(conn, hub.staff[role], 't', 'test')[1]}"}


def test_the_api_adds_finds_lists_and_lifts_with_idempotency_keys(hub):
    client, auth = hub.app.test_client(), _token(hub, "admin")
    assert client.get("/api/v1/flags", headers=_token(hub, "sales")).status_code == 403
    body = {"blocks": "refunds", "reason": "chargebacks",
            "holder": {"doc_type": "resident_id", "doc_number": ANNA},
            "expires_at": "2099-01-01T00:00:00+08:00"}
    first = client.post("/api/v1/flags", json=body,
                        headers={**auth, "Idempotency-Key": "f-1"})
    again = client.post("/api/v1/flags", json=body,
                        headers={**auth, "Idempotency-Key": "f-1"})
    assert first.status_code == again.status_code == 201
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert first.get_data() == again.get_data()
    made = first.get_json()
    assert made["holder"] == {"doc_type": "resident_id", "doc_number": MASKED}
    assert (made["state"], made["expires_at"]) == ("live", "2098-12-31T16:00:00.000000Z")
    assert ANNA not in first.get_data(as_text=True)
    buyer = client.post("/api/v1/flags", json={"blocks": "buy", "reason": "bots",
                                               "buyer": "buyer:42"}, headers=auth).get_json()
    listed = client.get("/api/v1/flags?blocks=buy", headers=auth).get_json()["flags"]
    assert [f["id"] for f in listed] == [buyer["id"]]
    assert [f["id"] for f in client.get("/api/v1/flags?buyer=buyer:42", headers=auth)
            .get_json()["flags"]] == [buyer["id"]]
    found = client.post("/api/v1/flags/find", headers=auth, json={
        "doc_type": "resident_id", "doc_number": ANNA.lower()}).get_json()["flags"]
    assert [f["id"] for f in found] == [made["id"]]
    lifted = client.post(f"/api/v1/flags/{made['id']}/lift", json={"reason": "settled"},
                         headers={**auth, "Idempotency-Key": "l-1"})
    assert lifted.status_code == 200 and lifted.get_json()["state"] == "lifted"
    late = client.post(f"/api/v1/flags/{made['id']}/lift", json={"reason": "settled"},
                       headers={**auth, "Idempotency-Key": "l-2"})
    assert (late.status_code, late.get_json()["error"]) == (409, "flag_not_live")
    assert client.get("/api/v1/flags/999", headers=auth).status_code == 404
    with hub.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(risk_flags)).scalar() == 2


@pytest.mark.parametrize("body, status, code, field", [
    ({"reason": "x", "buyer": "buyer:1"}, 400, "bad_request", "blocks"),
    ({"blocks": "buy", "buyer": "buyer:1"}, 400, "bad_request", "reason"),
    ({"blocks": "buy", "reason": "x", "buyer": 7}, 400, "bad_request", "buyer"),
    ({"blocks": "buy", "reason": "x", "holder": "110101"}, 400, "bad_request", "holder"),
    ({"blocks": "buy", "reason": "x", "holder": {"doc_type": "resident_id"}}, 400,
     "bad_request", "doc_number"),
    ({"blocks": "buy", "reason": "x", "buyer": "buyer:1", "expires_at": "soon"}, 400,
     "bad_request", "expires_at"),
    ({"blocks": "buy", "reason": "x", "buyer": "buyer:1", "expires_at": "2099-01-01T00:00"},
     400, "bad_request", "expires_at"),
    ({"blocks": "nap", "reason": "x", "buyer": "buyer:1"}, 422, "flag_blocks_unknown",
     "blocks"),
    ({"blocks": "buy", "reason": "x", "buyer": "me"}, 422, "flag_buyer_bad", "buyer"),
    ({"blocks": "entry", "reason": "x", "buyer": "buyer:1"}, 422, "flag_entry_needs_holder",
     "target"),
    ({"blocks": "buy", "reason": "x", "holder": {"doc_type": "resident_id",
                                                 "doc_number": "123"}}, 422,
     "document_bad_length", "doc_number"),
    ({"blocks": "buy", "reason": "x", "buyer": "buyer:1",
      "expires_at": "2001-01-01T00:00:00Z"}, 422, "flag_expiry_past", "expires_at"),
])
def test_the_api_names_the_field_of_a_bad_request(hub, body, status, code, field):
    client, auth = hub.app.test_client(), _token(hub, "admin")
    r = client.post("/api/v1/flags", json=body, headers=auth)
    answer = r.get_json()
    assert (r.status_code, answer["error"], answer["params"].get("field")) == (status, code,
                                                                                field)
