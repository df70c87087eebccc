"""Channels: where a sale happens, each switched on or off, with a sale window and, for booths,
outlets and kiosks, opening hours; and the quotas a channel's sales count against.

A channel's quota is the inventory's (kind ``channel``: per session × price tier, or per
product × day), and the contract customers' common track is one too (kind ``contract``, per
session × tier); a sale through the channel adds to it with the same conditional UPDATE, in
the same transaction and id order, as to every other quota (cloud/inventory/quotas.py), so a
channel is never oversold under the races the orders' quotas stand.
"""

from __future__ import annotations

import re
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from cloud.catalog.tables import price_tiers, products, venues
from cloud.channels.errors import ChannelError
from cloud.channels.tables import CHANNEL_KINDS, channels, contract_customers
from cloud.core.audit import record
from cloud.core.errors import Code, HubError
from cloud.inventory.quotas import add_quota, quota_by_key, quota_key, set_capacity
from cloud.ledger.tables import partners

STOREFRONT = "web"  # the storefront's channel code
CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,39}")
HHMM = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")
MAX_CAPACITY = 10_000_000


class ChannelSetupError(HubError):
    """A channel or channel quota that cannot be set up as asked."""

    codes = {
        "bad_channel": Code(422, "%(field)s is missing or not valid for a channel"),
        "channel_code_taken": Code(409, "a channel has the code %(code)s already"),
    }


def _bad(field: str) -> ChannelSetupError:
    return ChannelSetupError("bad_channel", field=field)


def check_hours(hours: object) -> dict | None:
    """Opening hours as stored: {"days": [0-6, Monday 0], "opens": "HH:MM", "closes":
    "HH:MM"}, China time, closes after opens (at most "24:00": the day's end); None for none
    (always open)."""
    if hours is None:
        return None
    if not isinstance(hours, dict) or set(hours) != {"days", "opens", "closes"}:
        raise _bad("opening_hours")
    days, opens, closes = hours["days"], hours["opens"], hours["closes"]
    if not isinstance(days, list) or not days or not all(
            isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= 6 for d in days):
        raise _bad("opening_hours.days")
    for name, value in (("opens", opens), ("closes", closes)):
        if not isinstance(value, str) or not (HHMM.fullmatch(value) or (
                name == "closes" and value == "24:00")):
            raise _bad(f"opening_hours.{name}")
    if closes <= opens:
        raise _bad("opening_hours.closes")
    return {"days": sorted(set(days)), "opens": opens, "closes": closes}


def _exists(conn: sa.Connection, table: sa.Table, row_id: object) -> bool:
    return isinstance(row_id, int) and not isinstance(row_id, bool) and conn.execute(
        sa.select(table.c.id).where(table.c.id == row_id)).first() is not None


def create_channel(conn: sa.Connection, code: str, name: str, kind: str, *,
                   partner_id: int | None = None, customer_id: int | None = None,
                   venue_id: int | None = None, opening_hours: dict | None = None,
                   actor: str, now: datetime) -> int:
    """A channel, switched on, open at all times until given a window or hours. A
    distributor's, agent's or API client's names its partner; a contract customer's, its
    customer; a booth's, outlet's or kiosk's may name its venue."""
    if not isinstance(code, str) or not CODE.fullmatch(code):
        raise _bad("code")
    if not isinstance(name, str) or not name.strip() or len(name) > 200 \
            or not name.isprintable():
        raise _bad("name")
    if kind not in CHANNEL_KINDS:
        raise _bad("kind")
    if (partner_id is not None or kind in ("distributor", "agent", "api")) \
            and not _exists(conn, partners, partner_id):
        raise _bad("partner_id")
    if (customer_id is not None or kind == "contract") \
            and not _exists(conn, contract_customers, customer_id):
        raise _bad("customer_id")
    if venue_id is not None and not _exists(conn, venues, venue_id):
        raise _bad("venue_id")
    hours = check_hours(opening_hours)
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    got = conn.execute(dialect.insert(channels).values(
        code=code, name=name.strip(), kind=kind, partner_id=partner_id,
        customer_id=customer_id, venue_id=venue_id, opening_hours=hours, enabled=True,
        created_by=actor, created_at=now).on_conflict_do_nothing(index_elements=["code"])
        .returning(channels.c.id)).first()
    if got is None:
        raise ChannelSetupError("channel_code_taken", code=code, field="code")
    record(conn, actor, "channel.create", f"channel:{got.id}", None,
           {"code": code, "kind": kind, "partner_id": partner_id, "customer_id": customer_id,
            "venue_id": venue_id, "opening_hours": hours})
    return got.id


_CHANNEL = sa.select(channels).where(channels.c.id == sa.bindparam("channel_id"))


def channel(conn: sa.Connection, channel_id: int):
    row = conn.execute(_CHANNEL, {"channel_id": channel_id}).first() \
        if isinstance(channel_id, int) and not isinstance(channel_id, bool) else None
    if row is None:
        raise ChannelError("unknown_channel", channel=channel_id, field="channel_id")
    return row


