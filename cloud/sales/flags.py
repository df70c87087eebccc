"""Risk flags: operations keep a holder (by document) or a buyer (``buyer:<id>``, as orders
name it) from buying, from refunds or from entry, for a reason, until the flag expires or is
lifted.

- A flag is *live* while it is not lifted and its expiry (if any) is still ahead: read by
  time in the statement that asks, so an expired flag stops counting at once, with no job.
- ``buy`` is enforced by :func:`refuse_buying`, which every order calls before it holds
  anything (cloud/sales/orders.py ``create_order``: the box office, the API and the
  storefront alike); ``refunds`` by :func:`refuse_refund` in the refund request
  (cloud/sales/refunds.py); ``entry`` by the appliances, which receive it as a holder block
  through the change log (:mod:`cloud.sales.flag_blocks`).
- A holder is found by the keyed hash of the normalised number, compared under every key of
  the data key file (a rotation half done still finds it); the number is sealed for staff to
  see masked, never in clear.
- Adding and lifting are audited in the change's transaction; the audit names the holder
  only masked.

No Flask here: the pages and the API (``flag_pages.py``, ``flag_api.py``) only translate.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from cloud.core.audit import record
from cloud.core.errors import Code, HubError
from cloud.core.seal import Keyring, context, key_id_of, keyring_for
from cloud.sales import flag_blocks
from cloud.sales.holders import open_holder
from cloud.sales.tables import (
    FLAG_BLOCKS,
    FLAG_TARGETS,
    holders,
    orders,
    risk_flags,
    tickets,
)
from cloud.sales.tickets import normal_document
from sync.identity import mask_document
from sync.timeutil import to_iso, utcnow

MAX_REASON = 200
BUYER = re.compile(r"buyer:[1-9][0-9]{0,17}")
FLAG_STATES = ("live", "expired", "lifted")


class FlagError(HubError):
    """A risk flag the rules refuse to add or lift, and what a live flag refuses."""

    codes = {
        "flag_blocks_unknown": Code(422, "a flag blocks one of: buy, refunds, entry"),
        "flag_target_required": Code(422, "a flag names either a holder's document or a buyer, "
                                          "not both"),
        "flag_buyer_bad": Code(422, "a buyer is named buyer:<id>"),
        "flag_reason_required": Code(422, "say why (1 to %(high)s characters)"),
        "flag_entry_needs_holder": Code(422, "an entry flag names a holder's document: the "
                                             "gates know people by their documents"),
        "flag_expiry_past": Code(422, "a flag's expiry must be ahead"),
        "unknown_flag": Code(404, "no risk flag %(flag_id)s"),
        "flag_not_live": Code(409, "risk flag %(flag_id)s is %(state)s already"),
        "buyer_may_not_buy": Code(409, "a risk flag keeps this buyer from buying"),
        "holder_may_not_buy": Code(409, "a risk flag keeps a holder of this order from "
                                        "buying"),
        "buyer_refunds_blocked": Code(409, "a risk flag keeps refunds from this buyer"),
        "holder_refunds_blocked": Code(409, "a risk flag keeps refunds from a holder of these "
                                            "tickets"),
    }


@dataclass(frozen=True)
class Flag:
    """A flag as staff see it: the holder's document only masked."""

    id: int
    target: str
    blocks: str
    buyer: str | None
    doc_type: str | None
    doc_masked: str | None
    reason: str
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    lifted_by: str | None
    lifted_at: datetime | None
    lift_reason: str | None
    state: str
    venues: tuple[int, ...]


def live(now: datetime) -> sa.ColumnElement[bool]:
    """The condition of a live flag at ``now``: not lifted, not expired."""
    return sa.and_(risk_flags.c.lifted_at.is_(None),
                   sa.or_(risk_flags.c.expires_at.is_(None), risk_flags.c.expires_at > now))


def state_of(row, now: datetime) -> str:
    if row.lifted_at is not None:
        return "lifted"
    if row.expires_at is not None and row.expires_at <= now:
        return "expired"
    return "live"


def _reason(text: str) -> str:
    why = " ".join((text or "").split())
    if not 1 <= len(why) <= MAX_REASON or not why.isprintable():
        raise FlagError("flag_reason_required", high=MAX_REASON, field="reason")
    return why


def _check_target(blocks: str, holder: tuple[str, str] | None, buyer: str | None) -> None:
    if blocks not in FLAG_BLOCKS:
        raise FlagError("flag_blocks_unknown", field="blocks")
    if (holder is None) == (buyer is None):
        raise FlagError("flag_target_required", field="target")
    if buyer is not None and not (isinstance(buyer, str) and BUYER.fullmatch(buyer)):
        raise FlagError("flag_buyer_bad", field="buyer")
    if blocks == "entry" and holder is None:
        raise FlagError("flag_entry_needs_holder", field="target")


