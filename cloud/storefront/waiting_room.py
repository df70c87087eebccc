"""The waiting room of a session's on-sale moment (issue 17 §2, docs/waiting-room.md).

A visitor who enters a session's queue gets the next *number* of the session's counter (one
``UPDATE … RETURNING`` on the session's ``waiting_rooms`` row: distinct and consecutive under
any race, on PostgreSQL and SQLite) inside a *queue token* signed by the hub (HMAC-SHA256
under a key derived from the hub's secret with HKDF). Admission is a token bucket of numbers:
the room admits ``rate`` numbers a second and lets at most ``burst`` through at once after a
quiet moment; number *n* is admitted once the admitted count reaches *n*. While arrivals stay
under the rate every visitor is admitted on entering, so the queue is only felt when demand
exceeds it, and then everyone waits in the order they came.

What the promise rests on:

- First come: numbers are handed out in the order the database serialises the updates, and
  admitted in number order.
- A place cannot be improved: presenting a token again keeps its number; entering again gives
  a new, later number; a token is bound to its session, expires, and cannot be made or altered
  without the hub's secret. Entering is limited per client address (the web's limits).
- The rate holds: the admitted count grows from the moment of the last number handed out at
  the rate in force then, so a quiet hour does not bank an hour of admissions, and a changed
  rate never takes back an admission already made.
- An admitted visitor gets an *admission pass* (signed under another derived key, so a queue
  token is never a pass; bound to the session; short-lived), which the checkout checks with
  :func:`check_admission`; :func:`needs_pass` says whether a session currently sells through
  its room. A poll costs one read of one row and writes nothing.

Rules only: no Flask here (``cloud/storefront/queue_api.py`` is the HTTP side).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy.dialects import postgresql, sqlite

from cloud.catalog.tables import sessions
from cloud.core import audit
from cloud.core.errors import PROTOCOL, Code, HubError
from cloud.inventory.seats import InventoryError
from cloud.storefront.tables import waiting_rooms

# the settings, with their defaults (docs/waiting-room.md); WAITING_ROOM_BURST unset is one
# second's worth of the rate
SETTINGS: dict[str, Any] = {"WAITING_ROOM_RATE": 0.0, "WAITING_ROOM_BURST": None,
                            "WAITING_ROOM_PASS_MINUTES": 10, "WAITING_ROOM_TOKEN_HOURS": 12}
MAX_RATE = 100_000.0
MAX_BURST = 1_000_000
_US = 1_000_000
_TOKEN_INFO = b"wicket waiting room token v1"
_PASS_INFO = b"wicket waiting room pass v1"
_SHAPE = re.compile(r"(wq1|wp1)\.(\d{1,10})\.(\d{1,15})\.(\d{1,12})\.([A-Za-z0-9_-]{43})")


class QueueError(HubError):
    """A refused request of the waiting room, or a checkout without a good pass."""

    codes = {
        **PROTOCOL,
        "bad_field": Code(400, "%(field)s is missing or not valid"),
        "unknown_session": InventoryError.codes["unknown_session"],
        "queue_not_open": Code(409, "the sale of session %(session_id)s is not open now "
                                    "(it opens at %(opens_at)s)"),
        "queue_token_invalid": Code(403, "this queue token is not one the hub gave for "
                                         "session %(session_id)s: enter the queue again"),
        "queue_token_expired": Code(403, "this queue token has expired: enter the queue "
                                         "again"),
        "admission_required": Code(403, "session %(session_id)s sells through its waiting "
                                        "room: enter the queue and come back with its pass"),
        "admission_pass_invalid": Code(403, "this admission pass is not one the hub gave for "
                                            "session %(session_id)s"),
        "admission_pass_expired": Code(403, "this admission pass has expired: ask the queue "
                                            "for a new one"),
        "bad_queue_setting": Code(422, "%(field)s must be %(expected)s"),
    }


# -- settings ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RoomConfig:
    """The hub's waiting-room settings and the secret its tokens are signed with."""

    secret: bytes
    rate: float = 0.0  # numbers admitted per second; 0: no waiting room unless a session says
    burst: int | None = None  # None: one second's worth of the rate
    pass_minutes: int = 10
    token_hours: int = 12

    def __repr__(self) -> str:
        return f"RoomConfig(rate={self.rate}, burst={self.burst}, <secret hidden>)"


