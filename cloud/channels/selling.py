"""Selling through a channel: the channel must be on, within its sale window and, for a booth,
outlet or kiosk, its opening hours; the order is then the orders' own
(:func:`cloud.sales.orders.create_order`), named as the channel's and counted against the
channel's quotas besides every other (its own per session × tier or product × day and, for a
contract customer, the contract customers' common track), where they exist."""

from __future__ import annotations

import dataclasses
from datetime import datetime

import sqlalchemy as sa

from cloud.channels.channels import channel
from cloud.channels.errors import ChannelError
from cloud.ledger.tables import partners
from cloud.sales.order_plan import OrderRequest
from cloud.sales.orders import OrderCreated, create_order
from sync.timeutil import CHINA


def within_hours(hours: dict | None, now: datetime) -> bool:
    """Whether ``now`` falls in the opening hours (China time); no hours: always."""
    if not hours:
        return True
    local = now.astimezone(CHINA)
    return local.weekday() in hours["days"] and \
        hours["opens"] <= local.strftime("%H:%M") < hours["closes"]


def open_channel(conn: sa.Connection, channel_id: int, now: datetime):
    """The channel, if it sells now; else the refusal: ``channel_off`` or ``channel_closed``
    (outside its sale window or opening hours)."""
    return check_open(channel(conn, channel_id), now)


def check_open(ch, now: datetime):
    """:func:`open_channel` of a channel's row already read."""
    if not ch.enabled:
        raise ChannelError("channel_off", channel=ch.code, field="channel")
    if (ch.sale_opens_at is not None and now < ch.sale_opens_at) or (
            ch.sale_closes_at is not None and now >= ch.sale_closes_at) \
            or not within_hours(ch.opening_hours, now):
        raise ChannelError("channel_closed", channel=ch.code, field="channel")
    return ch


def scopes_of(ch) -> tuple[str, ...]:
    """The quota scopes a channel's sales count against (cloud/inventory/quotas.py
    ``scoped_key``)."""
    return (f"chan:{ch.id}",) + (("contract",) if ch.kind == "contract" else ())


def sold_via(conn: sa.Connection, ch, partner_kind: str | None = None) -> str:
    """How the ledger names a channel's sales (its split rules' ``channel``): the storefront's
    ``web``, a booth's or outlet's ``box_office``, a kiosk's, a contract customer's, and a
    distributor's or agent's — an API client's by its partner's kind (``partner_kind``, when
    the caller has read the partner already)."""
    if ch.kind == "api":
        kind = partner_kind or conn.execute(sa.select(partners.c.kind).where(
            partners.c.id == ch.partner_id)).scalar()
        return kind if kind in ("distributor", "agent") else "distributor"
    return {"storefront": "web", "booth": "box_office", "outlet": "box_office"}.get(
        ch.kind, ch.kind)


def sell_through(conn: sa.Connection, channel_id: int, req: OrderRequest,
                 now: datetime) -> OrderCreated:
    """Hold an order sold through a channel, in the caller's transaction; the channel's
    refusals first, then the orders' (``sold_out`` naming the channel's quota when it is the
    one without room)."""
    return sell_on(conn, channel(conn, channel_id), req, now)


def sell_on(conn: sa.Connection, ch, req: OrderRequest, now: datetime,
            partner_kind: str | None = None) -> OrderCreated:
    """:func:`sell_through` a channel's row already read (and its partner's kind, for an API
    client's channel)."""
    check_open(ch, now)
    return create_order(conn, dataclasses.replace(
        req, channel_id=ch.id, quota_scopes=scopes_of(ch),
        sold_via=sold_via(conn, ch, partner_kind)), now)
