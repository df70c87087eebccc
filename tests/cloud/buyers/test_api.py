"""The buyers' JSON API on both databases, as a client meets it: codes, registration with an
Idempotency-Key, sign-in, the buyer's own account and sessions, companions; fields checked with
a 4xx naming them; buyer sessions and staff tokens never taken for one another."""

from __future__ import annotations

import pytest

from cloud.app import create_app
from cloud.buyers import sessions
from cloud.core.db import init_db
from cloud.staff.staff import create_staff
from cloud.staff.tokens import create_token
from tests.cloud.buyers.buyerkit import MOBILE, PASSWORD, last_code, sent
from tests.cloud.buyers.test_companions import resident_id

OTHER = "13900139000"
ADDRESS = {"REMOTE_ADDR": "203.0.113.7"}


@pytest.fixture
def client(hub_url):
    init_db(hub_url)
    app = create_app({"DATABASE_URL": hub_url, "TESTING": True, "RATELIMIT_ENABLED": False,
                      "BUYER_COMPANION_LIMIT": 2, "BUYER_CODES_PER_ADDRESS": 4})
    yield app.test_client()
    app.extensions["db"].dispose()


def _engine(client):
    return client.application.extensions["db"]


def _post(client, path, body, headers=None, address=ADDRESS):
    return client.post(f"/api/v1/buyer{path}", json=body, headers=headers or {},
                       environ_base=address)


def _register(client, mobile=MOBILE, **extra):
    assert _post(client, "/codes", {"mobile": mobile, "purpose": "register"}).status_code == 202
    return _post(client, "/register", {"mobile": mobile, "code": last_code(_engine(client),
                                                                           mobile), **extra},
                 headers={"Idempotency-Key": f"reg-{mobile}"})


def _signed_in(client, mobile=MOBILE) -> dict[str, str]:
    assert _post(client, "/codes", {"mobile": mobile, "purpose": "sign_in"}).status_code == 202
    r = _post(client, "/sessions", {"mobile": mobile, "code": last_code(_engine(client), mobile)},
              headers={"User-Agent": "Phone/1.0"})
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["token"].startswith("wkb_")
    return {"Authorization": f"Bearer {r.get_json()['token']}"}


def test_register_once_with_an_idempotency_key_and_see_yourself_in_full(client):
    assert _post(client, "/codes", {"mobile": MOBILE, "purpose": "register"}).status_code == 202
    sent_body = {"mobile": MOBILE, "code": last_code(_engine(client)), "password": PASSWORD,
                 "language": "en"}
    r = _post(client, "/register", sent_body, headers={"Idempotency-Key": f"reg-{MOBILE}"})
    assert r.status_code == 201
    buyer = r.get_json()["buyer"]
    assert (buyer["mobile"], buyer["language"], buyer["has_password"]) == ("138****8000", "en",
                                                                           True)
    # the retry of a lost answer gets the same answer, and nothing runs twice
    again = _post(client, "/register", {"mobile": MOBILE, "code": last_code(_engine(client))},
                  headers={"Idempotency-Key": f"reg-{MOBILE}"})
    assert again.status_code == 422 and again.get_json()["error"] == "idempotency_key_reused"
    body = _post(client, "/register", sent_body, headers={"Idempotency-Key": f"reg-{MOBILE}"})
    assert body.status_code == 201 and body.headers["Idempotent-Replayed"] == "true"
    assert body.get_data() == r.get_data()
    me = _signed_in(client)
    got = client.get("/api/v1/buyer/me", headers=me).get_json()["buyer"]
    assert (got["mobile"], got["email"], got["id"]) == (MOBILE, None, buyer["id"])
    r = client.patch("/api/v1/buyer/me", json={"email": "Buyer@Example.com", "language": "zh"},
                     headers=me)
    assert (r.get_json()["buyer"]["email"], r.get_json()["buyer"]["language"]) == (
        "buyer@example.com", "zh")
    r = _post(client, "/sessions", {"mobile": MOBILE, "password": PASSWORD})
    assert r.status_code == 201


