"""Signed ticket codes, version 1: a compact binary payload, Ed25519-signed, written in base 44.

Any appliance holding the hub's public keys verifies a code offline. The layout, byte by byte,
is in docs/ticket-code.md; in short::

    u8 version (1) | u8 key_id | u8 form | varint ticket_id | varint serial | scope |
    varint zone | [varint seat] | [varint valid_from_min, varint duration_min] |
    [varint daily_limit] | 64-byte Ed25519 signature over everything before it

The text is the whole byte string read as one big-endian number and written in the QR
alphanumeric alphabet without the space (44 characters), so a code fits QR alphanumeric mode
and survives scanners and keyboard wedges that trim spaces. Decoding raises exactly one
:class:`CodeError` subclass per kind of failure and nothing else, whatever the input.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography.exceptions import InvalidSignature

from sync.keys import KeyRing, SigningKey

VERSION = 1
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ$%*+-./:"
BASE = len(ALPHABET)
_DIGIT = {c: i for i, c in enumerate(ALPHABET)}
SIGNATURE_BYTES = 64
EPOCH = datetime(2020, 1, 1, tzinfo=UTC)
MAX_TICKET_ID = 2**40 - 1
MAX_SERIAL = 65535
MAX_SCOPE = 32
MAX_DURATION_MIN = 366 * 24 * 60
MAX_VARINT = 2**63 - 1
MAX_BYTES = 3 + 9 * (4 + MAX_SCOPE + 5) + SIGNATURE_BYTES  # far above any valid code

_FORM_KIND, _FORM_ROLE = 0x03, 0x0C
_REALNAME, _HAS_SEAT, _HAS_WINDOW, _RESERVED = 0x10, 0x20, 0x40, 0x80


class Kind(enum.IntEnum):
    SESSION = 0   # one session
    SESSIONS = 1  # a pass over several sessions
    VENUES = 2    # a pass over venues within its validity window


class Role(enum.IntEnum):
    TICKET = 0
    STAFF = 1
    REGISTERED = 2


@dataclass(frozen=True, slots=True)
class TicketPayload:
    ticket_id: int
    kind: Kind = Kind.SESSION
    scope: tuple[int, ...] = ()
    role: Role = Role.TICKET
    serial: int = 0
    zone: int = 0
    seat: int | None = None
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    daily_limit: int = 0
    realname: bool = False
    key_id: int = 0  # filled in by decode(); encode() uses the signing key's


class CodeError(Exception):
    code = "invalid"


class UnknownVersion(CodeError):
    code = "unknown_version"


class UnknownKey(CodeError):
    code = "unknown_key"


class BadSignature(CodeError):
    code = "bad_signature"


class Truncated(CodeError):
    code = "truncated"


class TrailingBytes(CodeError):
    code = "trailing_bytes"


class BadAlphabet(CodeError):
    code = "bad_alphabet"


class OutOfRange(CodeError, ValueError):
    code = "out_of_range"


# -- the text layer -----------------------------------------------------------------------------


def _chars_for(n: int) -> int:
    """The fewest base-44 digits that can hold any n-byte string."""
    k, cap, limit = 0, 1, 256**n
    while cap < limit:
        cap *= BASE
        k += 1
    return k


_LENGTHS = {_chars_for(n): n for n in range(1, MAX_BYTES + 1)}
MIN_CHARS = _chars_for(7 + SIGNATURE_BYTES)  # the shortest possible code; shorter text is none
MAX_CHARS = _chars_for(MAX_BYTES)


def from_bytes(data: bytes) -> str:
    if not data:
        raise OutOfRange("nothing to encode")
    value = int.from_bytes(data, "big")
    digits = []
    for _ in range(_chars_for(len(data))):
        value, d = divmod(value, BASE)
        digits.append(ALPHABET[d])
    return "".join(reversed(digits))


_BASE2 = BASE * BASE
_PAIRS = {a + b: _DIGIT[a] * BASE + _DIGIT[b] for a in ALPHABET for b in ALPHABET}


def to_bytes(code: str) -> bytes:
    n = _LENGTHS.get(len(code))
    value = 0
    pairs = _PAIRS
    try:
        start = len(code) % 2
        if start:
            value = _DIGIT[code[0]]
        for i in range(start, len(code), 2):  # two digits at a time: this is on every scan
            value = value * _BASE2 + pairs[code[i:i + 2]]
    except KeyError:
        bad = next(c for c in code if c not in _DIGIT)
        raise BadAlphabet(f"character {bad!r} is not in the ticket code alphabet") from None
    if n is None:
        raise Truncated(f"a code of {len(code)} characters is not a whole number of bytes")
    if value >> (8 * n):
        raise OutOfRange("the code's number is larger than its length allows")
    return value.to_bytes(n, "big")


# -- the binary layer ---------------------------------------------------------------------------


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes, pos: int = 0):
        self.data, self.pos = data, pos

    def byte(self) -> int:
        if self.pos >= len(self.data):
            raise Truncated("the code ends inside its payload")
        b = self.data[self.pos]
        self.pos += 1
        return b

    def varint(self, what: str, lo: int = 0, hi: int = MAX_VARINT) -> int:
        value = shift = 0
        for i in range(9):
            b = self.byte()
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                if b == 0 and i > 0:
                    raise OutOfRange(f"{what}: non-minimal number encoding")
                if not lo <= value <= hi:
                    raise OutOfRange(f"{what}: {value} is outside {lo}..{hi}")
                return value
            shift += 7
        raise OutOfRange(f"{what}: number longer than 9 bytes")


def _minutes(dt: datetime, what: str) -> int:
    if dt.tzinfo is None:
        raise OutOfRange(f"{what}: time without a time zone")
    delta = dt - EPOCH
    minutes, rest = divmod(delta, timedelta(minutes=1))
    if rest or minutes < 0:
        raise OutOfRange(f"{what}: must be a whole minute after {EPOCH:%Y-%m-%d}")
    return minutes


def _payload_bytes(p: TicketPayload, key_id: int) -> bytes:
    """Validate a payload and lay it out (without the signature)."""
    def need(ok: bool, what: str) -> None:
        if not ok:
            raise OutOfRange(what)

    need(1 <= key_id <= 255, "key id must be 1..255")
    need(isinstance(p.kind, Kind) or p.kind in (0, 1, 2), "unknown kind")
    need(isinstance(p.role, Role) or p.role in (0, 1, 2), "unknown role")
    need(1 <= p.ticket_id <= MAX_TICKET_ID, f"ticket id must be 1..{MAX_TICKET_ID}")
    need(0 <= p.serial <= MAX_SERIAL, f"serial must be 0..{MAX_SERIAL}")
    need(0 <= p.zone <= MAX_VARINT, "zone must be >= 0")
    need(p.seat is None or 1 <= p.seat <= MAX_VARINT, "seat must be >= 1")
    need(all(1 <= s <= MAX_VARINT for s in p.scope), "scope ids must be >= 1")
    kind = Kind(p.kind)
    if kind is Kind.SESSION:
        need(len(p.scope) == 1, "a session ticket names exactly one session")
    else:
        need(1 <= len(p.scope) <= MAX_SCOPE, f"a pass names 1..{MAX_SCOPE} scope ids")
        need(list(p.scope) == sorted(set(p.scope)), "scope ids must be strictly increasing")
        need(0 <= p.daily_limit <= MAX_VARINT, "daily limit must be >= 0")
    need(kind is not Kind.SESSION or not p.daily_limit, "only passes carry a daily limit")
    has_window = p.valid_from is not None or p.valid_until is not None
    if has_window:
        need(p.valid_from is not None and p.valid_until is not None,
             "valid_from and valid_until go together")
        start = _minutes(p.valid_from, "valid_from")
        duration = _minutes(p.valid_until, "valid_until") - start
        need(1 <= duration <= MAX_DURATION_MIN, "validity must last 1 minute to 366 days")
    need(kind is not Kind.VENUES or has_window, "a venue pass needs a validity window")
    form = int(kind) | int(p.role) << 2
    form |= _REALNAME if p.realname else 0
    form |= _HAS_SEAT if p.seat is not None else 0
    form |= _HAS_WINDOW if has_window else 0
    out = bytearray((VERSION, key_id, form))
    out += _varint(p.ticket_id) + _varint(p.serial)
    if kind is Kind.SESSION:
        out += _varint(p.scope[0])
    else:
        out += _varint(len(p.scope)) + b"".join(_varint(s) for s in p.scope)
    out += _varint(p.zone)
    if p.seat is not None:
        out += _varint(p.seat)
    if has_window:
        out += _varint(start) + _varint(duration)
    if kind is not Kind.SESSION:
        out += _varint(p.daily_limit)
    return bytes(out)


def encode(payload: TicketPayload, key: SigningKey) -> str:
    body = _payload_bytes(payload, key.key_id)
    return from_bytes(body + key.private_key.sign(body))


def _parse(data: bytes) -> tuple[TicketPayload, int]:
    """The payload and where it ends; checks every field's range."""
    if data[0] != VERSION:
        raise UnknownVersion(f"ticket code version {data[0]} is not supported (this is {VERSION})")
    r = _Reader(data, 1)
    key_id = r.byte()
    if key_id == 0:
        raise OutOfRange("key id 0 is not valid")
    form = r.byte()
    if form & _RESERVED:
        raise OutOfRange("reserved flag set")
    if form & _FORM_KIND == 3 or (form & _FORM_ROLE) >> 2 == 3:
        raise OutOfRange("unknown kind or role")
    kind, role = Kind(form & _FORM_KIND), Role((form & _FORM_ROLE) >> 2)
    ticket_id = r.varint("ticket id", 1, MAX_TICKET_ID)
    serial = r.varint("serial", 0, MAX_SERIAL)
    if kind is Kind.SESSION:
        scope: tuple[int, ...] = (r.varint("session", 1),)
    else:
        n = r.varint("scope size", 1, MAX_SCOPE)
        scope = tuple(r.varint("scope id", 1) for _ in range(n))
        if any(a >= b for a, b in zip(scope, scope[1:], strict=False)):
            raise OutOfRange("scope ids must be strictly increasing")
    zone = r.varint("zone")
    seat = r.varint("seat", 1) if form & _HAS_SEAT else None
    valid_from = valid_until = None
    if form & _HAS_WINDOW:
        start = r.varint("valid_from", 0, 2**40)
        duration = r.varint("duration", 1, MAX_DURATION_MIN)
        try:
            valid_from = EPOCH + timedelta(minutes=start)
            valid_until = valid_from + timedelta(minutes=duration)
        except OverflowError:
            raise OutOfRange("valid_from: the validity ends after the year 9999") from None
    elif kind is Kind.VENUES:
        raise OutOfRange("a venue pass needs a validity window")
    daily_limit = r.varint("daily limit") if kind is not Kind.SESSION else 0
    payload = TicketPayload(
        ticket_id=ticket_id, kind=kind, scope=scope, role=role, serial=serial, zone=zone,
        seat=seat, valid_from=valid_from, valid_until=valid_until, daily_limit=daily_limit,
        realname=bool(form & _REALNAME), key_id=key_id)
    return payload, r.pos


