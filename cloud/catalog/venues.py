"""Venues, zones, gates and lanes.

Zones, gates and lanes travel to the venue's appliances: every change to them is written to the
change log in the same transaction. (The seat map is imported and exported by
``cloud/inventory/seat_map.py``: sessions not yet on sale follow it.)
"""

from __future__ import annotations

from collections.abc import Iterable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa

from cloud.catalog.errors import CatalogError
from cloud.catalog.tables import gate_zones, gates, lanes, venues, zones
from cloud.core.audit import SYSTEM, record
from cloud.core.changes import record_change
from cloud.core.trust import publish_keys


def create_venue(conn: sa.Connection, code: str, name: str, address: str = "",
                 timezone: str = "Asia/Shanghai", actor: str = SYSTEM) -> int:
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise CatalogError("unknown_timezone", timezone=timezone) from None
    if conn.execute(sa.select(venues.c.id).where(venues.c.code == code)).first():
        raise CatalogError("venue_code_taken", code=code)
    venue_id = conn.execute(sa.insert(venues).values(
        code=code, name=name, address=address, timezone=timezone)).inserted_primary_key[0]
    record_change(conn, venue_id, {"type": "venue", "op": "upsert", "id": venue_id,
                                   "code": code, "name": name, "timezone": timezone})
    publish_keys(conn, venue_id)
    record(conn, actor, "venue.create", f"venue:{venue_id}", None,
           {"code": code, "name": name, "timezone": timezone})
    return venue_id


def add_zone(conn: sa.Connection, venue_id: int, code: str, name: str,
             actor: str = SYSTEM) -> int:
    if conn.execute(sa.select(zones.c.id).where(zones.c.venue_id == venue_id,
                                                zones.c.code == code)).first():
        raise CatalogError("zone_code_taken", code=code)
    zone_id = conn.execute(sa.insert(zones).values(
        venue_id=venue_id, code=code, name=name)).inserted_primary_key[0]
    record_change(conn, venue_id, {"type": "zone", "op": "upsert", "id": zone_id, "code": code,
                                   "name": name})
    record(conn, actor, "zone.create", f"zone:{zone_id}", None,
           {"venue_id": venue_id, "code": code, "name": name})
    return zone_id


def add_gate(conn: sa.Connection, venue_id: int, code: str, name: str,
             zone_codes: Iterable[str] = (), reentry: bool = False,
             realname_mode: str = "ticket", open_before_min: int = 30,
             close_after_min: int = 60, actor: str = SYSTEM, manual_entry: bool = False) -> int:
    """A gate and its entry policy. ``manual_entry``: its lanes also admit on a ticket number
    typed by signed-in staff (never on one a reader read)."""
    if conn.execute(sa.select(gates.c.id).where(gates.c.venue_id == venue_id,
                                                gates.c.code == code)).first():
        raise CatalogError("gate_code_taken", code=code)
    zone_ids = []
    for zc in zone_codes:
        row = conn.execute(sa.select(zones.c.id).where(zones.c.venue_id == venue_id,
                                                       zones.c.code == zc)).first()
        if row is None:
            raise CatalogError("gate_unknown_zone", gate=code, zone=zc)
        zone_ids.append(row[0])
    gate_id = conn.execute(sa.insert(gates).values(
        venue_id=venue_id, code=code, name=name, reentry=reentry, realname_mode=realname_mode,
        open_before_min=open_before_min, close_after_min=close_after_min,
        manual_entry=manual_entry)
    ).inserted_primary_key[0]
    if zone_ids:
        conn.execute(sa.insert(gate_zones), [{"gate_id": gate_id, "zone_id": z}
                                             for z in zone_ids])
    gate = {"type": "gate", "op": "upsert", "id": gate_id, "code": code, "name": name,
            "zones": sorted(zone_ids), "reentry": reentry, "realname_mode": realname_mode,
            "open_before_min": open_before_min, "close_after_min": close_after_min,
            "manual_entry": manual_entry}
    record_change(conn, venue_id, gate)
    record(conn, actor, "gate.create", f"gate:{gate_id}", None,
           {k: v for k, v in gate.items() if k not in ("type", "op")})
    return gate_id


