"""The admission rules as plain functions: a ticket's facts, the lane, the time -> a verdict.

Nothing here reads the database: :class:`edge.engine.Engine` looks the facts up inside its
transaction and asks these functions, in the order the stages below give. A refusal is a
:class:`Refused` carrying a :class:`~edge.reasons.Reason`, the stage it was reached at and a
:class:`Detail`: a stable code from :data:`DETAILS` with its parameters. The English text of a
detail is rendered from the code (and kept with the entry for the hub and the logs); screens
look their words up by the code, never by the text.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from edge.reasons import Reason

# code -> the English words, with %(name)s placeholders for the parameters. The appliance's
# pages have the same words as translatable messages, by the same codes
# (edge/web/detail_words.py); a test keeps the two sets equal.
DETAILS: dict[str, str] = {
    # what the scan was
    "empty_scan": "empty scan",
    "not_a_code": "not a ticket code",
    "code_too_long": "too long to be a ticket code",
    "incomplete_code": "incomplete ticket code",
    "unknown_version": "ticket code of an unknown version",
    "unknown_key": "signed with a key this appliance does not know yet: sync the appliance",
    "bad_signature": "signature does not match",
    "trailing_bytes": "extra data after the signature",
    "out_of_range": "impossible values in the ticket code",
    "invalid_code": "invalid ticket code",
    "not_rfid": "not an RFID UID",
    "card_unknown": "card not in the allowlist",
    "not_a_reader_scan": "not a scan a reader makes",
    "number_needs_staff": "a ticket number is accepted only from signed-in staff",
    "numbers_not_accepted": "ticket numbers are not accepted at this gate",
    "number_mistyped": "ticket number mistyped: its check character does not match",
    "unknown_number": "neither a ticket code nor a known ticket number",
    "no_document": "no document data from the reader",
    "unreadable_document": "unreadable document: %(code)s",
    "id_alone_refused": "an ID card alone is not accepted at this gate: scan the ticket",
    "no_ticket_for_document": "no ticket for this document",
    # 1. revoked
    "revoked": "revoked: %(why)s",
    "ticket_refunded": "ticket refunded",
    "ticket_void": "ticket void",
    "ticket_state": "ticket %(state)s",
    "replaced": "replaced by a newer code",
    # 2. blocked
    "ticket_blocked": "ticket on the block list",
    "card_blocked": "card on the block list",
    "holder_blocked": "holder on the block list",
    # 3. scope and time
    "pass_wrong_venue": "pass not valid at this venue",
    "no_session_here": "not for a session held at this venue",
    "gates_not_open": "%(session)s: gates open %(at)s",
    "session_over": "%(session)s is over",
    "valid_from": "valid from %(at)s",
    "valid_until": "valid until %(at)s",
    "late_window": "offline scan arrived after its entry window closed at %(at)s",
    "late_max_age": "offline scan arrived more than %(n)s minutes after it was made",
    # 4. zone
    "wrong_gate": "zone %(zone)s is not admitted at this gate: go to %(gates)s",
    "wrong_gate_nowhere": "zone %(zone)s is not admitted at this gate",
    # 5. real name
    "realname_required": "real-name ticket: read the holder's ID card with the ticket",
    "holder_not_here": "holder not on this appliance yet: send to the help desk",
    "not_holders_document": "document is not the ticket holder's",
    # 6. usage
    "daily_limit": "daily limit of %(n)s entries reached",
    "already_inside": "already inside",
    "reentry_refused": "re-entry not allowed at this gate",
    # not a rule: the appliance itself, and a supervisor
    "internal_error": "internal error: see the appliance log",
    "database_failure": "database failure: %(error)s",
    "override": "override by %(user)s: %(why)s",
}

class Detail(NamedTuple):
    """Why a verdict is what it is: a code of :data:`DETAILS`, its parameters, and its English
    words (as kept with the entry). Made by :func:`detail`."""

    code: str
    params: Mapping[str, Any]
    text: str


def detail(code: str, /, **params: Any) -> Detail:
    """The detail ``code`` with its parameters, worded in English once, here."""
    if not params:
        return _PLAIN[code]
    return Detail(code, params, render(DETAILS[code], params))


def render(template: str, params: Mapping[str, Any]) -> str:
    """Fill a detail's words; a list parameter (gates) reads as a comma-separated list."""
    if not params:
        return template
    return template % {k: ", ".join(map(str, v)) if isinstance(v, list | tuple) else v
                       for k, v in params.items()}


