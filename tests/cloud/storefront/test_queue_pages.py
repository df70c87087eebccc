"""The waiting room in the browser: while a session's room is on, the checkout sends a buyer
without a pass to the queue page; joining gives a place (the first comes straight through
with a pass kept in a cookie), reloading keeps it, and a forged pass gets nobody past. The
room lets one in per ten thousand seconds here, so the second buyer waits for certain —
on both databases."""

from __future__ import annotations

import re

import pytest

from tests.cloud.storefront.shopkit import build_shop
from tests.cloud.storefront.test_checkout import _seats, _signed_in


@pytest.fixture
def slow_shop(hub_url, key_store):
    s = build_shop(hub_url, WAITING_ROOM_RATE=0.0001, WAITING_ROOM_BURST=1)
    yield s
    s.engine.dispose()


def _cookie(client, name: str) -> str | None:
    found = client.get_cookie(name, path="/shop")
    return found.value if found is not None else None


def test_the_first_buyer_comes_through_and_the_second_waits_in_place(slow_shop):
    shop = slow_shop
    first, token = _signed_in(shop.app, shop.engine)
    seat = _seats(shop, "A", "1", 1)
    checkout = f"/shop/en/sessions/{shop.final}/checkout?seat={seat[0]}"
    r = first.get(checkout)
    assert r.status_code == 303 and r.headers["Location"] == f"/shop/en/sessions/{shop.final}/queue"
    page = first.get(r.headers["Location"]).get_data(as_text=True)
    assert "Join the queue" in page
    r = first.post(f"/shop/en/sessions/{shop.final}/queue", data={"csrf_token": token})
    assert r.status_code == 303 and "admitted=1" in r.headers["Location"]
    assert _cookie(first, f"wicket_pass_{shop.final}").startswith("wp1.")
    assert first.get(checkout).status_code == 200
    r = first.post(f"/shop/en/sessions/{shop.final}/checkout",
                   data={"seat": seat, "csrf_token": token})
    assert r.status_code == 303 and "/orders/" in r.headers["Location"]

    second, token2 = _signed_in(shop.app, shop.engine, "13900139000")
    r = second.post(f"/shop/en/sessions/{shop.final}/queue", data={"csrf_token": token2})
    assert r.status_code == 200 and r.headers["Refresh"] == "5"
    page = r.get_data(as_text=True)
    # number 1 is through, so nobody waits ahead: number 2 waits for the rate alone
    assert re.search(r'id="queue-number">2<', page) and re.search(r'id="queue-ahead">0<', page)
    assert 5000 < int(re.search(r'id="queue-estimate">about (\d+) s<', page).group(1)) <= 10000
    # reloading, or joining again with the token, keeps the place
    again = second.get(f"/shop/en/sessions/{shop.final}/queue").get_data(as_text=True)
    assert re.search(r'id="queue-number">2<', again)
    rejoined = second.post(f"/shop/en/sessions/{shop.final}/queue",
                           data={"csrf_token": token2}).get_data(as_text=True)
    assert re.search(r'id="queue-number">2<', rejoined)
    # the checkout is closed to it, whether asked for or posted to
    assert second.get(checkout).status_code == 303
    r = second.post(f"/shop/en/sessions/{shop.final}/checkout",
                    data={"seat": _seats(shop, "A", "1", 2), "csrf_token": token2})
    assert r.status_code == 303 and r.headers["Location"].endswith("/queue")


def test_a_forged_or_foreign_pass_gets_nobody_through(slow_shop):
    shop = slow_shop
    c, token = _signed_in(shop.app, shop.engine)
    c.post(f"/shop/en/sessions/{shop.final}/queue", data={"csrf_token": token})
    real = _cookie(c, f"wicket_pass_{shop.final}")
    parts = real.split(".")
    for forged in (".".join(parts[:-1] + ["0" * len(parts[-1])]),
                   ".".join([parts[0], str(shop.heats), *parts[2:]]), "nonsense"):
        c.set_cookie(f"wicket_pass_{shop.final}", forged, path="/shop")
        r = c.get(f"/shop/en/sessions/{shop.final}/checkout?seat=1")
        assert r.status_code == 303 and r.headers["Location"].endswith("/queue"), forged


def test_without_a_room_the_queue_page_sends_back_to_the_session(shop):
    r = shop.app.test_client().get(f"/shop/en/sessions/{shop.final}/queue")
    assert r.status_code == 303 and r.headers["Location"] == f"/shop/en/sessions/{shop.final}"
