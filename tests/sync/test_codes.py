"""The signed ticket code: round trips, every kind of damage, and the length budget."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sync import codes
from sync.codes import Kind, Role, TicketPayload
from sync.keys import KeyRing, generate_signing_key

KEY = generate_signing_key(3)
RING = KeyRing({3: KEY.public_key()})
T0 = datetime(2026, 7, 1, 10, 0, tzinfo=UTC)
SEATED = TicketPayload(ticket_id=5_000_000, scope=(300,), zone=12, seat=40_000, realname=True)


def payloads():
    ids = st.integers(1, 2**40 - 1)
    small = st.integers(1, 2**32)

    @st.composite
    def build(draw):
        kind = draw(st.sampled_from(Kind))
        if kind is Kind.SESSION:
            scope = (draw(small),)
        else:
            scope = tuple(sorted(draw(st.sets(small, min_size=1, max_size=32))))
        window = draw(st.booleans()) or kind is Kind.VENUES
        start = T0 + timedelta(minutes=draw(st.integers(0, 10_000_000)))
        return TicketPayload(
            ticket_id=draw(ids), kind=kind, scope=scope, role=draw(st.sampled_from(Role)),
            serial=draw(st.integers(0, 65535)), zone=draw(st.integers(0, 2**20)),
            seat=draw(st.none() | small),
            valid_from=start if window else None,
            valid_until=start + timedelta(minutes=draw(st.integers(1, 366 * 24 * 60)))
            if window else None,
            daily_limit=0 if kind is Kind.SESSION else draw(st.integers(0, 100)),
            realname=draw(st.booleans()), key_id=KEY.key_id)

    return build()


@given(payloads())
@settings(max_examples=300, deadline=None)
def test_random_payloads_round_trip(p):
    code = codes.encode(p, KEY)
    assert set(code) <= set(codes.ALPHABET)
    assert codes.decode(code, RING) == p


def test_a_typical_seated_ticket_fits_in_120_characters():
    code = codes.encode(SEATED, KEY)
    assert len(code) <= 120, len(code)
    assert codes.decode(code, RING) == SEATED.__class__(**{**_fields(SEATED), "key_id": 3})


def test_a_day_pass_with_a_window_stays_short():
    p = TicketPayload(ticket_id=5_000_000, kind=Kind.SESSIONS, scope=(300, 301, 302),
                      valid_from=T0, valid_until=T0 + timedelta(hours=20), daily_limit=2)
    assert len(codes.encode(p, KEY)) <= 130  # 128: three sessions, a window, a daily limit


def _fields(p):
    return {f: getattr(p, f) for f in p.__dataclass_fields__}


def _code(p=SEATED):
    return codes.encode(p, KEY)


def test_every_single_byte_change_is_rejected():
    data = codes.to_bytes(_code())
    for i in range(len(data)):
        for delta in (0x01, 0x80, 0xFF):
            changed = bytearray(data)
            changed[i] ^= delta
            with pytest.raises(codes.CodeError):
                codes.decode(codes.from_bytes(bytes(changed)), RING)


def test_every_single_character_change_is_rejected():
    code = _code()
    for i in range(len(code)):
        for replacement in "07AZ$:":
            if replacement == code[i]:
                continue
            with pytest.raises(codes.CodeError):
                codes.decode(code[:i] + replacement + code[i + 1:], RING)


def test_every_truncation_and_extension_is_rejected():
    code = _code()
    for n in range(len(code)):
        with pytest.raises(codes.CodeError):
            codes.decode(code[:n], RING)
    for tail in ("0", "00", "A0", "000"):
        with pytest.raises(codes.CodeError):
            codes.decode(code + tail, RING)


def _resign(body: bytes) -> str:
    return codes.from_bytes(body + KEY.private_key.sign(body))


@pytest.mark.parametrize("error, make", [
    (codes.UnknownVersion, lambda: _resign(bytes([2]) + codes.to_bytes(_code())[1:-64])),
    (codes.UnknownKey, lambda: codes.encode(SEATED, generate_signing_key(9))),
    (codes.BadSignature, lambda: codes.encode(SEATED, generate_signing_key(3))),
    (codes.Truncated, lambda: codes.from_bytes(codes.to_bytes(_code())[:-1])),
    (codes.Truncated, lambda: _code()[:-1]),
    (codes.TrailingBytes, lambda: codes.from_bytes(codes.to_bytes(_code()) + b"\x00")),
    (codes.BadAlphabet, lambda: _code().lower()),
    (codes.BadAlphabet, lambda: _code()[:50] + " " + _code()[51:]),
    (codes.BadAlphabet, lambda: "票" * 110),
    (codes.OutOfRange, lambda: ":" * len(_code())),  # a number too large for its length
])
def test_each_failure_has_its_own_error(error, make):
    with pytest.raises(error) as info:
        codes.decode(make(), RING)
    assert type(info.value) is error
    assert info.value.code == error.code and str(info.value)


def _body(*fields: bytes) -> bytes:
    return b"".join(fields)


@pytest.mark.parametrize("body, what", [
    (_body(b"\x01\x00\x00", b"\x01\x00\x01\x00"), "key id 0"),
    (_body(b"\x01\x03\x80", b"\x01\x00\x01\x00"), "reserved"),
    (_body(b"\x01\x03\x03", b"\x01\x00\x01\x00"), "kind"),
    (_body(b"\x01\x03\x0c", b"\x01\x00\x01\x00"), "role"),
    (_body(b"\x01\x03\x00", b"\x00\x00\x01\x00"), "ticket id"),
    (_body(b"\x01\x03\x00", b"\x81\x00\x00\x01\x00"), "non-minimal"),
    (_body(b"\x01\x03\x00", b"\xff" * 9 + b"\x01"), "longer than 9"),
    (_body(b"\x01\x03\x00", b"\x01\x80\x80\x04\x01\x00"), "serial"),
    (_body(b"\x01\x03\x02", b"\x01\x00\x01\x01\x00"), "validity window"),  # venues, no window
    (_body(b"\x01\x03\x01", b"\x01\x00\x02\x05\x05\x00\x00"), "strictly increasing"),
    (_body(b"\x01\x03\x01", b"\x01\x00\x21" + b"\x01" * 33 + b"\x00\x00"), "scope size"),
    (_body(b"\x01\x03\x40", b"\x01\x00\x01\x00\x01\x00"), "duration"),
])
def test_out_of_range_fields(body, what):
    with pytest.raises(codes.OutOfRange, match=what):
        codes.decode(_resign(body), RING)


@pytest.mark.parametrize("payload", [
    TicketPayload(ticket_id=0, scope=(1,)),
    TicketPayload(ticket_id=2**40, scope=(1,)),
    TicketPayload(ticket_id=1, scope=(1, 2)),
    TicketPayload(ticket_id=1, kind=Kind.VENUES, scope=(1,)),
    TicketPayload(ticket_id=1, kind=Kind.SESSIONS, scope=(2, 1)),
    TicketPayload(ticket_id=1, scope=(1,), daily_limit=2),
    TicketPayload(ticket_id=1, scope=(1,), valid_from=T0),
    TicketPayload(ticket_id=1, scope=(1,), valid_from=T0, valid_until=T0),
    TicketPayload(ticket_id=1, scope=(1,), valid_from=T0 + timedelta(seconds=30),
                  valid_until=T0 + timedelta(hours=1)),
    TicketPayload(ticket_id=1, scope=(1,), seat=0),
    TicketPayload(ticket_id=1, scope=(1,), serial=70_000),
])
def test_encode_refuses_invalid_payloads(payload):
    with pytest.raises(codes.OutOfRange):
        codes.encode(payload, KEY)


@given(st.text(max_size=300))
@settings(max_examples=400, deadline=None)
def test_arbitrary_text_raises_only_code_errors(text):
    with pytest.raises(codes.CodeError):
        codes.decode(text, RING)


@given(st.binary(min_size=1, max_size=200))
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_arbitrary_bytes_raise_only_code_errors(data):
    with pytest.raises(codes.CodeError):
        codes.decode(codes.from_bytes(data), RING)


def test_text_layer_round_trips_and_keeps_leading_zero_bytes():
    for data in (b"\x00", b"\x00\x00\x01", bytes(range(256)), b"\xff" * 80):
        assert codes.to_bytes(codes.from_bytes(data)) == data


def test_digest_is_stable_and_short():
    code = _code()
    assert codes.digest(code) == codes.digest(code) and len(codes.digest(code)) == 32
    other = code[:-1] + ("1" if code.endswith("0") else "0")  # the key is new each run
    assert codes.digest(code) != codes.digest(other)


@st.composite
def _well_formed_bodies(draw):
    """Payload bytes laid out as the format says, each field any number a varint can hold
    (so dates past the year 9999, zones and seats of 2**63 - 1), signed with a real key."""
    big = st.integers(0, 2**63 - 1)
    form = draw(st.integers(0, 0x7F))
    out = bytearray((codes.VERSION, KEY.key_id, form))
    for _ in range(draw(st.integers(3, 8))):
        out += codes._varint(draw(big | st.integers(0, 2**40 + 10)))
    return bytes(out)


def _only_code_errors(text):
    """``read`` and ``verify`` either give a payload or raise a CodeError: nothing else."""
    try:
        codes.verify(codes.read(text), RING)
    except codes.CodeError:
        pass


@given(_well_formed_bodies())
@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_signed_payloads_with_overflowing_fields_raise_only_code_errors(body):
    _only_code_errors(_resign(body))


@given(st.binary(max_size=300))
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_read_and_verify_take_any_bytes(data):
    _only_code_errors(data)
    _only_code_errors(data.decode("latin-1"))
    if data:
        _only_code_errors(codes.from_bytes(data))


@given(st.text(max_size=300))
@settings(max_examples=400, deadline=None)
def test_read_and_verify_take_any_text(text):
    _only_code_errors(text)


def test_a_validity_date_past_the_year_9999_is_out_of_range():
    start = (datetime(9999, 12, 31, tzinfo=UTC) - codes.EPOCH) // timedelta(minutes=1)
    body = b"\x01\x03\x40" + b"\x01\x00\x01\x00" + codes._varint(start) + codes._varint(2000)
    with pytest.raises(codes.OutOfRange, match="9999"):
        codes.decode(_resign(body), RING)
    with pytest.raises(codes.OutOfRange, match="9999"):
        codes.decode(_resign(b"\x01\x03\x40\x01\x00\x01\x00" + codes._varint(2**40) + b"\x01"),
                     RING)