_PLAIN = {code: Detail(code, {}, words) for code, words in DETAILS.items()}


class Refused(Exception):
    """A rule said no; carries the reason, the detail and the stage it was reached at."""

    def __init__(self, reason: Reason, why: Detail, stage: int = 0):
        super().__init__(reason, why)
        self.reason, self.detail, self.stage = reason, why, stage


# How far a ticket got before a rule refused it; for ID-card-alone lookups the ticket that
# got furthest explains the refusal best.
STAGE_REVOKED, STAGE_BLOCKED, STAGE_SCOPE, STAGE_ZONE, STAGE_REALNAME, STAGE_USAGE = range(6)

# sync.codes.CodeError's code -> the verdict on a code that did not verify
CODE_ERRORS: dict[str, tuple[Reason, str]] = {
    "bad_alphabet": (Reason.UNKNOWN, "not_a_code"),
    "truncated": (Reason.UNKNOWN, "incomplete_code"),
    "unknown_version": (Reason.UNKNOWN, "unknown_version"),
    "unknown_key": (Reason.UNKNOWN, "unknown_key"),
    "bad_signature": (Reason.FORGED, "bad_signature"),
    "trailing_bytes": (Reason.FORGED, "trailing_bytes"),
    "out_of_range": (Reason.FORGED, "out_of_range"),
}


def code_error(code: str) -> tuple[Reason, Detail]:
    known = CODE_ERRORS.get(code)
    if known is None:
        return Reason.FORGED, detail("invalid_code")
    return known[0], detail(known[1])


@dataclass
class LaneConfig:
    """A lane as the rules see it: its gate's entry policy and the venue's time zone."""

    id: int | None
    code: str
    direction: str
    gate_id: int | None
    reentry: bool
    realname_mode: str
    open_before: timedelta
    close_after: timedelta
    zones: frozenset[int]
    venue_id: int | None
    tz: ZoneInfo
    manual_entry: bool = False  # the gate admits on a ticket number typed by staff


@dataclass(frozen=True)
class Session:
    id: int
    name: str
    venue_id: int
    starts_at: datetime
    ends_at: datetime
    gates_open_at: datetime | None

    def window(self, lane: LaneConfig) -> tuple[datetime, datetime]:
        """When the lane admits for this session: gates-open (or start) less the gate's early
        margin, to the end plus its late margin."""
        return ((self.gates_open_at or self.starts_at) - lane.open_before,
                self.ends_at + lane.close_after)


@dataclass(frozen=True)
class HolderView:
    name: str
    document: str


@dataclass
class TicketFacts:
    """What the rules need to know of a ticket, from the allowlist or from its code alone,
    together with what the appliance holds against it (revocation, block list)."""

    id: int
    number: str | None
    serial: int
    kind: str
    role: str
    scope: tuple[int, ...]
    zone_id: int
    seat: str | None
    valid_from: datetime | None
    valid_until: datetime | None
    daily_limit: int
    realname: bool
    state: str = "issued"
    current_serial: int = 0  # the serial of the ticket's newest code known here
    zone: str | None = None
    holder_id: int | None = None
    holder_hash: str | None = None
    holder_masked: HolderView | None = None
    revoked: bool = False
    revoked_below: int | None = None
    revoked_reason: str = ""
    blocked: bool = False
    holder_blocked: bool = False
    offline_code: bool = False
    admitted_before: bool = True  # False only when no admitted entry of it exists here