def update_gate(conn: sa.Connection, gate_id: int, name: str, zone_codes: Iterable[str],
                reentry: bool, realname_mode: str, open_before_min: int, close_after_min: int,
                actor: str = SYSTEM, manual_entry: bool | None = None) -> None:
    """Change a gate's name, the zones it admits and its entry policy; the venue's appliances
    get the new gate in the same transaction. ``manual_entry`` None keeps it as it is."""
    old = conn.execute(sa.select(gates).where(gates.c.id == gate_id).with_for_update()).first()
    if old is None:
        raise CatalogError("unknown_gate", gate_id=gate_id)
    zone_ids = []
    for zc in zone_codes:
        row = conn.execute(sa.select(zones.c.id).where(zones.c.venue_id == old.venue_id,
                                                       zones.c.code == zc)).first()
        if row is None:
            raise CatalogError("gate_unknown_zone", gate=old.code, zone=zc)
        zone_ids.append(row[0])
    before_zones = sorted(conn.execute(sa.select(gate_zones.c.zone_id)
                                       .where(gate_zones.c.gate_id == gate_id)).scalars())
    if manual_entry is None:
        manual_entry = old.manual_entry
    conn.execute(sa.update(gates).where(gates.c.id == gate_id).values(
        name=name, reentry=reentry, realname_mode=realname_mode,
        open_before_min=open_before_min, close_after_min=close_after_min,
        manual_entry=manual_entry))
    conn.execute(sa.delete(gate_zones).where(gate_zones.c.gate_id == gate_id))
    if zone_ids:
        conn.execute(sa.insert(gate_zones), [{"gate_id": gate_id, "zone_id": z}
                                             for z in sorted(set(zone_ids))])
    gate = {"type": "gate", "op": "upsert", "id": gate_id, "code": old.code, "name": name,
            "zones": sorted(set(zone_ids)), "reentry": reentry, "realname_mode": realname_mode,
            "open_before_min": open_before_min, "close_after_min": close_after_min,
            "manual_entry": bool(manual_entry)}
    record_change(conn, old.venue_id, gate)
    record(conn, actor, "gate.update", f"gate:{gate_id}",
           {"name": old.name, "zones": before_zones, "reentry": old.reentry,
            "realname_mode": old.realname_mode, "open_before_min": old.open_before_min,
            "close_after_min": old.close_after_min, "manual_entry": old.manual_entry},
           {k: v for k, v in gate.items() if k not in ("type", "op", "id", "code")})

def add_lane(conn: sa.Connection, venue_id: int, gate_code: str, code: str, name: str = "",
             direction: str = "in", actor: str = SYSTEM) -> int:
    """A lane of a gate; its code is what the venue's entries carry, so the hub can count each
    entry at its gate. Sent to the venue's appliances like zones and gates."""
    if direction not in ("in", "out"):
        raise CatalogError("bad_lane_direction", code=code)
    gate_id = conn.execute(sa.select(gates.c.id).where(gates.c.venue_id == venue_id,
                                                       gates.c.code == gate_code)).scalar()
    if gate_id is None:
        raise CatalogError("lane_unknown_gate", code=code, gate=gate_code)
    if conn.execute(sa.select(lanes.c.id).where(lanes.c.venue_id == venue_id,
                                                lanes.c.code == code)).first():
        raise CatalogError("lane_code_taken", code=code)
    lane_id = conn.execute(sa.insert(lanes).values(
        venue_id=venue_id, gate_id=gate_id, code=code, name=name, direction=direction)
    ).inserted_primary_key[0]
    lane = {"type": "lane", "op": "upsert", "id": lane_id, "code": code, "name": name,
            "gate_id": gate_id, "direction": direction}
    record_change(conn, venue_id, lane)
    record(conn, actor, "lane.create", f"lane:{lane_id}", None,
           {k: v for k, v in lane.items() if k not in ("type", "op")})
    return lane_id
