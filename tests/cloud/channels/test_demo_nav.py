"""The channels' pages in the staff menu (both databases): shown to staff who manage the
channels, not to the others."""

from __future__ import annotations

from tests.cloud.pagekit import build_hub, text


def test_the_staff_menu_links_the_channels_for_those_who_manage_them(hub_url):
    hub = build_hub(hub_url)
    try:
        admin, sales = (text(hub.client(role).get("/")) for role in ("admin", "sales"))
    finally:
        hub.engine.dispose()
    assert '<a href="/channels">Channels</a>' in admin
    assert 'href="/channels"' not in sales and "Box office" in sales
