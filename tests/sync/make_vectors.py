"""Regenerate tests/sync/ticket_code_vectors.json (run by hand; the tests read the committed file).

    .venv/bin/python -m tests.sync.make_vectors

Ed25519 signatures are deterministic, so the same seeds give the same file.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sync import codes
from sync.codes import Kind, Role, TicketPayload
from sync.keys import SigningKey

OUT = Path(__file__).with_name("ticket_code_vectors.json")
SEEDS = {1: bytes(range(32)), 2: bytes(range(100, 132))}
T0 = datetime(2026, 7, 1, 10, 0, tzinfo=UTC)


def key(kid: int) -> SigningKey:
    return SigningKey(kid, Ed25519PrivateKey.from_private_bytes(SEEDS[kid]))


def payload_json(p: TicketPayload) -> dict:
    return {
        "ticket_id": p.ticket_id, "kind": p.kind.name.lower(), "scope": list(p.scope),
        "role": p.role.name.lower(), "serial": p.serial, "zone": p.zone, "seat": p.seat,
        "valid_from": p.valid_from.isoformat().replace("+00:00", "Z") if p.valid_from else None,
        "valid_until": p.valid_until.isoformat().replace("+00:00", "Z") if p.valid_until else None,
        "daily_limit": p.daily_limit, "realname": p.realname,
    }


VALID = [
    ("seated real-name ticket", 1, TicketPayload(ticket_id=5_000_123, scope=(300,), zone=12,
                                                 seat=40_000, realname=True)),
    ("standing ticket, any zone", 1, TicketPayload(ticket_id=1, scope=(1,))),
    ("re-issued ticket (serial 2)", 1, TicketPayload(ticket_id=77, scope=(9,), zone=3, serial=2)),
    ("day pass over three sessions, two entries a day", 2,
     TicketPayload(ticket_id=900_001, kind=Kind.SESSIONS, scope=(300, 301, 302), daily_limit=2,
                   valid_from=T0, valid_until=T0 + timedelta(hours=14))),
    ("series pass over two venues", 2,
     TicketPayload(ticket_id=900_002, kind=Kind.VENUES, scope=(1, 4), realname=True,
                   valid_from=T0, valid_until=T0 + timedelta(days=16))),
    ("staff credential", 1,
     TicketPayload(ticket_id=800_001, kind=Kind.VENUES, scope=(1,), role=Role.STAFF,
                   valid_from=T0, valid_until=T0 + timedelta(days=30))),
    ("registered seat (media)", 1,
     TicketPayload(ticket_id=800_002, scope=(300,), role=Role.REGISTERED, zone=4, seat=120)),
    ("largest ids", 2, TicketPayload(ticket_id=2**40 - 1, scope=(2**40,), zone=2**32,
                                     seat=2**32, serial=65535)),
]


def main() -> None:
    valid = []
    for name, kid, p in VALID:
        code = codes.encode(p, key(kid))
        valid.append({"name": name, "payload": {**payload_json(p), "key_id": kid},
                      "hex": codes.to_bytes(code).hex(), "code": code})
    seated = valid[0]["code"]
    data = codes.to_bytes(seated)
    body = data[:-64]
    k1 = key(1)

    def resign(b: bytes) -> str:
        return codes.from_bytes(b + k1.private_key.sign(b))

    other = SigningKey(1, Ed25519PrivateKey.from_private_bytes(bytes(31) + b"\x01"))
    broken = [
        ("lower case", seated.lower(), "bad_alphabet"),
        ("space inside", seated[:40] + " " + seated[41:], "bad_alphabet"),
        ("not a whole number of bytes", seated[:-1], "truncated"),
        ("last byte missing", codes.from_bytes(data[:-1]), "truncated"),
        ("payload only", codes.from_bytes(body), "truncated"),
        ("extra byte", codes.from_bytes(data + b"\x00"), "trailing_bytes"),
        ("version 2", resign(b"\x02" + body[1:]), "unknown_version"),
        ("key id 9", codes.from_bytes(body[:1] + b"\x09" + body[2:] + data[-64:]), "unknown_key"),
        ("one payload bit flipped", codes.from_bytes(data[:5] + bytes([data[5] ^ 1])
                                                     + data[6:]), "bad_signature"),
        ("signature bit flipped", codes.from_bytes(data[:-1] + bytes([data[-1] ^ 1])),
         "bad_signature"),
        ("signed by another key with the same id", codes.encode(VALID[0][2], other),
         "bad_signature"),
        ("reserved bit set", resign(body[:2] + bytes([body[2] | 0x80]) + body[3:]),
         "out_of_range"),
        ("ticket id 0", resign(b"\x01\x01\x00\x00\x00\x01\x00"), "out_of_range"),
        ("non-minimal varint", resign(b"\x01\x01\x00\x81\x00\x00\x01\x00"), "out_of_range"),
        ("number too large for its length", ":" * len(seated), "out_of_range"),
    ]
    doc = {
        "about": "Wicket ticket code v1 test vectors. See docs/ticket-code.md. The seeds are "
                 "TEST ONLY keys, published so that other implementations can sign too; never "
                 "use them for real tickets.",
        "alphabet": codes.ALPHABET,
        "epoch": "2020-01-01T00:00:00Z",
        "keys": [{"key_id": kid, "test_only_private_seed_hex": seed.hex(),
                  "public_key_b64": key(kid).public_key_b64()} for kid, seed in SEEDS.items()],
        "valid": valid,
        "broken": [{"name": n, "code": c, "error": e} for n, c, e in broken],
    }
    OUT.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
