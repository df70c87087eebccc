"""The sync contract's requests, field by field, as JSON Schema (Draft 2020-12).

The hub checks every request an appliance makes against these schemas before it reads a field
(:func:`check`), and the appliance may check what it sends with the same function. A request
that does not match is answered 400 naming the first bad field as a JSON pointer
(``/entries/3/admitted``); nothing of it is stored.

What the schemas promise beyond JSON's types:

* integers are JSON integers, never booleans or floats (``1.0``, ``NaN``, ``Infinity``), and lie
  within the range of the column that keeps them (ids and cursors below 2**63, session ids
  below 2**31);
* every string has a maximum length and no control characters or lone surrogates;
* an object has only the fields listed (an unknown field is an error, not ignored);
* times are RFC 3339 with an offset, within :data:`TIME_WINDOW` of the hub's clock (an
  entry's ``at``, the heartbeat's ``clock``); a report's "since when" times (a device's state,
  the oldest unsent entry) from :data:`EPOCH` up to the same bound ahead;
* enumerations (directions, reasons, scan kinds) are closed: the values are kept here, since
  ``sync`` never imports ``edge``; a test compares them with the edge's enums.

The schemas are plain data: ``docs/sync-agent.md`` describes them in words.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker, validators
from jsonschema.exceptions import ValidationError

from sync.names import DIRECTIONS, SCAN_KINDS
from sync.timeutil import from_iso, utcnow

# -- closed sets of values, shared by both sides (directions and scan kinds: sync.names) -------

# the edge's Reason values (edge/reasons.py): every verdict an entry can carry
REASONS = ("OK", "ALREADY_ENTERED", "UNKNOWN", "FORGED", "REVOKED", "NOT_YET_VALID", "EXPIRED",
           "WRONG_SESSION", "WRONG_GATE", "REALNAME_REQUIRED", "REALNAME_MISMATCH", "BLOCKED",
           "DEVICE_ERROR")
# why the hub refuses an entry it otherwise accepts (listed in the push answer's ``refused``)
REFUSALS = ("other_venue", "unknown_ticket", "unknown_session")

MAX_BATCH = 1000
MAX_DONE = 1000
MAX_BIGINT = 2**63 - 1
MAX_INT = 2**31 - 1
TIME_WINDOW = timedelta(days=366)  # a time more than a year off the hub's clock is refused
EPOCH = datetime(2020, 1, 1, tzinfo=UTC)  # no report time lies before the project

# -- building blocks ---------------------------------------------------------------------------

# no C0 control characters, no DEL, no lone surrogates (PostgreSQL cannot keep them)
_PRINTABLE = "^[^\\x00-\\x1f\\x7f\\ud800-\\udfff]*$"


def _text(max_length: int, min_length: int = 0, nullable: bool = False) -> dict[str, Any]:
    return {"type": ["string", "null"] if nullable else "string", "minLength": min_length,
            "maxLength": max_length, "pattern": _PRINTABLE}


def _int(lo: int = 0, hi: int = MAX_BIGINT, nullable: bool = False) -> dict[str, Any]:
    return {"type": ["integer", "null"] if nullable else "integer", "minimum": lo, "maximum": hi}


def _enum(values: tuple[str, ...], nullable: bool = False) -> dict[str, Any]:
    return {"type": ["string", "null"] if nullable else "string",
            "enum": [*values, None] if nullable else list(values)}


def _time(nullable: bool = False, since: bool = False) -> dict[str, Any]:
    """``since``: a report's "since when", which may lie far back (a device up for years)."""
    return {"type": ["string", "null"] if nullable else "string", "maxLength": 40,
            "format": "wicket-since" if since else "date-time"}


def _object(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(required),
            "additionalProperties": False}


_UUID = {"type": "string", "minLength": 36, "maxLength": 36,
         "pattern": "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"}

# -- the requests ------------------------------------------------------------------------------

ENTRY = _object({
    "id": _UUID,
    "seq": _int(),
    "at": _time(),
    "lane": _text(40, nullable=True),
    "direction": _enum(DIRECTIONS),
    "ticket_id": _int(1, nullable=True),
    "session_id": _int(1, MAX_INT, nullable=True),
    "admitted": {"type": "boolean"},
    "reason": _enum(REASONS),
    "cursor": _int(),
    "kind": _enum(SCAN_KINDS, nullable=True),
    "staff": _text(64, min_length=1, nullable=True),
}, required=("id", "seq", "at", "direction", "admitted", "reason"))

ENTRIES = _object({"entries": {"type": "array", "items": ENTRY}}, required=("entries",))

ENROLL = _object({"token": _text(256, min_length=1)}, required=("token",))

ROLL = _object({"credential": _text(256, min_length=1, nullable=True)})

# the allowlist and revocations query string, after :func:`query_args` made numbers of it
PULL = _object({
    "since": _int(0, 2**62),
    "limit": _int(1, 5000),
    "full": _int(0, 2**62),
    "progress": {"type": "integer", "enum": [0, 1]},
})
QUERY_INTS = ("since", "limit", "full", "progress")
_WHOLE = re.compile(r"-?[0-9]{1,30}")

DEVICE = _object({
    "id": _text(80, min_length=1),
    "kind": _text(40),
    "state": _text(20),
    "detail": _text(1000, nullable=True),
    "at": _time(nullable=True, since=True),
    "lane": _text(40, nullable=True),
    "last_scan_at": _time(nullable=True, since=True),
    "errors": _int(),
    "error": _text(1000, nullable=True),
}, required=("id",))

