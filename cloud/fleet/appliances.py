"""Appliances: registration with a one-time enrollment token, enrollment, credentials, revocation.

Tokens and credentials are random 256-bit secrets shown once; the hub keeps only their
SHA-256, so a copy of the database opens no appliance's door.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from cloud.core.audit import SYSTEM, record
from cloud.core.errors import PROTOCOL, Code, HubError
from cloud.core.trust import signing_keys
from cloud.fleet.tables import appliance_commands, appliance_lanes, appliances
from sync.credentials import WeakSecret, check_credential, check_token
from sync.timeutil import utcnow

TOKEN_TTL = timedelta(hours=24)


class ApplianceError(HubError):
    """An enrollment, credential or appliance request that is refused."""

    codes = {
        "unauthorized": PROTOCOL["unauthorized"],
        # a token or credential that is not well formed or guessable (sync/credentials.py)
        "token_malformed": Code(400, "this enrollment token is not valid"),
        "bad_credential": Code(400, "a credential must be 43 to 128 URL-safe base64 "
                                    "characters"),
        "weak_secret": Code(400, "this secret is too predictable"),
        "token_unknown": Code(400, "this enrollment token is not valid (or was already used)"),
        "token_used": Code(400, "this enrollment token was already used"),
        "token_expired": Code(400, "this enrollment token has expired; ask the hub for a new "
                                   "one"),
        "unknown_appliance": Code(404, "no appliance %(appliance_id)s"),
        "bad_command": Code(422, "command must be one of %(commands)s"),
    }


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _utc(dt: datetime | None) -> datetime | None:
    return dt.replace(tzinfo=UTC) if dt is not None and dt.tzinfo is None else dt


@dataclass(frozen=True)
class Registered:
    id: int
    token: str
    expires_at: datetime


def register(conn: sa.Connection, venue_id: int, name: str,
             now: datetime | None = None, actor: str = SYSTEM) -> Registered:
    """A new appliance for a venue, with its one-time enrollment token (shown once). The token
    is hexadecimal: a field tech may type it, and it can never be taken for a command-line
    option (a URL-safe token starts with '-' one time in 64)."""
    now = now or utcnow()
    token = secrets.token_hex(32)
    appliance_id = conn.execute(sa.insert(appliances).values(
        venue_id=venue_id, name=name, state="pending", token_hash=_hash(token),
        token_expires_at=now + TOKEN_TTL, created_at=now)).inserted_primary_key[0]
    record(conn, actor, "appliance.register", f"appliance:{appliance_id}", None,
           {"venue_id": venue_id, "name": name})
    return Registered(appliance_id, token, now + TOKEN_TTL)


@dataclass(frozen=True)
class Enrolled:
    appliance_id: int
    venue_id: int
    credential: str
    keys: list[dict]


def enroll(conn: sa.Connection, token: str, now: datetime | None = None) -> Enrolled:
    """A malformed token is refused before it is looked up (``token_malformed``)."""
    now = now or utcnow()
    try:
        check_token(token)
    except WeakSecret as e:
        raise ApplianceError(e.code, str(e)) from None
    row = conn.execute(sa.select(appliances).where(appliances.c.token_hash == _hash(token))
                       .with_for_update()).first()
    if row is None:
        raise ApplianceError("token_unknown")
    if row.state != "pending":
        raise ApplianceError("token_used")
    if _utc(row.token_expires_at) < now:
        raise ApplianceError("token_expired")
    credential = secrets.token_urlsafe(32)
    conn.execute(sa.update(appliances).where(appliances.c.id == row.id).values(
        state="active", token_hash=None, credential_hash=_hash(credential), enrolled_at=now,
        last_seen_at=now))
    keys = [{"key_id": k.key_id, "public_key": k.public_key} for k in conn.execute(
        sa.select(signing_keys).where(signing_keys.c.state != "retired"))]
    return Enrolled(row.id, row.venue_id, credential, keys)


@dataclass(frozen=True)
class Appliance:
    id: int
    venue_id: int


def authenticate(conn: sa.Connection, credential: str, now: datetime | None = None,
                 touch: bool = True) -> Appliance:
    """The active appliance of ``credential``; ``touch`` notes that it was seen ``now``."""
    row = conn.execute(sa.select(appliances.c.id, appliances.c.venue_id, appliances.c.state)
                       .where(appliances.c.credential_hash == _hash(credential))).first()
    if row is None or row.state != "active":
        raise ApplianceError("unauthorized", "unknown or revoked appliance credential")
    if touch:
        conn.execute(sa.update(appliances).where(appliances.c.id == row.id)
                     .values(last_seen_at=now or utcnow()))
    return Appliance(row.id, row.venue_id)


def revoke(conn: sa.Connection, appliance_id: int, actor: str = SYSTEM) -> None:
    before = conn.execute(sa.select(appliances.c.state)
                          .where(appliances.c.id == appliance_id)).scalar()
    conn.execute(sa.update(appliances).where(appliances.c.id == appliance_id)
                 .values(state="revoked", token_hash=None))
    record(conn, actor, "appliance.revoke", f"appliance:{appliance_id}", {"state": before},
           {"state": "revoked"})


def rename(conn: sa.Connection, appliance_id: int, name: str, actor: str = SYSTEM) -> None:
    before = conn.execute(sa.select(appliances.c.name)
                          .where(appliances.c.id == appliance_id)).scalar()
    if before is None:
        raise ApplianceError("unknown_appliance", appliance_id=appliance_id)
    conn.execute(sa.update(appliances).where(appliances.c.id == appliance_id)
                 .values(name=name))
    record(conn, actor, "appliance.rename", f"appliance:{appliance_id}", {"name": before},
           {"name": name})


COMMANDS = ("resync", "roll_credential", "wipe")


def queue_command(conn: sa.Connection, appliance_id: int, command: str,
                  actor: str = SYSTEM) -> None:
    if command not in COMMANDS:
        raise ApplianceError("bad_command", commands=", ".join(COMMANDS))
    conn.execute(sa.insert(appliance_commands).values(appliance_id=appliance_id,
                                                      command=command, created_at=utcnow()))
    record(conn, actor, f"appliance.command.{command}", f"appliance:{appliance_id}")


def heartbeat(conn: sa.Connection, appliance: Appliance, reported: dict,
              appliance_time: datetime | None, now: datetime | None = None,
              done: list[int] | tuple[int, ...] = ()) -> list[tuple[int, str]]:
    """Keep what the appliance reports; hand over the commands waiting for it, as (id, name),
    until it confirms them. ``done`` are the ids the appliance says it has carried out: only
    those are marked delivered, so an answer lost on the way loses no command (a wipe of a
    stolen appliance above all); the appliance gets it again in its next heartbeat."""
    now = now or utcnow()
    skew = (None if appliance_time is None
            else int((appliance_time - now).total_seconds() * 1000))
    conn.execute(sa.update(appliances).where(appliances.c.id == appliance.id)
                 .values(reported=reported, clock_skew_ms=skew, last_seen_at=now))
    if isinstance(reported.get("lanes"), list):
        keep_lanes(conn, appliance, reported["lanes"], now)
    if done:
        conn.execute(sa.update(appliance_commands)
                     .where(appliance_commands.c.appliance_id == appliance.id,
                            appliance_commands.c.id.in_(list(done)),
                            appliance_commands.c.delivered_at.is_(None))
                     .values(delivered_at=now))
    pending = conn.execute(
        sa.select(appliance_commands.c.id, appliance_commands.c.command)
        .where(appliance_commands.c.appliance_id == appliance.id,
               appliance_commands.c.delivered_at.is_(None))
        .order_by(appliance_commands.c.id)).all()
    return [(p.id, p.command) for p in pending]


MAX_LANES = 500


def keep_lanes(conn: sa.Connection, appliance: Appliance, reported: list,
               now: datetime | None = None) -> None:
    """Replace the lanes the hub keeps for this appliance with those it reports: each
    ``{code, gate, name}`` (gate: the gate's code at the venue, or None). The sync schema has
    checked the shape; a lane without a code is passed over, a repeated code counted once. The
    ops pages lead a lane's entries and devices to its gate through these (cloud/ops/attendance.py)."""
    now = now or utcnow()
    rows: dict[str, dict] = {}
    for lane in reported[:MAX_LANES]:
        if not isinstance(lane, dict) or not isinstance(lane.get("code"), str) \
                or not lane["code"]:
            continue
        gate = lane.get("gate")
        name = lane.get("name")
        rows.setdefault(lane["code"][:32], {
            "appliance_id": appliance.id, "code": lane["code"][:32],
            "gate_code": gate[:64] if isinstance(gate, str) and gate else None,
            "name": name[:128] if isinstance(name, str) else "", "reported_at": now})
    al = appliance_lanes.c
    known = {(r.code, r.gate_code, r.name) for r in conn.execute(
        sa.select(al.code, al.gate_code, al.name).where(al.appliance_id == appliance.id))}
    if known == {(r["code"], r["gate_code"], r["name"]) for r in rows.values()}:
        return  # unchanged since the last heartbeat: nothing written
    conn.execute(sa.delete(appliance_lanes).where(al.appliance_id == appliance.id))
    if rows:
        conn.execute(sa.insert(appliance_lanes), [rows[c] for c in sorted(rows)])


def roll_credential(conn: sa.Connection, appliance: Appliance,
                    credential: str | None = None) -> str:
    """A new credential; the old one stops working at once.

    The appliance may choose the new credential itself (and write it down before asking):
    then an answer lost on the way back cannot lock it out, it simply tries the new one. A
    chosen credential must pass :func:`sync.credentials.check_credential`."""
    if credential is not None:
        try:
            check_credential(credential)  # well formed, and not a guessable string
        except WeakSecret as e:
            raise ApplianceError(e.code, str(e)) from None
    credential = credential or secrets.token_urlsafe(32)
    conn.execute(sa.update(appliances).where(appliances.c.id == appliance.id)
                 .values(credential_hash=_hash(credential)))
    return credential


def lacking_key(conn: sa.Connection, key_id: int) -> list[int]:
    """Active appliances whose last heartbeat did not list ``key_id`` among their hub keys.

    A key may sign only once every active appliance has it: a code signed with a key an
    appliance does not know yet would be refused at its gate while that venue is offline."""
    rows = conn.execute(sa.select(appliances.c.id, appliances.c.reported)
                        .where(appliances.c.state == "active"))
    lacking = []
    for r in rows:
        keys = (r.reported or {}).get("keys") if isinstance(r.reported, dict) else None
        if not isinstance(keys, list) or key_id not in keys:
            lacking.append(r.id)
    return lacking
