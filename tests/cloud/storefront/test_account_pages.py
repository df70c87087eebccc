"""The buyer's own pages: register and sign in with an SMS code (read from the outbox as the
SMS gateway would send it), the session in its own HttpOnly cookie, forms guarded by their
CSRF token, the account page private and signed-out visitors sent to sign in — on both
databases."""

from __future__ import annotations

import re

import sqlalchemy as sa

from cloud.buyers.tables import buyer_sessions
from cloud.sales.tables import orders
from tests.cloud.buyers.buyerkit import last_code, new_buyer

MOBILE = "13700137000"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _token(client, path: str) -> str:
    found = _CSRF.search(client.get(path).get_data(as_text=True))
    assert found, f"no CSRF field on {path}"
    return found.group(1)


def _register(client, engine, mobile: str = MOBILE, next_: str = ""):
    token = _token(client, "/shop/en/register")
    r = client.post("/shop/en/register/code", data={"mobile": mobile, "csrf_token": token})
    assert r.status_code == 200 and "A six-digit code is on its way" in r.get_data(as_text=True)
    return client.post("/shop/en/register", data={
        "mobile": mobile, "code": last_code(engine, mobile), "csrf_token": token,
        "next": next_})


def test_a_visitor_registers_with_a_code_and_is_signed_in(shop):
    c = shop.app.test_client()
    r = _register(c, shop.engine, next_=f"/shop/en/sessions/{shop.final}")
    assert r.status_code == 303 and r.headers["Location"] == f"/shop/en/sessions/{shop.final}"
    cookie = next(h for h in r.headers.getlist("Set-Cookie") if h.startswith("wicket_buyer="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    page = c.get("/shop/en/account")
    assert page.status_code == 200 and page.headers["Cache-Control"] == "private, no-store"
    text = page.get_data(as_text=True)
    assert "137****7000" in text and MOBILE not in text and "Not verified yet" in text
    assert "This browser" in text


def test_the_account_lists_the_buyer_s_orders_only(shop):
    c = shop.app.test_client()
    _register(c, shop.engine)
    with shop.engine.connect() as conn:
        buyer_id = conn.execute(sa.select(buyer_sessions.c.buyer_id)).scalar_one()
    other = new_buyer(shop.engine, "13900139000")
    with shop.engine.begin() as conn:
        for number, buyer in (("W-1", buyer_id), ("W-2", other)):
            conn.execute(sa.insert(orders).values(
                number=number, session_id=shop.final, buyer=f"buyer:{buyer}", actor="test",
                state="paid", total=38000, currency="CNY", expires_at=sa.func.now(),
                created_at=sa.func.now()))
    text = c.get("/shop/en/account").get_data(as_text=True)
    assert "W-1" in text and "W-2" not in text and "Paid, tickets issued" in text and "380.00 CNY" in text


def test_signing_in_by_code_and_out(shop):
    new_buyer(shop.engine, MOBILE)
    c = shop.app.test_client()
    token = _token(c, "/shop/en/sign-in")
    r = c.post("/shop/en/sign-in/code", data={"mobile": MOBILE, "csrf_token": token})
    assert r.status_code == 200 and 'autocomplete="one-time-code"' in r.get_data(as_text=True)
    sent = last_code(shop.engine, MOBILE)
    wrong = c.post("/shop/en/sign-in", data={"mobile": MOBILE, "csrf_token": token,
                                             "code": "000000" if sent != "000000" else "111111"})
    assert wrong.status_code == 401 and "the code is wrong" in wrong.get_data(as_text=True)
    r = c.post("/shop/en/sign-in", data={"mobile": MOBILE, "code": last_code(shop.engine, MOBILE),
                                         "csrf_token": token, "next": "https://evil.example/"})
    assert r.status_code == 303 and r.headers["Location"] == "/shop/en/account"
    assert c.get("/shop/en/account").status_code == 200
    r = c.post("/shop/en/sign-out", data={"csrf_token": token})
    assert r.status_code == 303
    with shop.engine.connect() as conn:
        assert conn.execute(sa.select(buyer_sessions.c.ended_at)).scalar_one() is not None
    away = c.get("/shop/en/account")
    assert away.status_code == 303
    assert away.headers["Location"] == "/shop/en/sign-in?next=/shop/en/account"


def test_an_unknown_number_is_answered_as_a_known_one(shop):
    c = shop.app.test_client()
    token = _token(c, "/shop/zh/sign-in")
    r = c.post("/shop/zh/sign-in/code", data={"mobile": "13600136000", "csrf_token": token})
    assert r.status_code == 200 and "如果该号码已注册" in r.get_data(as_text=True)


def test_a_form_without_its_token_changes_nothing(shop):
    c = shop.app.test_client()
    _token(c, "/shop/en/register")
    r = c.post("/shop/en/register/code", data={"mobile": MOBILE})
    assert r.status_code == 400
    r = c.post("/shop/en/register/code", data={"mobile": MOBILE, "csrf_token": "forged"})
    assert r.status_code == 400
    from cloud.core.outbox import outbox
    with shop.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(outbox)).scalar_one() == 0


def test_a_refused_number_is_said_in_the_page_language(shop):
    c = shop.app.test_client()
    token = _token(c, "/shop/zh/register")
    r = c.post("/shop/zh/register/code", data={"mobile": "12345", "csrf_token": token})
    assert r.status_code == 422
    text = r.get_data(as_text=True)
    assert 'role="alert"' in text and "手机号" in text