def channel_by_code(conn: sa.Connection, code: str):
    return conn.execute(sa.select(channels).where(channels.c.code == code)).first()


def list_channels(conn: sa.Connection, kind: str | None = None) -> list[sa.Row]:
    q = sa.select(channels).order_by(channels.c.kind, channels.c.code)
    if kind is not None:
        q = q.where(channels.c.kind == kind)
    return conn.execute(q).all()


def _change(conn: sa.Connection, channel_id: int, action: str, actor: str, **values) -> None:
    before = channel(conn, channel_id)
    conn.execute(sa.update(channels).where(channels.c.id == channel_id).values(**values))
    record(conn, actor, action, f"channel:{channel_id}",
           {k: _plain(getattr(before, k)) for k in values},
           {k: _plain(v) for k, v in values.items()})


def _plain(value: object) -> object:
    return value.isoformat() if isinstance(value, datetime) else value


def set_enabled(conn: sa.Connection, channel_id: int, enabled: bool, actor: str,
                now: datetime) -> None:
    """Switch a channel on or off: off, it sells nothing (its orders waiting for payment may
    still be paid: what they hold was taken while it was on)."""
    if not isinstance(enabled, bool):
        raise _bad("enabled")
    _change(conn, channel_id, "channel.switch", actor, enabled=enabled)


def set_window(conn: sa.Connection, channel_id: int, opens: datetime | None,
               closes: datetime | None, actor: str, now: datetime) -> None:
    for field, value in (("sale_opens_at", opens), ("sale_closes_at", closes)):
        if value is not None and (not isinstance(value, datetime) or value.tzinfo is None):
            raise _bad(field)
    if opens is not None and closes is not None and closes <= opens:
        raise _bad("sale_closes_at")
    _change(conn, channel_id, "channel.window", actor, sale_opens_at=opens,
            sale_closes_at=closes)


def set_hours(conn: sa.Connection, channel_id: int, hours: dict | None, actor: str,
              now: datetime) -> None:
    _change(conn, channel_id, "channel.hours", actor, opening_hours=check_hours(hours))


def _capacity(capacity: object) -> int:
    if isinstance(capacity, bool) or not isinstance(capacity, int) \
            or not 0 <= capacity <= MAX_CAPACITY:
        raise _bad("capacity")
    return capacity


def _put_quota(conn: sa.Connection, key: str, kind: str, capacity: int, actor: str,
               **given) -> int:
    found = quota_by_key(conn, key)
    if found is not None:
        set_capacity(conn, found.id, capacity, actor)
        return found.id
    return add_quota(conn, kind, capacity, actor=actor, **given)


def set_channel_quota(conn: sa.Connection, channel_id: int, capacity: int, *,
                      session_id: int | None = None, price_tier_id: int | None = None,
                      product_id: int | None = None, day: date | None = None, actor: str,
                      now: datetime) -> int:
    """The most a channel sells of a session's price tier (tier None: of its untiered
    sales), or of a product (on a day, for a day product): created, or its capacity changed
    (never below what is sold or held: ``capacity_below_used``). The quota's id."""
    channel(conn, channel_id)
    capacity = _capacity(capacity)
    if session_id is not None:
        if product_id is not None or day is not None:
            raise _bad("product_id")
        tier = conn.execute(sa.select(price_tiers.c.session_id).where(
            price_tiers.c.id == price_tier_id)).first() if price_tier_id is not None else None
        if price_tier_id is not None and (tier is None or tier.session_id != session_id):
            raise _bad("price_tier_id")
    elif not _exists(conn, products, product_id):
        raise _bad("product_id")
    elif day is not None and (not isinstance(day, date) or isinstance(day, datetime)):
        raise _bad("day")
    given = {"session_id": session_id, "price_tier_id": price_tier_id,
             "product_id": product_id, "day": day, "channel_id": channel_id}
    return _put_quota(conn, quota_key("channel", **given), "channel", capacity, actor,
                      **given)


def set_contract_quota(conn: sa.Connection, session_id: int, price_tier_id: int | None,
                       capacity: int, actor: str, now: datetime) -> int:
    """The contract customers' common track: the most all of them together take of a
    session's price tier (each customer's own track is its channel's quota)."""
    capacity = _capacity(capacity)
    if price_tier_id is not None:
        tier = conn.execute(sa.select(price_tiers.c.session_id).where(
            price_tiers.c.id == price_tier_id)).first()
        if tier is None or tier.session_id != session_id:
            raise _bad("price_tier_id")
    given = {"session_id": session_id, "price_tier_id": price_tier_id}
    return _put_quota(conn, quota_key("contract", **given), "contract", capacity, actor,
                      **given)


def storefront_channel(conn: sa.Connection, now: datetime) -> int:
    """The storefront's channel (code ``web``), created on first use."""
    found = channel_by_code(conn, STOREFRONT)
    if found is not None:
        return found.id
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    conn.execute(dialect.insert(channels).values(
        code=STOREFRONT, name="Storefront", kind="storefront", enabled=True,
        created_by="system", created_at=now).on_conflict_do_nothing(index_elements=["code"]))
    return channel_by_code(conn, STOREFRONT).id