def _number(name: str, value: Any, low: float, high: float, whole: bool) -> float:
    expected = (f"a whole number from {int(low)} to {int(high)}" if whole
                else f"a number from {low:g} to {high:g}")
    try:
        number = int(value) if whole else float(value)
    except (TypeError, ValueError):
        raise QueueError("bad_queue_setting", field=name, expected=expected) from None
    if isinstance(value, bool) or not low <= number <= high or (
            whole and isinstance(value, float) and not value.is_integer()):
        raise QueueError("bad_queue_setting", field=name, expected=expected)
    return number


def room_config(secret: str | bytes, values: Mapping[str, Any]) -> RoomConfig:
    """The settings of :data:`SETTINGS` from ``values`` (a missing or empty one: its default),
    checked; ``secret`` is the hub's secret (``SECRET_KEY``)."""
    def get(name):
        value = values.get(name)
        return SETTINGS[name] if value is None or value == "" else value

    burst = get("WAITING_ROOM_BURST")
    return RoomConfig(
        secret=secret.encode() if isinstance(secret, str) else secret,
        rate=_number("WAITING_ROOM_RATE", get("WAITING_ROOM_RATE"), 0, MAX_RATE, False),
        burst=None if burst is None else int(_number("WAITING_ROOM_BURST", burst, 1,
                                                     MAX_BURST, True)),
        pass_minutes=int(_number("WAITING_ROOM_PASS_MINUTES", get("WAITING_ROOM_PASS_MINUTES"),
                                 1, 24 * 60, True)),
        token_hours=int(_number("WAITING_ROOM_TOKEN_HOURS", get("WAITING_ROOM_TOKEN_HOURS"),
                                1, 72, True)))


def _burst(rate: float, burst: int | None) -> int:
    return burst if burst is not None else max(1, math.ceil(rate))


# -- signed tokens -------------------------------------------------------------------------------

def _subkey(secret: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret)