# -- the stages, in order --------------------------------------------------------------------

def check_standing(t: TicketFacts) -> None:
    """1. revoked: by the hub's revocation list, the ticket's state, or a newer code;
    2. blocked: the ticket or its holder."""
    if t.revoked and (t.revoked_below is None or t.serial < t.revoked_below):
        raise Refused(Reason.REVOKED, detail("revoked", why=t.revoked_reason), STAGE_REVOKED)
    if t.state != "issued":
        if t.state == "refunded":
            why = detail("ticket_refunded")
        elif t.state == "void":
            why = detail("ticket_void")
        else:
            why = detail("ticket_state", state=t.state)
        raise Refused(Reason.REVOKED, why, STAGE_REVOKED)
    if t.serial < t.current_serial:
        raise Refused(Reason.REVOKED, detail("replaced"), STAGE_REVOKED)
    if t.blocked:
        raise Refused(Reason.BLOCKED, detail("ticket_blocked"), STAGE_BLOCKED)
    if t.holder_blocked:
        raise Refused(Reason.BLOCKED, detail("holder_blocked"), STAGE_BLOCKED)


def session_for(t: TicketFacts, lane: LaneConfig, sessions: Mapping[int, Session],
                now: datetime) -> Session | None:
    """3. The session this scan counts for; refuses when none of the ticket's is open now."""
    if t.kind == "venues":
        if lane.venue_id not in t.scope:
            raise Refused(Reason.WRONG_SESSION, detail("pass_wrong_venue"), STAGE_SCOPE)
        open_now = [s for s in sessions.values()
                    if s.venue_id == lane.venue_id and is_open(s.window(lane), now)]
        return min(open_now, key=lambda s: s.starts_at) if open_now else None
    mine = sorted((s for sid in t.scope if (s := sessions.get(sid)) is not None
                   and s.venue_id == lane.venue_id), key=lambda s: s.starts_at)
    if not mine:
        raise Refused(Reason.WRONG_SESSION, detail("no_session_here"), STAGE_SCOPE)
    upcoming = None
    for session in mine:
        opens, closes = session.window(lane)
        if opens <= now <= closes:
            return session
        if now < opens and upcoming is None:
            upcoming = (session, opens)
    if upcoming:
        session, opens = upcoming
        raise Refused(Reason.NOT_YET_VALID, detail(
            "gates_not_open", session=session.name, at=local(opens, lane.tz)), STAGE_SCOPE)
    raise Refused(Reason.EXPIRED, detail("session_over", session=mine[-1].name), STAGE_SCOPE)


def check_validity(t: TicketFacts, lane: LaneConfig, now: datetime) -> None:
    """3. The ticket's own validity window, where it has one."""
    if t.valid_from and now < t.valid_from:
        raise Refused(Reason.NOT_YET_VALID, detail("valid_from", at=local(t.valid_from, lane.tz)),
                      STAGE_SCOPE)
    if t.valid_until and now > t.valid_until:
        raise Refused(Reason.EXPIRED, detail("valid_until", at=local(t.valid_until, lane.tz)),
                      STAGE_SCOPE)


def zone_admitted(t: TicketFacts, lane: LaneConfig) -> bool:
    """4. A gate with a zone list admits only those zones."""
    return not (t.zone_id and lane.zones and t.zone_id not in lane.zones)


def wrong_gate(zone: str, gates: list[str]) -> Refused:
    """4. The refusal of a zone this gate does not admit, naming where the holder should go."""
    if gates:
        return Refused(Reason.WRONG_GATE, detail("wrong_gate", zone=zone, gates=gates),
                       STAGE_ZONE)
    return Refused(Reason.WRONG_GATE, detail("wrong_gate_nowhere", zone=zone), STAGE_ZONE)


