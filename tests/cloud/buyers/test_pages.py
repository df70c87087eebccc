"""The buyers page: customer service sees accounts masked and finds one by a number sent only in
a POST body; a role without ``buyers.view`` does not see it."""

from __future__ import annotations

import pytest

from cloud.staff.staff import create_staff
from tests.cloud.buyers.buyerkit import MOBILE, new_buyer
from tests.cloud.pagekit import PASSWORD, build_hub, post, sign_in


def _signed_in(hub, role: str):
    with hub.engine.begin() as conn:
        create_staff(conn, f"{role}-account", PASSWORD, role, actor="test")
    client = hub.app.test_client()
    sign_in(client, f"{role}-account")
    return client


@pytest.fixture
def hub(hub_url):
    h = build_hub(hub_url)
    yield h
    h.engine.dispose()


def test_customer_service_lists_and_finds_buyers_masked(hub):
    new_buyer(hub.engine)
    new_buyer(hub.engine, "13900139000")
    service = _signed_in(hub, "service")
    page = service.get("/buyers")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "138****8000" in text and "139****9000" in text
    assert MOBILE not in text and "13900139000" not in text
    found = post(service, "/buyers", {"mobile": "+86 138 0013 8000"}, page="/buyers")
    assert found.status_code == 200
    text = found.get_data(as_text=True)
    assert "138****8000" in text and "139****9000" not in text and MOBILE not in text
    refused = post(service, "/buyers", {"mobile": "12345"}, page="/buyers")
    assert refused.status_code == 422
    sales = _signed_in(hub, "outlet")
    assert sales.get("/buyers").status_code == 403
