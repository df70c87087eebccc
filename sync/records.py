"""The two records an appliance sends the hub, as typed values: an entry (one scan's verdict,
pushed in batches) and the heartbeat (its report of itself, with its clock and the commands
it has carried out).

The appliance builds them and sends :meth:`to_wire`; the hub reads a request with
:func:`entries_from_wire` and :meth:`Heartbeat.from_wire`, which check it against
:mod:`sync.schemas` first and raise :class:`BadField` naming the first bad field. The wire is
the schemas' JSON, unchanged: ``from_wire`` then ``to_wire`` gives back what was sent, key for
key (a field sent as ``null`` stays ``null``, a field left out stays out), so the hub may keep
a report exactly as the appliance wrote it.

Times stay the text they were sent as (RFC 3339, checked by the schema): an entry's time is
read as a ``datetime`` by :meth:`EntryRecord.time`, and what the hub keeps of an entry by
:meth:`EntryRecord.as_stored`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sync import schemas
from sync.timeutil import from_iso


class BadField(Exception):
    """A request that does not match its schema: ``code`` is the error the hub answers with
    (``bad_entry``, ``bad_request``), ``invalid`` names the field (a JSON pointer) and says
    what is wrong with it in a few words."""

    def __init__(self, code: str, invalid: schemas.Invalid):
        super().__init__(str(invalid))
        self.code, self.invalid = code, invalid

    @property
    def field(self) -> str:
        return self.invalid.field


def _check(kind: str, body: Any, code: str, now: datetime | None) -> Any:
    try:
        return schemas.check(kind, body, now)
    except schemas.Invalid as e:
        raise BadField(code, e) from None


def _present(body: Mapping[str, Any]) -> frozenset[str]:
    return frozenset(body)


def _wire_of(record: Any) -> dict[str, Any]:
    """The record's fields in declaration order: those it was given, and any other that is not
    ``None`` (``sent`` lists the fields given; it is not itself sent)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(record):
        if f.name == "sent":
            continue
        value = getattr(record, f.name)
        if f.name in record.sent or value is not None:
            out[f.name] = _wire_value(value)
    return out


def _wire_value(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_wire_value(v) for v in value]
    if isinstance(value, Mapping):
        return dict(value)
    if dataclasses.is_dataclass(value):
        return value.to_wire()
    return value


# -- an entry ----------------------------------------------------------------------------------

_ENTRY_FIELDS = frozenset(schemas.ENTRY["properties"])


@dataclass(frozen=True)
class EntryRecord:
    """One scan's verdict as the appliance reports it: ``id`` its UUID, ``seq`` its place in
    the appliance's outbox, ``at`` its time (RFC 3339 text), ``cursor`` how far the appliance
    had applied revocations when it decided, ``kind`` what read it and ``staff`` who typed it."""

    id: str
    seq: int
    at: str
    lane: str | None = None
    direction: str = "in"
    ticket_id: int | None = None
    session_id: int | None = None
    admitted: bool = False
    reason: str = "OK"
    cursor: int | None = None
    kind: str | None = None
    staff: str | None = None
    sent: frozenset[str] = field(default=_ENTRY_FIELDS, compare=False, repr=False)

    def to_wire(self) -> dict[str, Any]:
        return _wire_of(self)

    @classmethod
    def from_wire(cls, obj: Any, now: datetime | None = None) -> EntryRecord:
        """One entry, checked: :class:`BadField` (``bad_entry``) names the bad field from the
        entry itself (``/at``)."""
        try:
            schemas.check("entries", {"entries": [obj]}, now)
        except schemas.Invalid as e:
            raise BadField("bad_entry", schemas.Invalid(
                e.field.removeprefix("/entries/0"), e.message)) from None
        return cls._of(obj)

    @classmethod
    def _of(cls, obj: Mapping[str, Any]) -> EntryRecord:
        return cls(**obj, sent=_present(obj))

    def time(self) -> datetime:
        """``at`` as an aware UTC datetime."""
        return from_iso(self.at)

    def as_stored(self) -> dict[str, Any]:
        """What the hub keeps of the entry: every field, the time as a datetime, a cursor left
        out as 0; ``kind`` and ``staff`` pass through."""
        return {"id": self.id, "seq": self.seq, "at": self.time(), "lane": self.lane,
                "direction": self.direction, "ticket_id": self.ticket_id,
                "session_id": self.session_id, "admitted": self.admitted,
                "reason": self.reason, "cursor": self.cursor or 0, "kind": self.kind,
                "staff": self.staff}


def entries_to_wire(records: Iterable[EntryRecord]) -> dict[str, Any]:
    """The body of a push: ``{"entries": [...]}``."""
    return {"entries": [r.to_wire() for r in records]}