def test_asking_for_a_code_answers_the_same_for_any_number_and_is_limited_per_address(client):
    _register(client)
    known = _post(client, "/codes", {"mobile": MOBILE, "purpose": "sign_in"},
                  address={"REMOTE_ADDR": "198.51.100.1"})
    unknown = _post(client, "/codes", {"mobile": OTHER, "purpose": "sign_in"},
                    address={"REMOTE_ADDR": "198.51.100.1"})
    assert (known.status_code, known.get_data()) == (unknown.status_code, unknown.get_data())
    assert sent(_engine(client), OTHER) == []
    # four per address per hour here (BUYER_CODES_PER_ADDRESS), whatever the numbers
    for n in range(2):
        assert _post(client, "/codes", {"mobile": f"1370013700{n}", "purpose": "register"},
                     address={"REMOTE_ADDR": "198.51.100.1"}).status_code == 202
    r = _post(client, "/codes", {"mobile": "13600136000", "purpose": "register"},
              address={"REMOTE_ADDR": "198.51.100.1"})
    assert (r.status_code, r.get_json()["error"]) == (429, "code_rate_limited")
    assert _post(client, "/codes", {"mobile": "13600136000", "purpose": "register"},
                 address={"REMOTE_ADDR": "198.51.100.2"}).status_code == 202
    r = _post(client, "/codes", {"mobile": "13600136000", "purpose": "register"},
              address={"REMOTE_ADDR": "198.51.100.3"})
    assert (r.status_code, r.get_json()["error"]) == (429, "code_too_soon")


@pytest.mark.parametrize("path,body,code,field", [
    ("/codes", {"purpose": "register"}, "bad_field", "mobile"),
    ("/codes", {"mobile": 13800138000, "purpose": "register"}, "bad_field", "mobile"),
    ("/codes", {"mobile": MOBILE}, "bad_field", "purpose"),
    ("/codes", {"mobile": "12345", "purpose": "register"}, "bad_mobile", None),
    ("/codes", {"mobile": MOBILE, "purpose": "shopping"}, "bad_purpose", None),
    ("/codes", {"mobile": MOBILE, "purpose": "register", "language": "fr"}, "bad_language",
     None),
    ("/register", {"mobile": MOBILE}, "bad_field", "code"),
    ("/register", {"mobile": MOBILE, "code": "12ab56"}, "bad_field", "code"),
    ("/sessions", {"mobile": MOBILE}, "bad_field", "code"),
    ("/sessions", {"mobile": MOBILE, "password": 12}, "bad_field", "password"),
    ("/password-reset", {"mobile": MOBILE, "code": "123456"}, "bad_field", "password"),
    ("/password-reset", {"mobile": MOBILE, "code": "123456", "password": "short"},
     "password_too_short", None),
])
def test_every_open_call_names_the_field_it_refuses(client, path, body, code, field):
    r = _post(client, path, body)
    assert 400 <= r.status_code < 500 and r.get_json()["error"] == code, r.get_json()
    if field is not None:
        assert (r.status_code, r.get_json()["params"]) == (400, {"field": field})


