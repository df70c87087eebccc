"""Our implementation against the committed test vectors, which other implementations use too."""

import json
from datetime import datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sync import codes
from sync.codes import Kind, Role, TicketPayload
from sync.keys import KeyRing, SigningKey

VECTORS = json.loads(Path(__file__).with_name("ticket_code_vectors.json").read_text())
RING = KeyRing({k["key_id"]: k["public_key_b64"] for k in VECTORS["keys"]})
KEYS = {k["key_id"]: SigningKey(k["key_id"], Ed25519PrivateKey.from_private_bytes(
    bytes.fromhex(k["test_only_private_seed_hex"]))) for k in VECTORS["keys"]}


def payload(d: dict) -> TicketPayload:
    t = {k: datetime.fromisoformat(d[k]) if d[k] else None for k in ("valid_from", "valid_until")}
    return TicketPayload(ticket_id=d["ticket_id"], kind=Kind[d["kind"].upper()],
                         scope=tuple(d["scope"]), role=Role[d["role"].upper()],
                         serial=d["serial"], zone=d["zone"], seat=d["seat"], **t,
                         daily_limit=d["daily_limit"], realname=d["realname"],
                         key_id=d["key_id"])


def test_the_file_covers_every_error_and_every_kind():
    assert {b["error"] for b in VECTORS["broken"]} == {
        c.code for c in codes.CodeError.__subclasses__()}
    assert {v["payload"]["kind"] for v in VECTORS["valid"]} == {k.name.lower() for k in Kind}
    assert {v["payload"]["role"] for v in VECTORS["valid"]} == {r.name.lower() for r in Role}
    assert VECTORS["alphabet"] == codes.ALPHABET


@pytest.mark.parametrize("case", VECTORS["valid"], ids=lambda c: c["name"])
def test_valid_vectors_decode_and_re_encode(case):
    expected = payload(case["payload"])
    assert codes.to_bytes(case["code"]).hex() == case["hex"]
    assert codes.decode(case["code"], RING) == expected
    assert codes.encode(expected, KEYS[expected.key_id]) == case["code"]


@pytest.mark.parametrize("case", VECTORS["broken"], ids=lambda c: c["name"])
def test_broken_vectors_fail_with_the_stated_error(case):
    with pytest.raises(codes.CodeError) as info:
        codes.decode(case["code"], RING)
    assert info.value.code == case["error"]
