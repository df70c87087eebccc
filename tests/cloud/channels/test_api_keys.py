"""API keys as rules (cloud/channels/api_keys.py), on both databases: made with a secret shown
once and kept sealed, rotated with an overlap, revoked at once, and every refusal of a signed
request in its order — a replay refused by the nonce's key in the database."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from cloud.channels import api_keys, signing
from cloud.channels.api_keys import ApiKeyError
from cloud.channels.errors import ChannelError
from cloud.channels.tables import api_keys as keys_table
from cloud.channels.tables import api_nonces
from cloud.core.audit import audit_log
from cloud.ledger.tables import partners
from sync.timeutil import utcnow
from tests.cloud.channels.apikit import api_hub

PATH = "/api/partner/v1/ping"


@pytest.fixture
def hub(hub_url):
    h = api_hub(hub_url)
    yield h
    h.engine.dispose()


def _signed(key_id, secret, now, nonce="n" * 16, path=PATH, body=b"", method="GET"):
    return signing.signed_headers(key_id, secret, method, path, body, int(now.timestamp()),
                                  nonce)


def _auth(hub, headers, now, path=PATH, body=b"", method="GET"):
    with hub.engine.begin() as conn:
        return api_keys.authenticate(conn, method, path, headers, body, now)


def _refusal(hub, headers, now, **kw) -> str:
    with pytest.raises((ApiKeyError, ChannelError)) as e:
        _auth(hub, headers, now, **kw)
    return e.value.code


def test_a_key_is_made_with_its_secret_sealed_and_listed_without_it(hub):
    now = utcnow()
    key_id, secret = hub.key(scopes=["orders:read"], per_minute=30)
    with hub.engine.connect() as conn:
        row = conn.execute(sa.select(keys_table).where(keys_table.c.key_id == key_id)).one()
        listed = api_keys.list_keys(conn, hub.partner, now)
        audited = conn.execute(sa.select(audit_log.c.action).where(
            audit_log.c.subject == f"api_key:{key_id}")).scalars().all()
    assert secret not in row.sealed_secret and row.sealed_secret.startswith("s1:")
    assert row.scopes == ["orders:read"] and row.per_minute == 30
    assert [k["key_id"] for k in listed][:2] == [key_id, hub.key_id]
    assert all("secret" not in k and "sealed_secret" not in k for k in listed)
    assert audited == ["api_key.create"]
    assert _auth(hub, _signed(key_id, secret, now), now).key_id == key_id


BAD_KEYS = [("name", ""), ("name", "x" * 81), ("scopes", []), ("scopes", ["orders:delete"]),
            ("per_minute", 0), ("per_minute", True), ("channel_id", "1")]


def test_a_key_with_a_bad_field_is_refused_naming_it(hub):
    refusals = []
    for field, value in BAD_KEYS:
        args = {"name": "k", "scopes": ["orders:read"], "per_minute": 10,
                "channel_id": hub.channel, field: value}
        try:
            with hub.engine.begin() as conn:
                api_keys.create_key(conn, hub.partner, args["channel_id"], args["name"],
                                    args["scopes"], args["per_minute"], "t", utcnow())
            refusals.append(None)
        except ApiKeyError as e:
            refusals.append((e.code, e.params))
    assert refusals == [("bad_api_key_field", {"field": field}) for field, _ in BAD_KEYS]


def test_a_key_for_another_partners_channel_is_refused(hub):
    with hub.engine.begin() as conn, pytest.raises(ApiKeyError) as e:
        api_keys.create_key(conn, hub.partner, hub.rival_channel, "k", ["orders:read"], 10,
                            "t", utcnow())
    assert e.value.code == "api_channel_not_partners"


def test_a_rotated_key_stays_good_for_the_overlap_then_expires(hub):
    now = utcnow()
    with hub.engine.begin() as conn:
        new_id, new_secret = api_keys.rotate_key(conn, hub.partner, hub.key_id, "t", now)
    later = now + api_keys.OVERLAP - timedelta(seconds=1)
    assert _auth(hub, _signed(hub.key_id, hub.secret, later), later).key_id == hub.key_id
    assert _auth(hub, _signed(new_id, new_secret, later), later).key_id == new_id
    ended = now + api_keys.OVERLAP
    assert _refusal(hub, _signed(hub.key_id, hub.secret, ended, "m" * 16), ended) \
        == "api_key_expired"
    with hub.engine.connect() as conn:
        states = {k["key_id"]: k["shown_state"] for k in api_keys.list_keys(conn, hub.partner,
                                                                            now)}
        new_row = conn.execute(sa.select(keys_table).where(keys_table.c.key_id == new_id)).one()
    assert states == {hub.key_id: "expiring", new_id: "active"}
    assert new_row.scopes == list(api_keys.API_SCOPES) and new_row.channel_id == hub.channel
    with hub.engine.begin() as conn, pytest.raises(ApiKeyError) as e:
        api_keys.rotate_key(conn, hub.partner, hub.key_id, "t", ended)
    assert e.value.code == "api_key_inactive"


def test_a_revoked_key_is_refused_at_once_and_only_its_partner_may_revoke_it(hub):
    now = utcnow()
    with hub.engine.begin() as conn, pytest.raises(ApiKeyError) as e:
        api_keys.revoke_key(conn, hub.rival, hub.key_id, "t", now)
    assert e.value.code == "no_such_api_key"
    with hub.engine.begin() as conn:
        api_keys.revoke_key(conn, hub.partner, hub.key_id, "t", now)
    assert _refusal(hub, _signed(hub.key_id, hub.secret, now), now) == "api_key_revoked"
    with hub.engine.begin() as conn, pytest.raises(ApiKeyError) as e:
        api_keys.revoke_key(conn, hub.partner, hub.key_id, "t", now)
    assert e.value.code == "api_key_inactive"


def test_each_refusal_of_a_signed_request(hub):
    now = utcnow()
    good = _signed(hub.key_id, hub.secret, now)
    assert _refusal(hub, {**good, signing.NONCE_HEADER: "short"}, now) \
        == "api_request_unsigned"
    assert _refusal(hub, {**good, signing.KEY_HEADER: "wk_nobody"}, now) == "api_key_unknown"
    stale = now - timedelta(seconds=signing.WINDOW_S + 1)
    assert _refusal(hub, _signed(hub.key_id, hub.secret, stale), now) == "api_request_stale"
    assert _refusal(hub, _signed(hub.key_id, "wrong secret", now), now) \
        == "api_signature_wrong"
    assert _refusal(hub, good, now, path=PATH + "?x=1") == "api_signature_wrong"
    assert _refusal(hub, good, now, body=b"{}") == "api_signature_wrong"
    assert _auth(hub, good, now).id
    assert _refusal(hub, good, now) == "api_request_replayed"
    with hub.engine.begin() as conn:
        conn.execute(sa.update(partners).where(partners.c.id == hub.partner)
                     .values(state="suspended"))
    assert _refusal(hub, _signed(hub.key_id, hub.secret, now, "p" * 16), now) \
        == "partner_suspended"


def test_a_key_over_its_limit_is_told_when_to_come_back(hub):
    key_id, secret = hub.key(per_minute=2)
    now = utcnow()
    for n in range(2):
        _auth(hub, _signed(key_id, secret, now, f"nonce-{n:011d}"), now)
    with pytest.raises(ApiKeyError) as e:
        _auth(hub, _signed(key_id, secret, now, "nonce-99999999999"), now)
    assert e.value.code == "api_key_rate_limited" and e.value.status == 429
    assert e.value.params == {"per_minute": 2, "retry_after": 60}
    # refused, it left no nonce: the same request is good in the next minute
    later = now + timedelta(seconds=61)
    headers = _signed(key_id, secret, later, "nonce-99999999999")
    assert _auth(hub, headers, later).key_id == key_id


def test_a_scope_the_key_lacks_is_refused(hub):
    key_id, _secret = hub.key(scopes=["products:read"])
    with hub.engine.connect() as conn:
        row = conn.execute(sa.select(keys_table).where(keys_table.c.key_id == key_id)).one()
    api_keys.require_scope(row, "products:read")
    with pytest.raises(ApiKeyError) as e:
        api_keys.require_scope(row, "orders:write")
    assert (e.value.code, e.value.status) == ("api_scope_missing", 403)


def test_a_keys_old_nonces_go_when_its_next_minute_begins(hub):
    now = utcnow()
    _auth(hub, _signed(hub.key_id, hub.secret, now, "old-nonce-000001"), now)
    later = now + timedelta(seconds=signing.KEEP_NONCES_S + 61)
    _auth(hub, _signed(hub.key_id, hub.secret, later, "new-nonce-000001"), later)
    with hub.engine.connect() as conn:
        kept = conn.execute(sa.select(api_nonces.c.nonce)).scalars().all()
        used = conn.execute(sa.select(keys_table.c.last_used_at).where(
            keys_table.c.key_id == hub.key_id)).scalar_one()
    assert kept == ["new-nonce-000001"] and used == later