def entries_from_wire(body: Any, now: datetime | None = None) -> list[EntryRecord]:
    """A push's entries, the whole batch checked before any is returned. A bad entry raises
    :class:`BadField` ``bad_entry`` naming it (``/entries/3/admitted``); a body that is not a
    batch at all, ``bad_request``."""
    try:
        checked = schemas.check("entries", body, now)
    except schemas.Invalid as e:
        code = "bad_entry" if e.field.startswith("/entries/") else "bad_request"
        raise BadField(code, e) from None
    return [EntryRecord._of(e) for e in checked["entries"]]


# -- the heartbeat -----------------------------------------------------------------------------

_DEVICE_SENT = frozenset({"id", "kind", "state", "detail", "at", "lane"})


@dataclass(frozen=True)
class DeviceReport:
    """A device's health: its state since ``at``, with the runtime's ``detail``."""

    id: str
    kind: str | None = None
    state: str | None = None
    detail: str | None = None
    at: str | None = None
    lane: str | None = None
    last_scan_at: str | None = None
    errors: int | None = None
    error: str | None = None
    sent: frozenset[str] = field(default=_DEVICE_SENT, compare=False, repr=False)

    def to_wire(self) -> dict[str, Any]:
        return _wire_of(self)

    @classmethod
    def _of(cls, obj: Mapping[str, Any]) -> DeviceReport:
        return cls(**obj, sent=_present(obj))


@dataclass(frozen=True)
class LaneReport:
    """A lane of the venue and the gate it belongs to, as the appliance has them."""

    code: str
    gate: str | None = None
    name: str | None = None
    sent: frozenset[str] = field(default=frozenset({"code", "gate", "name"}), compare=False,
                                 repr=False)

    def to_wire(self) -> dict[str, Any]:
        return _wire_of(self)

    @classmethod
    def _of(cls, obj: Mapping[str, Any]) -> LaneReport:
        return cls(**obj, sent=_present(obj))


@dataclass(frozen=True)
class QueueReport:
    """The outbox: entries not yet acknowledged (and the oldest's time), refused, last seq."""

    unsent: int | None = None
    oldest_unsent_at: str | None = None
    refused: int | None = None
    last_seq: int | None = None
    sent: frozenset[str] = field(
        default=frozenset({"unsent", "oldest_unsent_at", "refused", "last_seq"}),
        compare=False, repr=False)

    def to_wire(self) -> dict[str, Any]:
        return _wire_of(self)

    @classmethod
    def _of(cls, obj: Mapping[str, Any]) -> QueueReport:
        return cls(**obj, sent=_present(obj))


_STATE_SENT = frozenset({"software_version", "devices", "lanes", "cursors", "keys", "queue"})


@dataclass(frozen=True)
class StateReport:
    """What the appliance says of itself in a heartbeat: its version, devices and lanes, its
    cursors per stream, the hub keys it holds and its outbox."""

    software_version: str | None = None
    devices: tuple[DeviceReport, ...] | None = None
    lanes: tuple[LaneReport, ...] | None = None
    cursors: Mapping[str, int] | None = None
    keys: tuple[int, ...] | None = None
    queue: QueueReport | None = None
    sent: frozenset[str] = field(default=_STATE_SENT, compare=False, repr=False)

    def to_wire(self) -> dict[str, Any]:
        return _wire_of(self)

    @classmethod
    def _of(cls, obj: Mapping[str, Any]) -> StateReport:
        values = dict(obj)
        if "devices" in values:
            values["devices"] = tuple(DeviceReport._of(d) for d in values["devices"])
        if "lanes" in values:
            values["lanes"] = tuple(LaneReport._of(lane) for lane in values["lanes"])
        if "keys" in values:
            values["keys"] = tuple(values["keys"])
        if "queue" in values:
            values["queue"] = QueueReport._of(values["queue"])
        return cls(**values, sent=_present(obj))


@dataclass(frozen=True)
class Heartbeat:
    """A heartbeat request: the report, the appliance's clock when it sent it (RFC 3339 text),
    and the ids of the hub's commands it has carried out since the hub last heard."""

    state: StateReport = field(default_factory=lambda: StateReport(sent=frozenset()))
    clock: str | None = None
    done: tuple[int, ...] = ()

    def to_wire(self) -> dict[str, Any]:
        return {"state": self.state.to_wire(), "clock": self.clock, "done": list(self.done)}

    @classmethod
    def from_wire(cls, body: Any, now: datetime | None = None) -> Heartbeat:
        """A heartbeat request, checked: :class:`BadField` ``bad_request`` names the first bad
        field (``/state/devices/0/id``). A part left out reads as empty."""
        checked = _check("heartbeat", body, "bad_request", now)
        return cls(state=StateReport._of(checked.get("state", {})),
                   clock=checked.get("clock"), done=tuple(checked.get("done", ())))

    def clock_time(self) -> datetime | None:
        """The appliance's clock as an aware UTC datetime, if it sent one."""
        return from_iso(self.clock) if self.clock else None
