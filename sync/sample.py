"""A small, realistic venue as allowlist changes and signed codes: for tests, benchmarks and the
walkthrough in the README. Every name and document number here is invented; the resident ID
numbers carry valid check digits so that the validators accept them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from sync import allowlist_file, codes, numbers
from sync.identity import gb11643_check
from sync.keys import SigningKey
from sync.names import KIND_NAMES, ROLE_NAMES
from sync.timeutil import to_iso

VENUE_ID = 1
VENUE_CODE = "OSC"
ZONES = [(1, "A", "North Stand"), (2, "B", "East Stand"), (3, "C", "South Stand"),
         (4, "D", "VIP Box")]
# id, code, name, zones, realname_mode, reentry
GATES = [(1, "G1", "Gate 1 North", [1, 2], "ticket", False),
         (2, "G2", "Gate 2 South", [3, 4], "ticket_and_id", False),
         (3, "G3", "Gate 3 ID only", [], "id_only", False),
         (4, "G4", "Gate 4 Concourse", [], "ticket", True),
         (9, "EXIT", "Main exit", [], "ticket", False)]
# id, code, gate, direction
LANES = [(1, "N1", 1, "in"), (2, "N2", 1, "in"), (3, "S1", 2, "in"), (4, "ID1", 3, "in"),
         (5, "C1", 4, "in"), (9, "X1", 9, "out")]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰涛明超华平刚桂英建国小红志强"


def resident_id(body17: str) -> str:
    """Append the GB 11643 check character to a 17-digit body."""
    return body17 + gb11643_check(body17)


def sample_number(ticket_id: int) -> str:
    """A ticket number in the hub's format (``sync/numbers.py``), the same for a ticket id on
    every build: random-looking, but reproducible for tests and the walkthrough."""
    rng = random.Random(f"ticket-number-{ticket_id}")
    body = "".join(rng.choice(numbers.ALPHABET) for _ in range(numbers.RANDOM_SYMBOLS))
    return body + numbers.check_symbol(body)


def fake_resident_id(rng: random.Random) -> str:
    region = rng.choice(["110101", "310104", "440305", "510107", "330106", "420102"])
    born = datetime(1950, 1, 1) + timedelta(days=rng.randrange(0, 365 * 55))
    return resident_id(f"{region}{born:%Y%m%d}{rng.randrange(0, 1000):03d}")


@dataclass
class SampleTicket:
    id: int
    number: str
    code: str
    session_id: int | None
    zone_id: int
    holder_id: int | None = None
    rfid_uid: str | None = None


@dataclass
class SampleVenue:
    changes: list[dict] = field(default_factory=list)
    tickets: dict[int, SampleTicket] = field(default_factory=dict)
    holders: dict[int, tuple[str, str, str]] = field(default_factory=dict)  # id -> name, type, number
    sessions: dict[int, tuple[datetime, datetime]] = field(default_factory=dict)
    named: dict[str, int] = field(default_factory=dict)  # role in the walkthrough -> ticket id


class _Builder:
    """Numbers the changes as they are added, and makes holders and tickets."""

    def __init__(self, key: SigningKey, rng: random.Random):
        self.key, self.rng = key, rng
        self.out = SampleVenue()
        self.seq = 0
        self.next_holder = 1

    def add(self, obj: dict) -> None:
        self.seq += 1
        self.out.changes.append({"seq": self.seq, **obj})

    def places(self, base: datetime) -> None:
        """The venue, the key, its zones, gates, lanes and three sessions around ``base``."""
        sessions = [(1, "Opening match", base - timedelta(hours=1), base + timedelta(hours=2)),
                    (2, "Evening final", base + timedelta(hours=6), base + timedelta(hours=9)),
                    (3, "Tomorrow's semifinal", base + timedelta(days=1),
                     base + timedelta(days=1, hours=3))]
        add = self.add
        add({"type": "venue", "op": "upsert", "id": VENUE_ID, "code": VENUE_CODE,
             "name": "Olympic Sports Centre Stadium", "timezone": "Asia/Shanghai"})
        add({"type": "key", "op": "upsert", "key_id": self.key.key_id,
             "public_key": self.key.public_key_b64()})
        for zid, code, name in ZONES:
            add({"type": "zone", "op": "upsert", "id": zid, "code": code, "name": name})
        for gid, code, name, zones, mode, reentry in GATES:
            add({"type": "gate", "op": "upsert", "id": gid, "code": code, "name": name,
                 "zones": zones, "realname_mode": mode, "reentry": reentry})
        for lid, code, gate, direction in LANES:
            add({"type": "lane", "op": "upsert", "id": lid, "code": code, "gate_id": gate,
                 "direction": direction})
        for sid, name, starts, ends in sessions:
            self.out.sessions[sid] = (starts, ends)
            add({"type": "session", "op": "upsert", "id": sid, "venue_id": VENUE_ID,
                 "name": name, "starts_at": to_iso(starts), "ends_at": to_iso(ends),
                 "gates_open_at": to_iso(starts - timedelta(minutes=60))})

    def holder(self) -> int:
        rng = self.rng
        hid, self.next_holder = self.next_holder, self.next_holder + 1
        name = rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))
        number = fake_resident_id(rng)
        self.out.holders[hid] = (name, "resident_id", number)
        self.add({"type": "holder", "op": "upsert", "id": hid, "name": name,
                  "doc_type": "resident_id", "doc_number": number})
        return hid

    def ticket(self, tid: int, *, session: int | None = 1, zone: int = 1, realname: bool = False,
               kind: codes.Kind = codes.Kind.SESSION, role: codes.Role = codes.Role.TICKET,
               scope: tuple[int, ...] | None = None, window: tuple[datetime, datetime] | None = None,
               daily_limit: int = 0, rfid: str | None = None, seat: int | None = None,
               in_allowlist: bool = True) -> SampleTicket:
        hid = self.holder() if realname else None
        scope = scope or (session,)
        payload = codes.TicketPayload(
            ticket_id=tid, kind=kind, scope=scope, role=role, zone=zone, seat=seat,
            valid_from=window[0] if window else None, valid_until=window[1] if window else None,
            daily_limit=daily_limit, realname=realname)
        number = sample_number(tid)
        t = SampleTicket(tid, number, codes.encode(payload, self.key), session, zone, hid, rfid)
        self.out.tickets[tid] = t
        if in_allowlist:
            zone_code = ZONES[zone - 1][1] if zone else ""
            self.add({"type": "ticket", "op": "upsert", "id": tid, "number": number,
                      "kind": KIND_NAMES[kind], "role": ROLE_NAMES[role], "scope": list(scope),
                      "zone_id": zone, "seat_id": seat,
                      "seat": f"{zone_code}-{seat // 100}-{seat % 100}" if seat else None,
                      "valid_from": to_iso(window[0]) if window else None,
                      "valid_until": to_iso(window[1]) if window else None,
                      "daily_limit": daily_limit, "realname": realname, "rfid_uid": rfid,
                      "code_digest": codes.digest(t.code), "holder_id": hid})
        return t


def build(key: SigningKey, now: datetime, tickets: int = 200, seed: int = 1,
          realname_every: int = 2) -> SampleVenue:
    """A venue with four zones, five gates, six lanes and three sessions around ``now``, and
    ``tickets`` seated tickets for the session that is open now, plus one of each special case
    (a day pass, a staff card, an RFID ticket, a refunded ticket, a blocked ticket, a ticket
    for the evening session)."""
    b = _Builder(key, random.Random(seed))
    base = now.replace(minute=0, second=0, microsecond=0)
    b.places(base)
    ticket, out = b.ticket, b.out
    first = 1001
    for i in range(tickets):
        zone = 1 + i % 4
        ticket(first + i, zone=zone, realname=realname_every > 0 and i % realname_every == 0,
               seat=100 + i)
    day = (base - timedelta(hours=2), base + timedelta(hours=22))
    out.named["day_pass"] = ticket(900001, kind=codes.Kind.SESSIONS, scope=(1, 2), zone=0,
                                   daily_limit=2, session=None).id
    out.named["staff"] = ticket(900002, kind=codes.Kind.VENUES, scope=(VENUE_ID,), zone=0,
                                role=codes.Role.STAFF, window=day, session=None).id
    out.named["rfid"] = ticket(900003, zone=1, rfid="04A1B2C3D4E5F6", seat=9001).id
    out.named["evening"] = ticket(900004, session=2, zone=1, seat=9002).id
    out.named["refunded"] = ticket(900005, zone=1, seat=9003).id
    b.add({"type": "revocation", "op": "upsert", "ticket_id": 900005, "reason": "refunded"})
    out.named["blocked"] = ticket(900006, zone=2, seat=9004).id
    b.add({"type": "block", "op": "upsert", "kind": "ticket", "value": "900006",
           "reason": "resold above face value"})
    out.named["unsynced"] = ticket(900007, zone=1, seat=9005, in_allowlist=False).id
    out.named["realname"] = ticket(900008, zone=3, realname=True, seat=9006).id
    out.named["wrong_gate"] = ticket(900009, zone=3, seat=9007).id
    out.named["seated"] = first + 1 if tickets > 1 else first
    out.named["other_holder"] = first
    return out


def signed_allowlist(venue: SampleVenue, key: SigningKey, now: datetime) -> bytes:
    """The venue's allowlist as the hub exports it: signed with ``key`` (the sample's hub key),
    without the key record, which an appliance takes only from the sync."""
    return allowlist_file.sign(venue.changes, key, {"id": VENUE_ID, "code": VENUE_CODE}, now)


def write_files(venue: SampleVenue, allowlist: Path, codes_tsv: Path, key: SigningKey,
                now: datetime) -> None:
    """The allowlist as a signed file (JSON lines, see ``sync/allowlist_file.py``), and a TSV of
    codes for trying scans by hand: name, ticket number, code, and for real-name tickets the
    holder's (invented) document number and name. The named special cases come first."""
    allowlist.parent.mkdir(parents=True, exist_ok=True)
    codes_tsv.parent.mkdir(parents=True, exist_ok=True)
    allowlist.write_bytes(signed_allowlist(venue, key, now))
    names = {tid: name for name, tid in venue.named.items()}
    order = list(venue.named.values()) + [t for t in venue.tickets if t not in names]
    with codes_tsv.open("w", encoding="utf-8") as f:
        for tid in order:
            t = venue.tickets[tid]
            number, holder_name = "", ""
            if t.holder_id:
                holder_name, _, number = venue.holders[t.holder_id]
            f.write("\t".join([names.get(tid, "ticket"), t.number, t.code, number, holder_name])
                    + "\n")