def add_flag(conn: sa.Connection, *, blocks: str, reason: str, actor: str,
             holder: tuple[str, str] | None = None, buyer: str | None = None,
             expires_at: datetime | None = None, now: datetime | None = None) -> int:
    """Flag a holder (``holder`` = (document type, number)) or a buyer (``buyer:<id>``);
    the flag's id. An entry flag's block is written to every venue's change log in this
    transaction. Refusals name their field (``blocks``, ``target``, ``buyer``,
    ``doc_number``, ``reason``, ``expires_at``)."""
    now = now or utcnow()
    _check_target(blocks, holder, buyer)
    why = _reason(reason)
    if expires_at is not None and expires_at <= now:
        raise FlagError("flag_expiry_past", field="expires_at")
    doc_type = number = None
    if holder is not None:
        doc_type = holder[0]
        try:
            number = normal_document(doc_type, holder[1])
        except HubError as e:
            e.params["field"] = "doc_number"
            raise
    ring = keyring_for(conn) if number is not None else None
    flag_id = conn.execute(sa.insert(risk_flags).values(
        target="holder" if holder is not None else "buyer", blocks=blocks, buyer=buyer,
        doc_type=doc_type, doc_hash=ring.doc_hash(number) if ring else None, reason=why,
        created_by=actor, created_at=now, expires_at=expires_at, venues=[])
        .returning(risk_flags.c.id)).scalar_one()
    if ring is not None:
        conn.execute(sa.update(risk_flags).where(risk_flags.c.id == flag_id).values(
            sealed_doc_number=ring.seal(number, context("risk_flags", flag_id, "doc_number"))))
    if blocks == "entry":
        flag_blocks.block_everywhere(conn, flag_id, doc_type, number, now)
    record(conn, actor, "flag.add", f"risk_flag:{flag_id}", None, {
        "blocks": blocks, "buyer": buyer, "doc_type": doc_type,
        "doc": mask_document(number) if number else None, "reason": why,
        "expires_at": to_iso(expires_at) if expires_at else None})
    return flag_id


def lift_flag(conn: sa.Connection, flag_id: int, actor: str, reason: str,
              now: datetime | None = None) -> None:
    """Lift a live flag, saying why: it stops counting now, and an entry flag's block is
    deleted at every venue it was sent to, in this transaction. A flag lifted or expired
    already is refused (``flag_not_live``): one conditional UPDATE, so of two lifts racing
    one wins."""
    now = now or utcnow()
    why = _reason(reason)
    row = conn.execute(sa.select(risk_flags).where(risk_flags.c.id == flag_id)).first()
    if row is None:
        raise FlagError("unknown_flag", flag_id=flag_id, field="flag_id")
    moved = conn.execute(sa.update(risk_flags).where(risk_flags.c.id == flag_id, live(now))
                         .values(lifted_by=actor, lifted_at=now, lift_reason=why)).rowcount
    if moved != 1:
        now_row = conn.execute(sa.select(risk_flags).where(risk_flags.c.id == flag_id)).one()
        raise FlagError("flag_not_live", flag_id=flag_id, state=state_of(now_row, now),
                        field="flag_id")
    if row.blocks == "entry":
        flag_blocks.unblock(conn, row, now)
    record(conn, actor, "flag.lift", f"risk_flag:{flag_id}", {"state": "live"},
           {"state": "lifted", "reason": why})


# -- enforcement ------------------------------------------------------------------------------


def _flag_for(conn: sa.Connection, blocks: str, now: datetime, *, buyers=(), hashes=()):
    """The first live flag of kind ``blocks`` naming one of these buyers or document hashes,
    as (buyer, doc_hash) of the flag; None when there is none."""
    named = []
    if buyers:
        named.append(risk_flags.c.buyer.in_(sorted(set(buyers))))
    if hashes:
        named.append(risk_flags.c.doc_hash.in_(sorted(set(hashes))))
    if not named:
        return None
    return conn.execute(sa.select(risk_flags.c.buyer, risk_flags.c.doc_hash).where(
        risk_flags.c.blocks == blocks, live(now), sa.or_(*named))
        .order_by(risk_flags.c.id).limit(1)).first()


def refuse_buying(conn: sa.Connection, buyer: str | None, numbers: list[str | None],
                  now: datetime | None = None) -> None:
    """Refuse an order (``buyer_may_not_buy``; ``holder_may_not_buy`` naming
    ``lines.<i>.holder``) when a
    live ``buy`` flag names its buyer or the holder of one of its lines (``numbers``: each
    line's normalised document number, None for a line without a holder)."""
    now = now or utcnow()
    ring = keyring_for(conn) if any(numbers) else None
    by_hash = {h: i for i, n in enumerate(numbers) if n for h in ring.doc_hashes(n)}
    found = _flag_for(conn, "buy", now, buyers=[buyer] if buyer else [], hashes=list(by_hash))
    if found is None:
        return
    if found.buyer is not None:
        raise FlagError("buyer_may_not_buy", field="buyer")
    raise FlagError("holder_may_not_buy", field=f"lines.{by_hash[found.doc_hash]}.holder")