def test_signed_in_calls_need_a_buyer_session_and_refuse_bad_fields(client):
    _register(client)
    me = _signed_in(client)
    assert client.get("/api/v1/buyer/me").status_code == 401
    assert client.get("/api/v1/buyer/me", headers={"Authorization": "Bearer nope"}
                      ).get_json()["error"] == "bad_session"
    with _engine(client).begin() as conn:
        staff_id = create_staff(conn, "admin-user", PASSWORD, "admin", actor="test")
        staff_token = create_token(conn, staff_id, "t", "test")[1]
    r = client.get("/api/v1/buyer/me", headers={"Authorization": f"Bearer {staff_token}"})
    assert (r.status_code, r.get_json()["error"]) == (401, "bad_session")
    assert client.get("/api/v1/staff", headers=me).status_code == 401
    for body, field in (({"phone": "x"}, "phone"), ({"language": 3}, "language")):
        r = client.patch("/api/v1/buyer/me", json=body, headers=me)
        assert (r.status_code, r.get_json()["params"]) == (400, {"field": field})
    assert client.patch("/api/v1/buyer/me", json={"email": "nope"}, headers=me
                        ).get_json()["error"] == "bad_email"
    r = client.post("/api/v1/buyer/companions", json={"name": "李四", "doc_type": "resident_id"},
                    headers=me)
    assert (r.status_code, r.get_json()["params"]) == (400, {"field": "doc_number"})
    r = client.post("/api/v1/buyer/companions", json={"name": "李四", "doc_type": "resident_id",
                                                      "doc_number": "110105199001010000"},
                    headers=me)
    assert (r.status_code, r.get_json()["error"]) == (422, "document_bad_check_digit")


def test_a_buyer_lists_and_ends_sessions_and_a_password_reset_ends_them_all(client):
    buyer_id = _register(client).get_json()["buyer"]["id"]
    me = _signed_in(client)
    with _engine(client).begin() as conn:
        other = {"Authorization": f"Bearer {sessions.start_session(conn, buyer_id)}"}
        third = {"Authorization": f"Bearer {sessions.start_session(conn, buyer_id)}"}
    listed = client.get("/api/v1/buyer/sessions", headers=me).get_json()["sessions"]
    assert [s["current"] for s in listed] == [False, False, True]
    assert listed[-1]["user_agent"] == "Phone/1.0" and listed[-1]["address"] == "203.0.113.*"
    r = client.delete(f"/api/v1/buyer/sessions/{listed[0]['id']}", headers=me)
    assert r.get_json() == {"ended": True}
    assert client.get("/api/v1/buyer/me", headers=third).status_code == 401
    assert client.delete("/api/v1/buyer/sessions/9999", headers=me).status_code == 404
    assert client.post("/api/v1/buyer/sessions/end-others", headers=me
                       ).get_json() == {"sessions_ended": 1}
    assert client.get("/api/v1/buyer/me", headers=other).status_code == 401
    # a first password, then a change that needs the current one
    r = client.post("/api/v1/buyer/me/password", json={"password": PASSWORD}, headers=me)
    assert r.get_json() == {"sessions_ended": 0}
    r = client.post("/api/v1/buyer/me/password", json={"password": "another long passphrase"},
                    headers=me)
    assert (r.status_code, r.get_json()["error"]) == (403, "wrong_password")
    # reset by SMS: every session ends
    assert _post(client, "/codes", {"mobile": MOBILE, "purpose": "password_reset"}
                 ).status_code == 202
    r = _post(client, "/password-reset", {"mobile": MOBILE, "code": last_code(_engine(client)),
                                          "password": "another long passphrase"})
    assert r.get_json() == {"reset": True}
    assert client.get("/api/v1/buyer/me", headers=me).status_code == 401
    r = _post(client, "/sessions", {"mobile": MOBILE, "password": PASSWORD})
    assert (r.status_code, r.get_json()["error"]) == (401, "bad_sign_in")
    assert _post(client, "/sessions", {"mobile": MOBILE, "password": "another long passphrase"}
                 ).status_code == 201


