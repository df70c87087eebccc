"""The signed allowlist file: what it signs, and that nothing but its own error escapes."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sync import allowlist_file, codes
from sync.allowlist_file import SignedFileError
from sync.keys import KeyRing, generate_signing_key

KEY = generate_signing_key(4)
RING = KeyRing({4: KEY.public_key()})
T0 = datetime(2026, 7, 1, 8, 0, tzinfo=UTC)
OSC = {"id": 1, "code": "OSC"}
ZONE = {"seq": 3, "type": "zone", "op": "upsert", "id": 1, "code": "A", "name": "北看台"}


def test_a_signed_file_reads_back_with_its_lines_and_header():
    data = allowlist_file.sign([ZONE, {"seq": 2, "type": "key", "op": "upsert", "key_id": 4,
                                       "public_key": KEY.public_key_b64()}], KEY, OSC, T0)
    signed = allowlist_file.read(data, RING.get, expected_venue=1)
    assert (signed.venue_id, signed.venue_code, signed.key_id, signed.cursor) == (1, "OSC", 4, 3)
    assert [json.loads(line) for _, line in signed.lines] == [ZONE]
    assert [n for n, _ in signed.lines] == [2]
    assert allowlist_file.read(data, RING.get).venue_id == 1  # a venue not known yet


def test_the_signature_covers_a_context_so_it_never_passes_for_a_ticket_codes():
    data = allowlist_file.sign([ZONE], KEY, OSC, T0)
    trailer = json.loads(data.rstrip(b"\n").rsplit(b"\n", 1)[1])
    digest = bytes.fromhex(trailer["sha256"])
    signature = base64.b64decode(trailer["signature"])
    KEY.public_key().verify(signature, allowlist_file.CONTEXT + digest)
    # the same bytes laid out as a ticket code: refused before any key is tried
    with pytest.raises(codes.CodeError):
        codes.decode(codes.from_bytes(allowlist_file.CONTEXT + digest + signature), RING)


@given(st.binary(max_size=2000))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_bytes_raise_only_signed_file_errors(data):
    with pytest.raises(SignedFileError):
        allowlist_file.read(data, RING.get, 1)


@given(st.lists(st.text(max_size=80), max_size=6), st.integers(0, 3))
@settings(max_examples=200, deadline=None)
def test_any_lines_under_a_real_header_raise_only_signed_file_errors(lines, drop):
    data = allowlist_file.sign([ZONE], KEY, OSC, T0)
    parts = data.split(b"\n")
    mangled = b"\n".join(parts[:1] + [t.encode("utf-8", "surrogatepass") for t in lines]
                         + parts[1 + drop:])
    if mangled == data:
        return
    with pytest.raises(SignedFileError):
        allowlist_file.read(mangled, RING.get, 1)