@dataclass(frozen=True, slots=True)
class Unverified:
    """A code whose structure is sound but whose signature is not yet checked."""

    payload: TicketPayload
    body: bytes
    signature: bytes


def read(code: str) -> Unverified:
    """Parse a code without verifying it; raises every CodeError but the key and signature ones."""
    if not isinstance(code, str):
        raise BadAlphabet("a ticket code is text")
    if len(code) > MAX_CHARS:
        raise TrailingBytes("longer than any ticket code")
    data = to_bytes(code)
    payload, end = _parse(data)
    remaining = len(data) - end
    if remaining < SIGNATURE_BYTES:
        raise Truncated("the code ends inside its signature")
    if remaining > SIGNATURE_BYTES:
        raise TrailingBytes(f"{remaining - SIGNATURE_BYTES} bytes after the signature")
    return Unverified(payload, data[:end], data[end:])


def verify(code: Unverified, keys: KeyRing) -> TicketPayload:
    public = keys.get(code.payload.key_id)
    if public is None:
        raise UnknownKey(f"signed with key {code.payload.key_id}, which this device does not "
                         "trust")
    try:
        public.verify(code.signature, code.body)
    except InvalidSignature:
        raise BadSignature("the signature does not match the payload") from None
    return code.payload


def decode(code: str, keys: KeyRing) -> TicketPayload:
    """Verify a code and return its payload; raises one CodeError subclass on any failure."""
    return verify(read(code), keys)


def digest(code: str) -> str:
    """A short fingerprint of a code's exact text (hex of the first 16 bytes of SHA-256).

    The hub sends it with each ticket in the allowlist. A scanned code whose fingerprint matches
    the one the hub sent is the code the hub issued, so the appliance can skip the signature
    check for tickets it already knows; codes it does not know are verified in full.
    """
    return hashlib.sha256(code.encode("ascii", "replace")).hexdigest()[:32]