def check_realname(t: TicketFacts, lane: LaneConfig, document: Any, identified: bool,
                   doc_hash: Callable[[str, str], str], errors: type[Exception]) -> None:
    """5. A real-name ticket at a gate that checks names needs its holder's document (unless
    the ticket was found by that document). ``doc_hash(doc_type, number)`` is the keyed hash
    of a document, raising ``errors`` (with a ``code``) for one that is not valid."""
    if not t.realname or lane.realname_mode == "ticket" or identified:
        return
    if document is None:
        raise Refused(Reason.REALNAME_REQUIRED, detail("realname_required"), STAGE_REALNAME)
    if t.holder_hash is None:
        raise Refused(Reason.REALNAME_REQUIRED, detail("holder_not_here"), STAGE_REALNAME)
    try:
        presented = doc_hash(document.doc_type, document.number)
    except errors as e:
        raise Refused(Reason.REALNAME_MISMATCH, detail("unreadable_document", code=e.code),
                      STAGE_REALNAME) from None
    if presented != t.holder_hash:
        raise Refused(Reason.REALNAME_MISMATCH, detail("not_holders_document"), STAGE_REALNAME)


def usage_limited(t: TicketFacts) -> bool:
    """6. Whether the usage rules apply: staff are never limited, and a ticket never admitted
    here has nothing to count."""
    return t.role != "staff" and t.admitted_before


def check_daily_limit(t: TicketFacts, admitted_today: int) -> None:
    """6. A pass with a per-day limit, given its admissions today (venue-local day)."""
    if t.daily_limit and admitted_today >= t.daily_limit:
        raise Refused(Reason.ALREADY_ENTERED, detail("daily_limit", n=t.daily_limit),
                      STAGE_USAGE)


def check_reentry(t: TicketFacts, lane: LaneConfig, last_direction: str | None) -> None:
    """6. Single entry, and re-entry only after an exit where the gate allows it or for
    registered credentials; ``last_direction`` is the ticket's last admitted movement for
    this session (None: none)."""
    if last_direction is None:
        return
    if last_direction == "out" and (lane.reentry or t.role == "registered"):
        return
    why = detail("already_inside") if last_direction == "in" else detail("reentry_refused")
    raise Refused(Reason.ALREADY_ENTERED, why, STAGE_USAGE)


@dataclass(frozen=True)
class Lateness:
    """A scan decided at the time it was made (``GroupScan.now``) that reached the appliance
    only at ``arrived``, from a handheld's offline queue. Were it admitted, it is refused as
    ``EXPIRED`` instead when it arrived after the entry window it counts for had closed (the
    session's window at this gate, or the ticket's own validity), or, with ``max_age``, more
    than that after it was made."""

    arrived: datetime
    max_age: timedelta | None = None


def too_late(lane: LaneConfig, made: datetime, late: Lateness, session: Session | None,
             ticket: TicketFacts | None) -> Detail | None:
    """Why the admission of an offline scan that arrived too late becomes an EXPIRED refusal
    (None: it stands). The entry window is judged by the appliance's own time of arrival,
    whatever times the handheld sent; ``max_age`` (from the handheld's scan time) is a
    further limit, never a way past the window."""
    if late.max_age is not None and late.arrived - made > late.max_age:
        return detail("late_max_age", n=int(late.max_age.total_seconds() // 60))
    closes = (session.window(lane)[1] if session is not None
              else ticket.valid_until if ticket is not None else None)
    if closes is not None and late.arrived > closes:
        return detail("late_window", at=local(closes, lane.tz))
    return None


def day(now: datetime, tz: ZoneInfo) -> str:
    """The venue-local date: passes count their entries per day where the venue is."""
    return now.astimezone(tz).date().isoformat()


def is_open(window: tuple[datetime, datetime], now: datetime) -> bool:
    return window[0] <= now <= window[1]


def local(dt: datetime, tz: ZoneInfo) -> str:
    return dt.astimezone(tz).strftime("%Y-%m-%d %H:%M")