def test_companions_are_added_once_per_key_listed_masked_limited_and_removed(client):
    _register(client)
    me = _signed_in(client)
    _register(client, OTHER)
    stranger = _signed_in(client, OTHER)
    number = resident_id(7)
    key = {**me, "Idempotency-Key": "companion-1"}
    body = {"name": "张小三", "doc_type": "resident_id", "doc_number": number}
    r = client.post("/api/v1/buyer/companions", json=body, headers=key)
    assert r.status_code == 201
    added = r.get_json()["companion"]
    assert (added["name"], added["doc_number"]) == ("张*三", number[:4] + "*" * 10 + number[-4:])
    again = client.post("/api/v1/buyer/companions", json=body, headers=key)
    assert again.get_data() == r.get_data() and again.headers["Idempotent-Replayed"] == "true"
    # another buyer's key of the same name is theirs
    assert client.post("/api/v1/buyer/companions", json=body,
                       headers={**stranger, "Idempotency-Key": "companion-1"}).status_code == 201
    r = client.post("/api/v1/buyer/companions", json=body, headers=me)
    assert (r.status_code, r.get_json()["error"]) == (409, "companion_exists")
    client.post("/api/v1/buyer/companions", headers=me,
                json={**body, "doc_number": resident_id(8), "name": "李四"})
    r = client.post("/api/v1/buyer/companions", headers=me,
                    json={**body, "doc_number": resident_id(9)})
    assert (r.status_code, r.get_json()) == (409, {"error": "companion_limit",
                                                   "params": {"limit": 2},
                                                   "message": "at most 2 companions per account"})
    listed = client.get("/api/v1/buyer/companions", headers=me).get_json()
    assert listed["limit"] == 2 and [c["name"] for c in listed["companions"]] == ["张*三", "李*"]
    assert number not in str(listed)
    assert client.delete(f"/api/v1/buyer/companions/{added['id']}", headers=stranger
                         ).status_code == 404
    r = client.delete(f"/api/v1/buyer/companions/{added['id']}", headers=me)
    assert r.get_json() == {"removed": True}
    assert [c["name"] for c in client.get("/api/v1/buyer/companions", headers=me).get_json()[
        "companions"]] == ["李*"]


def test_the_companion_limit_comes_from_the_environment_when_not_configured(hub_url,
                                                                            monkeypatch):
    init_db(hub_url)
    app = create_app({"DATABASE_URL": hub_url, "TESTING": True, "RATELIMIT_ENABLED": False})
    client = app.test_client()
    try:
        _register(client)
        me = _signed_in(client)
        assert client.get("/api/v1/buyer/companions", headers=me).get_json()["limit"] == 10
        monkeypatch.setenv("WICKET_HUB_BUYER_COMPANION_LIMIT", "3")
        assert client.get("/api/v1/buyer/companions", headers=me).get_json()["limit"] == 3
        monkeypatch.setenv("WICKET_HUB_BUYER_COMPANION_LIMIT", "none")
        with pytest.raises(ValueError, match="BUYER_COMPANION_LIMIT"):
            client.get("/api/v1/buyer/companions", headers=me)
    finally:
        app.extensions["db"].dispose()


def test_a_buyer_names_who_they_are_and_sees_their_verification(client):
    _register(client)
    headers = _signed_in(client)
    number = resident_id(9)
    wrong = number[:-1] + ("1" if number[-1] != "1" else "2")  # its check digit wrong
    body = {"name": "赵六", "doc_type": "resident_id", "doc_number": number}
    asked = client.post("/api/v1/buyer/me/identity", json=body,
                        headers={**headers, "Idempotency-Key": "me-1"})
    assert asked.status_code == 202, asked.get_json()
    assert asked.get_json()["verification"] == "pending"
    again = client.post("/api/v1/buyer/me/identity", json=body,
                        headers={**headers, "Idempotency-Key": "me-1"})
    assert again.get_data() == asked.get_data() and again.headers["Idempotent-Replayed"]
    me = client.get("/api/v1/buyer/me", headers=headers).get_json()["buyer"]
    assert (me["identity_id"], me["verification"]) == (asked.get_json()["identity_id"],
                                                       "pending")
    bad = client.post("/api/v1/buyer/me/identity", headers=headers,
                      json={**body, "doc_number": wrong})
    assert bad.status_code == 422 and bad.get_json()["error"].startswith("document_")
    missing = client.post("/api/v1/buyer/me/identity", headers=headers, json={"name": "赵六"})
    assert missing.status_code == 400 and missing.get_json()["params"]["field"] == "doc_type"
    assert client.post("/api/v1/buyer/me/identity", json=body).status_code == 401