def _mac(key: bytes, text: str) -> str:
    digest = hmac.new(key, text.encode("ascii"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def _sign(config: RoomConfig, kind: str, session_id: int, number: int,
          expires: datetime) -> str:
    key = _subkey(config.secret, _TOKEN_INFO if kind == "wq1" else _PASS_INFO)
    text = f"{kind}.{session_id}.{number}.{int(expires.timestamp())}"
    return f"{text}.{_mac(key, text)}"


def _refuse(kind: str, session_id: int, expired: bool) -> None:
    if kind == "wq1":
        if expired:
            raise QueueError("queue_token_expired", session_id=session_id)
        raise QueueError("queue_token_invalid", session_id=session_id)
    if expired:
        raise QueueError("admission_pass_expired", session_id=session_id)
    raise QueueError("admission_pass_invalid", session_id=session_id)


def _verify(config: RoomConfig, kind: str, session_id: int, token: Any, now: datetime) -> int:
    """The number a token of ``kind`` signed for ``session_id`` holds, or the refusal."""
    found = _SHAPE.fullmatch(token) if isinstance(token, str) else None
    if found is None or found[1] != kind:
        _refuse(kind, session_id, expired=False)
    key = _subkey(config.secret, _TOKEN_INFO if kind == "wq1" else _PASS_INFO)
    text = token.rsplit(".", 1)[0]
    if not hmac.compare_digest(_mac(key, text), found[5]) or int(found[2]) != session_id:
        _refuse(kind, session_id, expired=False)
    if int(found[4]) <= now.timestamp():
        _refuse(kind, session_id, expired=True)
    return int(found[3])


# -- the room's state ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Room:
    """A session's room as read at one moment: its settings in force and its queue."""

    session_id: int
    rate: float  # in force for the session now (0: no waiting room)
    issued: int
    frontier: float
    anchor_us: int | None
    anchor_rate: float

    def admitted_at(self, now: datetime) -> float:
        """How many numbers are admitted at ``now`` (counting from the last number handed
        out, at the rate in force then)."""
        if self.anchor_us is None:
            return 0.0
        elapsed = max(0, _micros(now) - self.anchor_us) / _US
        return self.frontier + self.anchor_rate * elapsed


def _micros(now: datetime) -> int:
    return int(round(now.timestamp() * _US))


def _settings_in_force(config: RoomConfig, row) -> tuple[float, int]:
    """The rate and burst in force for a session whose room row is ``row`` (or None)."""
    rate = row.rate if row is not None and row.rate is not None else config.rate
    burst = row.burst if row is not None and row.burst is not None else config.burst
    return rate, _burst(rate, burst)


def _room_of(session_id: int, row, rate: float) -> Room:
    if row is None or row.issued is None:
        return Room(session_id, rate, 0, 0.0, None, 0.0)
    return Room(session_id, rate, row.issued, row.frontier, row.anchor_us, row.anchor_rate)


def _room_row(conn: sa.Connection, session_id: int):
    return conn.execute(sa.select(waiting_rooms).where(
        waiting_rooms.c.session_id == session_id)).first()


def read_room(conn: sa.Connection, config: RoomConfig, session_id: int) -> Room:
    """The session's room now (a room nobody entered yet has issued nothing)."""
    row = _room_row(conn, session_id)
    return _room_of(session_id, row, _settings_in_force(config, row)[0])


def needs_pass(conn: sa.Connection, config: RoomConfig, session_id: int) -> bool:
    """Whether an order for the session must show an admission pass: its waiting room is on
    (the session's rate, else the hub's, above 0)."""
    return _settings_in_force(config, _room_row(conn, session_id))[0] > 0


def _selling_room(conn: sa.Connection, session_id: int, now: datetime):
    """The session's room row (its columns None when it has none), read in the statement
    that refuses a session not selling now: unknown (as the public availability answers for
    any session not on sale) or, on sale but outside its sale window, not open."""
    w = waiting_rooms.c
    s = conn.execute(
        sa.select(sessions.c.on_sale, sessions.c.state, sessions.c.sale_opens_at,
                  sessions.c.sale_closes_at, w.rate, w.burst, w.issued, w.frontier,
                  w.anchor_us, w.anchor_rate)
        .select_from(sessions.outerjoin(waiting_rooms, w.session_id == sessions.c.id))
        .where(sessions.c.id == session_id)).first()
    if s is None or not s.on_sale or s.state == "cancelled":
        raise QueueError("unknown_session", session_id=session_id)
    if (s.sale_opens_at is not None and now < s.sale_opens_at) or (
            s.sale_closes_at is not None and now >= s.sale_closes_at):
        opens = s.sale_opens_at.isoformat() if s.sale_opens_at and now < s.sale_opens_at \
            else None
        raise QueueError("queue_not_open", session_id=session_id, opens_at=opens)
    return s if s.issued is not None else None


def _make_row(conn: sa.Connection, session_id: int) -> None:
    """The session's row, unless it exists (a racing maker's row wins)."""
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    conn.execute(insert(waiting_rooms).values(session_id=session_id)
                 .on_conflict_do_nothing(index_elements=["session_id"]))


def _take_number(conn: sa.Connection, session_id: int, row, rate: float, burst: int,
                 now: datetime) -> tuple[int, Room]:
    """The session's next number and the room just after it, in one statement: the admitted
    count is brought up to ``now`` at the rate in force since the last number (never past
    ``burst`` beyond the numbers handed out: a quiet moment banks no more than a burst), the
    anchor moves to ``now`` with the rate in force from now on, and the counter moves on by
    one. ``row`` is the session's room row as read before (None: make it), and ``rate`` and
    ``burst`` the settings in force."""
    if row is None:
        _make_row(conn, session_id)
    w = waiting_rooms.c
    now_us = sa.literal(_micros(now), sa.BigInteger)
    later = sa.and_(w.anchor_us.is_not(None), w.anchor_us < now_us)
    grown = w.frontier + w.anchor_rate * sa.case((later, now_us - w.anchor_us), else_=0) \
        / sa.literal(float(_US), sa.Float)
    cap = w.issued + sa.literal(burst, sa.Integer)
    got = conn.execute(
        sa.update(waiting_rooms).where(w.session_id == session_id).values(
            frontier=sa.case((w.anchor_us.is_(None), cap), (grown < cap, grown), else_=cap),
            anchor_us=sa.case((later, now_us), (w.anchor_us.is_(None), now_us),
                              else_=w.anchor_us),
            anchor_rate=sa.literal(rate, sa.Float), issued=w.issued + 1)
        .returning(w.issued, w.frontier, w.anchor_us, w.anchor_rate)).one()
    return int(got.issued), Room(session_id, rate, int(got.issued), float(got.frontier),
                                 int(got.anchor_us), float(got.anchor_rate))


def set_session_room(conn: sa.Connection, config: RoomConfig, session_id: int,
                     rate: float | None, burst: int | None, now: datetime, actor: str) -> None:
    """Give a session a rate and burst of its own (None: the hub's; a rate of 0 turns its
    room off). The queue's admitted count is brought up to ``now`` at the old rate first, so
    the new rate counts from now on and no admission is taken back."""
    if rate is not None:
        rate = _number("rate", rate, 0, MAX_RATE, False)
    if burst is not None:
        burst = int(_number("burst", burst, 1, MAX_BURST, True))
    if conn.execute(sa.select(sessions.c.id).where(sessions.c.id == session_id)).first() \
            is None:
        raise QueueError("unknown_session", session_id=session_id)
    before = read_room(conn, config, session_id)
    _make_row(conn, session_id)
    row = conn.execute(sa.select(waiting_rooms).where(waiting_rooms.c.session_id == session_id)
                       .with_for_update()).one()
    room = Room(session_id, 0, row.issued, row.frontier, row.anchor_us, row.anchor_rate)
    values: dict[str, Any] = {"rate": rate, "burst": burst}
    if row.anchor_us is not None:
        new_rate = rate if rate is not None else config.rate
        values.update(frontier=room.admitted_at(now), anchor_rate=new_rate,
                      anchor_us=max(row.anchor_us, _micros(now)))
    conn.execute(sa.update(waiting_rooms).where(waiting_rooms.c.session_id == session_id)
                 .values(**values))
    audit.record(conn, actor, "storefront.waiting_room", f"session:{session_id}",
                 before={"rate": before.rate}, after={"rate": rate, "burst": burst})


# -- entering, polling, checking -----------------------------------------------------------------

@dataclass(frozen=True)
class Place:
    """A visitor's place in a session's queue, as answered to them."""

    session_id: int
    number: int
    token: str
    ahead: int  # numbers before this one not yet admitted
    estimate_s: int  # seconds until admission at the present rate (0 when admitted)
    admitted: bool
    pass_token: str | None
    pass_expires_at: datetime | None
    rate: float


def _place(config: RoomConfig, room: Room, number: int, token: str, now: datetime) -> Place:
    count = room.admitted_at(now)
    admitted = room.rate <= 0 or number <= count + 1e-9
    if admitted:
        expires = now.replace(microsecond=0) + timedelta(minutes=config.pass_minutes)
        return Place(room.session_id, number, token, 0, 0, True,
                     _sign(config, "wp1", room.session_id, number, expires), expires,
                     room.rate)
    ahead = max(0, number - 1 - math.floor(count + 1e-9))
    rate = room.anchor_rate if room.anchor_rate > 0 else room.rate
    estimate = math.ceil((number - count) / rate) if rate > 0 else 0
    return Place(room.session_id, number, token, ahead, estimate, False, None, None,
                 room.rate)


def enter(conn: sa.Connection, config: RoomConfig, session_id: int, now: datetime,
          token: str | None = None) -> tuple[Place, bool]:
    """A visitor's place in the session's queue, and whether it is new. With the ``token``
    the visitor was given before, the same number (never a better one); without, the next
    number in a new token. Refused while the session is not selling."""
    row = _selling_room(conn, session_id, now)
    rate, burst = _settings_in_force(config, row)
    if token is not None:
        number = _verify(config, "wq1", session_id, token, now)
        return _place(config, _room_of(session_id, row, rate), number, token, now), False
    number, room = _take_number(conn, session_id, row, rate, burst, now)
    expires = now.replace(microsecond=0) + timedelta(hours=config.token_hours)
    token = _sign(config, "wq1", session_id, number, expires)
    return _place(config, room, number, token, now), True


def poll(conn: sa.Connection, config: RoomConfig, session_id: int, token: str,
         now: datetime) -> Place:
    """Where a queue token stands at ``now`` (with a pass once admitted); reads only."""
    row = _selling_room(conn, session_id, now)
    number = _verify(config, "wq1", session_id, token, now)
    return _place(config, _room_of(session_id, row, _settings_in_force(config, row)[0]),
                  number, token, now)


def check_admission(conn: sa.Connection, config: RoomConfig, session_id: int,
                    pass_token: str | None, now: datetime) -> bool:
    """For the checkout, before an order of the session is made: False when the session
    needs no pass (its room is off), True for a good pass; else a :class:`QueueError`
    (``admission_required``, ``admission_pass_invalid``, ``admission_pass_expired``)."""
    if not needs_pass(conn, config, session_id):
        return False
    if pass_token is None or pass_token == "":
        raise QueueError("admission_required", session_id=session_id)
    _verify(config, "wp1", session_id, pass_token, now)
    return True