def refuse_refund(conn: sa.Connection, order_id: int, ticket_ids: list[int],
                  now: datetime | None = None) -> None:
    """Refuse a refund request (``buyer_refunds_blocked``, ``holder_refunds_blocked``) when a
    live ``refunds`` flag names the order's buyer or the holder of one of the tickets."""
    now = now or utcnow()
    buyer = conn.execute(sa.select(orders.c.buyer).where(orders.c.id == order_id)).scalar()
    rows = conn.execute(sa.select(holders).join(tickets, tickets.c.holder_id == holders.c.id)
                        .where(tickets.c.id.in_(ticket_ids))).all() if ticket_ids else []
    ring = keyring_for(conn) if rows else None
    hashes = [h for r in rows for h in ring.doc_hashes(open_holder(ring, r).doc_number)]
    found = _flag_for(conn, "refunds", now, buyers=[buyer] if buyer else [], hashes=hashes)
    if found is None:
        return
    if found.buyer is not None:
        raise FlagError("buyer_refunds_blocked", field="buyer")
    raise FlagError("holder_refunds_blocked", field="tickets")


# -- reading ----------------------------------------------------------------------------------


def _view(ring: Keyring | None, row, now: datetime) -> Flag:
    doc = None
    if row.sealed_doc_number is not None and ring is not None:
        doc = mask_document(ring.open(row.sealed_doc_number,
                                      context("risk_flags", row.id, "doc_number")))
    return Flag(row.id, row.target, row.blocks, row.buyer, row.doc_type, doc, row.reason,
                row.created_by, row.created_at, row.expires_at, row.lifted_by, row.lifted_at,
                row.lift_reason, state_of(row, now), tuple(row.venues or ()))


def get_flag(conn: sa.Connection, flag_id: int, now: datetime | None = None) -> Flag:
    row = conn.execute(sa.select(risk_flags).where(risk_flags.c.id == flag_id)).first()
    if row is None:
        raise FlagError("unknown_flag", flag_id=flag_id, field="flag_id")
    return _view(keyring_for(conn) if row.sealed_doc_number else None, row, now or utcnow())


def list_flags(conn: sa.Connection, *, state: str | None = "live", blocks: str | None = None,
               target: str | None = None, buyer: str | None = None,
               number: tuple[str, str] | None = None, now: datetime | None = None,
               limit: int = 200) -> list[Flag]:
    """Flags, newest first: by state (``live``, ``expired``, ``lifted``; None: all), what
    they block, their target, a buyer, or a holder's document (type, number)."""
    now = now or utcnow()
    q = sa.select(risk_flags).order_by(risk_flags.c.id.desc()).limit(limit)
    if state == "live":
        q = q.where(live(now))
    elif state == "lifted":
        q = q.where(risk_flags.c.lifted_at.is_not(None))
    elif state == "expired":
        q = q.where(risk_flags.c.lifted_at.is_(None), risk_flags.c.expires_at <= now)
    if blocks is not None:
        q = q.where(risk_flags.c.blocks == blocks)
    if target is not None:
        q = q.where(risk_flags.c.target == target)
    if buyer is not None:
        q = q.where(risk_flags.c.buyer == buyer)
    ring = keyring_for(conn)
    if number is not None:
        q = q.where(risk_flags.c.doc_hash.in_(ring.doc_hashes(normal_document(*number))))
    return [_view(ring, r, now) for r in conn.execute(q)]


# -- a data key rotation ----------------------------------------------------------------------


def reseal_flags(conn: sa.Connection, after_id: int, limit: int) -> tuple[int | None, int, int]:
    """One batch of a data key rotation: the holder flags after ``after_id`` sealed again,
    and their document hash made again, under the current key (as ``reseal_holders``)."""
    ring = keyring_for(conn)
    rows = conn.execute(sa.select(risk_flags.c.id, risk_flags.c.sealed_doc_number).where(
        risk_flags.c.id > after_id, risk_flags.c.sealed_doc_number.is_not(None))
        .order_by(risk_flags.c.id).limit(limit)).all()
    if not rows:
        return None, 0, 0
    stale = [r for r in rows if key_id_of(r.sealed_doc_number) != ring.current_id]
    for r in stale:
        where = context("risk_flags", r.id, "doc_number")
        number = ring.open(r.sealed_doc_number, where)
        conn.execute(sa.update(risk_flags).where(risk_flags.c.id == r.id).values(
            sealed_doc_number=ring.seal(number, where), doc_hash=ring.doc_hash(number)))
    return rows[-1].id, len(rows), len(stale)


def count_flags(conn: sa.Connection) -> int:
    return conn.execute(sa.select(sa.func.count()).select_from(risk_flags).where(
        risk_flags.c.sealed_doc_number.is_not(None))).scalar_one()


__all__ = ["FLAG_BLOCKS", "FLAG_STATES", "FLAG_TARGETS", "Flag", "FlagError", "add_flag",
           "count_flags", "get_flag", "lift_flag", "list_flags", "live", "refuse_buying",
           "refuse_refund", "reseal_flags", "state_of"]