LANE = _object({
    "code": _text(32, min_length=1),
    "gate": _text(64, nullable=True),
    "name": _text(128),
}, required=("code",))

STATE = _object({
    "software_version": _text(40),
    "devices": {"type": "array", "maxItems": 200, "items": DEVICE},
    "cursors": _object({"allowlist": _int(), "revocations": _int()}),
    "keys": {"type": "array", "maxItems": 100, "items": _int(1, MAX_INT)},
    "queue": _object({"unsent": _int(), "oldest_unsent_at": _time(nullable=True, since=True),
                      "refused": _int(), "last_seq": _int()}),
    "lanes": {"type": "array", "maxItems": 500, "items": LANE},
})

HEARTBEAT = _object({
    "state": STATE,
    "clock": _time(nullable=True),
    "done": {"type": "array", "maxItems": MAX_DONE, "items": _int(1)},
})

SCHEMAS: dict[str, dict[str, Any]] = {
    "enroll": ENROLL, "pull": PULL, "entries": ENTRIES, "heartbeat": HEARTBEAT, "roll": ROLL}

# -- checking ----------------------------------------------------------------------------------


def _strict_integer(_checker: Any, instance: Any) -> bool:
    return isinstance(instance, int) and not isinstance(instance, bool)


_Validator = validators.extend(
    Draft202012Validator,
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine("integer", _strict_integer))
for _schema in SCHEMAS.values():
    Draft202012Validator.check_schema(_schema)


@dataclass(frozen=True)
class Invalid(ValueError):
    """A request that does not match its schema: ``field`` is a JSON pointer, ``message`` short
    words that never echo the value (it may be megabytes, or personal)."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field or '/'}: {self.message}"


def _pointer(path: Any) -> str:
    return "".join("/" + str(p)[:64].replace("~", "~0").replace("/", "~1") for p in path)


def _format_checker(now: datetime) -> FormatChecker:
    checker = FormatChecker(formats=())

    # ValueError: not a time, or no offset; OverflowError: a time at the edge of year 1 or 9999
    # that its offset takes out of range
    @checker.checks("date-time", raises=(ValueError, OverflowError))
    def _recent(value: Any) -> bool:
        if not isinstance(value, str):
            return True
        t = from_iso(value)
        return now - TIME_WINDOW <= t <= now + TIME_WINDOW

    @checker.checks("wicket-since", raises=(ValueError, OverflowError))
    def _since(value: Any) -> bool:
        if not isinstance(value, str):
            return True
        return EPOCH <= from_iso(value) <= now + TIME_WINDOW

    return checker


def _words(e: ValidationError) -> tuple[str, str]:
    """The pointer and the words for one error; never the value itself."""
    path = _pointer(e.absolute_path)
    kw, want = e.validator, e.validator_value
    if kw == "additionalProperties":
        allowed = set(e.schema.get("properties", {}))
        extra = sorted(str(k) for k in e.instance if k not in allowed)
        name = extra[0] if extra else "?"
        return path + _pointer([name]), "unknown field"
    if kw == "required":
        missing = [k for k in want if k not in e.instance]
        return path + _pointer(missing[:1]), "required field is missing"
    words = {
        "type": lambda: "must be " + " or ".join(
            ("an " if t in ("integer", "array", "object") else "a " if t != "null" else "") + t
            for t in ([want] if isinstance(want, str) else want)),
        "enum": lambda: "must be one of " + ", ".join(
            "null" if v is None else str(v) for v in want),
        "minimum": lambda: f"must be {want} or more",
        "maximum": lambda: f"must be {want} or less",
        "minLength": lambda: f"must be at least {want} characters",
        "maxLength": lambda: f"must be at most {want} characters",
        "maxItems": lambda: f"must have at most {want} items",
        "pattern": lambda: "has characters that are not allowed",
        "format": lambda: (f"must be an RFC 3339 time with an offset, within "
                           f"{TIME_WINDOW.days} days of the hub's clock" if want == "date-time"
                           else "must be an RFC 3339 time with an offset, from 2020 to a "
                           "year ahead of the hub's clock"),
    }
    return path, words[kw]() if kw in words else "is not valid"


def check(kind: str, body: Any, now: datetime | None = None) -> dict[str, Any]:
    """``body`` if it matches the schema of request ``kind``; else raises :class:`Invalid`
    for the first bad field (in document order)."""
    validator = _Validator(SCHEMAS[kind], format_checker=_format_checker(now or utcnow()))
    errors = sorted(validator.iter_errors(body), key=lambda e: (
        [(0, p, "") if isinstance(p, int) else (1, 0, str(p)) for p in e.absolute_path],
        e.validator != "type", str(e.validator)))
    if errors:
        field, message = _words(errors[0])
        raise Invalid(field, message)
    return body


def query_args(args: Mapping[str, str], names: tuple[str, ...] = QUERY_INTS) -> dict[str, Any]:
    """The query string as numbers where they are numbers (``?since=12`` → ``{"since": 12}``),
    for :func:`check`; an unknown argument is kept as text, so the schema names it."""
    out: dict[str, Any] = {}
    for key, value in args.items():
        if key in names and _WHOLE.fullmatch(value):
            out[key] = int(value)
        else:
            out[key] = value[:100]
    return out
