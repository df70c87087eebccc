"""A hub with a distributor that sells a scenic spot's day ticket through the partner API: its
API channel, the sales code binding the ticket to it, its agreed price, a portal user, and a
key with every scope; and a client that signs its requests (both databases)."""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from cloud.app import create_app
from cloud.channels import api_keys, signing
from cloud.channels.channels import create_channel
from cloud.channels.tables import API_SCOPES, agreed_prices, sales_code_bindings, sales_codes
from cloud.ledger.partners import add_portal_user
from sync.timeutil import CHINA, utcnow
from tests.cloud.channels.channelkit import add_partner, channel_hub, stock
from tests.cloud.orderkit import NOW
from tests.cloud.pagekit import PASSWORD

AGREED = 10000  # the distributor's price of the day ticket, in fen


@dataclass
class ApiHub:
    app: Flask
    engine: sa.Engine
    partner: int
    channel: int
    day_ticket: int
    key_id: str
    secret: str
    rival: int  # another distributor, with a channel of its own
    rival_channel: int

    def today(self):
        return utcnow().astimezone(CHINA).date()

    def client(self, key_id: str | None = None, secret: str | None = None) -> SignedClient:
        return SignedClient(self.app.test_client(), key_id or self.key_id,
                            secret or self.secret)

    def key(self, scopes=API_SCOPES, per_minute: int = 600, partner: int | None = None,
            channel: int | None = None) -> tuple[str, str]:
        with self.engine.begin() as conn:
            return api_keys.create_key(conn, partner or self.partner, channel or self.channel,
                                       "test key", list(scopes), per_minute, "test", utcnow())


def bind(conn: sa.Connection, partner: int, product: int, amount: int) -> None:
    code = conn.execute(sa.insert(sales_codes).values(
        code=f"SC-{partner}-{product}", product_id=product, supplier_id=partner,
        name="Lake day", created_by="t", created_at=NOW).returning(sales_codes.c.id)).scalar_one()
    conn.execute(sa.insert(sales_code_bindings).values(
        sales_code_id=code, partner_id=partner, granted_by="t", granted_at=NOW))
    conn.execute(sa.insert(agreed_prices).values(
        partner_id=partner, product_id=product, amount=amount, currency="CNY",
        effective_from=NOW - timedelta(days=365), created_by="t", created_at=NOW))


def api_hub(url: str) -> ApiHub:
    ch = channel_hub(url)
    now = utcnow()
    with ch.engine.begin() as conn:
        stock(conn, ch.day_ticket, now.astimezone(CHINA).date(), 3, 5)
        channel = create_channel(conn, "travel-api", "Travel API", "api",
                                 partner_id=ch.distributor, actor="t", now=NOW)
        bind(conn, ch.distributor, ch.day_ticket, AGREED)
        rival = add_partner(conn, "RIVAL")
        rival_channel = create_channel(conn, "rival-api", "Rival API", "api",
                                       partner_id=rival, actor="t", now=NOW)
        add_portal_user(conn, ch.distributor, "travel-user", "Travel clerk", PASSWORD, "t",
                        NOW)
        add_portal_user(conn, rival, "rival-user", "Rival clerk", PASSWORD, "t", NOW)
        key_id, secret = api_keys.create_key(conn, ch.distributor, channel, "booking system",
                                             list(API_SCOPES), 600, "t", now)
    ch.engine.dispose()
    app = create_app({"DATABASE_URL": url, "TESTING": True, "SECRET_KEY": "k" * 32})
    return ApiHub(app, app.extensions["db"], ch.distributor, channel, ch.day_ticket, key_id,
                  secret, rival, rival_channel)


class SignedClient:
    """The test client, each request signed with a key (fresh nonce and timestamp unless
    told)."""

    def __init__(self, client: FlaskClient, key_id: str, secret: str):
        self.http, self.key_id, self.secret = client, key_id, secret

    def headers(self, method: str, path: str, body: bytes = b"", *, timestamp=None,
                nonce=None, secret=None) -> dict[str, str]:
        return signing.signed_headers(self.key_id, secret or self.secret, method, path, body,
                                      int(time.time()) if timestamp is None else timestamp,
                                      nonce or secrets.token_hex(16))

    def call(self, method: str, path: str, payload=None, *, idem: str | None = None,
             headers: dict | None = None, **signing_args):
        body = b"" if payload is None else json.dumps(payload).encode()
        sent = headers if headers is not None else self.headers(method, path, body,
                                                                **signing_args)
        if idem is not None:
            sent = {**sent, "Idempotency-Key": idem}
        return self.http.open(path, method=method, data=body, headers=sent,
                              content_type="application/json" if body else None)

    def get(self, path: str, **kw):
        return self.call("GET", path, **kw)

    def post(self, path: str, payload=None, **kw):
        return self.call("POST", path, payload, **kw)
