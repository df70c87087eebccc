"""A buyer keeps who their tickets may name from the account page: names who they are (sent
for verification once, the result to their mobile), adds a companion and takes one off the
list; refusals said beside the form and nothing stored. On both databases."""

from __future__ import annotations

import sqlalchemy as sa

from cloud.buyers.tables import buyers, companions, identities
from tests.cloud.buyers.conftest import resident_id
from tests.cloud.storefront.test_checkout import _buyer_id, _signed_in


def test_a_buyer_names_who_they_are_once(shop):
    c, token = _signed_in(shop.app, shop.engine)
    number = resident_id()
    r = c.post("/shop/en/account/identity", data={
        "name": "Li Lei", "doc_type": "resident_id", "doc_number": number, "csrf_token": token})
    assert r.status_code == 303 and "notice=checking" in r.headers["Location"]
    with shop.engine.connect() as conn:
        me = conn.execute(sa.select(buyers).where(buyers.c.id == _buyer_id(shop.engine))).one()
        state = conn.execute(sa.select(identities.c.state).where(
            identities.c.id == me.identity_id)).scalar_one()
    assert state == "pending"
    page = c.get(r.headers["Location"]).get_data(as_text=True)
    assert "Your document is being checked" in page and number not in page
    assert "Being checked" in page


def test_a_mistyped_document_is_refused_beside_the_form(shop):
    c, token = _signed_in(shop.app, shop.engine)
    r = c.post("/shop/en/account/identity", data={
        "name": "Li Lei", "doc_type": "resident_id", "doc_number": "110101199001011234",
        "csrf_token": token})
    assert r.status_code == 422
    page = r.get_data(as_text=True)
    assert 'role="alert"' in page and 'value="Li Lei"' in page
    with shop.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(identities)).scalar_one() == 0


def test_companions_are_added_and_taken_off(shop):
    c, token = _signed_in(shop.app, shop.engine)
    r = c.post("/shop/zh/account/companions", data={
        "name": "Han Meimei", "doc_type": "resident_id", "doc_number": resident_id(),
        "csrf_token": token})
    assert r.status_code == 303
    page = c.get(r.headers["Location"]).get_data(as_text=True)
    assert "已添加关联订票人" in page and "H** M*****" in page
    with shop.engine.connect() as conn:
        companion = conn.execute(sa.select(companions.c.id)).scalar_one()
    other, other_token = _signed_in(shop.app, shop.engine, "13900139000")
    refused = other.post(f"/shop/en/account/companions/{companion}/remove",
                         data={"csrf_token": other_token})
    assert refused.status_code == 404
    r = c.post(f"/shop/en/account/companions/{companion}/remove", data={"csrf_token": token})
    assert r.status_code == 303 and "notice=removed" in r.headers["Location"]
    with shop.engine.connect() as conn:
        assert conn.execute(sa.select(companions.c.removed_at)).scalar_one() is not None
